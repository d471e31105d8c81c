"""Driver errors -> the store's error vocabulary, and the bounded retry of transient ones.

The backends call :func:`postgres_error` and :func:`sqlite_error` on every ``psycopg.Error`` and
``sqlite3.Error`` they see, so that nothing above the backend layer (the Store API, the worker,
the relay, the migration runner, the CLI) ever handles a driver type: it sees a
:class:`~statechart.errors.DatabaseError` whose ``retryable`` says whether trying again can help.
PostgreSQL errors are classified by SQLSTATE, SQLite errors by their primary result code.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from typing import Any, Callable, TypeVar

from ..errors import (
    ConnectionLostError,
    DatabaseBusyError,
    DatabaseCorruptError,
    DatabaseError,
    DiskFullError,
    LockNotAvailableError,
    SerializationConflictError,
    StatementTimeoutError,
    StoreURLError,
)

__all__ = ["postgres_error", "sqlite_error", "retrying", "backoff"]

_log = logging.getLogger("statechart.store")
T = TypeVar("T")

#: SQLSTATE -> error type; classes (the first two characters) where the whole class means one thing.
_SQLSTATES: dict[str, type[DatabaseError]] = {
    "57P01": ConnectionLostError,  # admin_shutdown (pg_terminate_backend, a fast shutdown)
    "57P02": ConnectionLostError,  # crash_shutdown
    "57P03": ConnectionLostError,  # cannot_connect_now (starting up, shutting down)
    "57014": StatementTimeoutError,  # query_canceled: statement_timeout (or a cancel request)
    "55P03": LockNotAvailableError,  # lock_not_available: lock_timeout, NOWAIT
    "53100": DiskFullError,  # disk_full
    "40001": SerializationConflictError,  # serialization_failure
    "40P01": SerializationConflictError,  # deadlock_detected
}
_SQLSTATE_CLASSES: dict[str, type[DatabaseError]] = {
    "08": ConnectionLostError,  # connection_exception
    "40": SerializationConflictError,  # transaction_rollback
}

#: SQLite primary result codes (https://www.sqlite.org/rescode.html).
_SQLITE_CODES: dict[int, type[DatabaseError]] = {
    5: DatabaseBusyError,  # SQLITE_BUSY
    6: DatabaseBusyError,  # SQLITE_LOCKED
    11: DatabaseCorruptError,  # SQLITE_CORRUPT
    13: DiskFullError,  # SQLITE_FULL
}
_SQLITE_URL_CODES = {
    14: "cannot be opened as a database file",  # SQLITE_CANTOPEN
    26: "is not a SQLite database, so not a statechart store",  # SQLITE_NOTADB
}


def postgres_error(error: Any, where: str, *, commit_unknown: bool = False) -> DatabaseError:
    """The store error for a ``psycopg.Error``; ``where`` names the database (password redacted)."""
    import psycopg

    detail = str(error).strip() or type(error).__name__
    sqlstate = getattr(error, "sqlstate", None)
    kind = _SQLSTATES.get(sqlstate or "") or _SQLSTATE_CLASSES.get((sqlstate or "")[:2])
    if kind is None:
        # psycopg reports a connection it found dead (a closed socket, "the connection is closed")
        # as an OperationalError without SQLSTATE.
        if isinstance(error, psycopg.OperationalError) and sqlstate is None:
            kind = ConnectionLostError
        else:
            kind = DatabaseError
    if kind is ConnectionLostError and commit_unknown:
        return ConnectionLostError(detail, code=sqlstate, where=where, commit_unknown=True)
    if kind is DatabaseError and sqlstate and sqlstate[:2] == "53":  # other insufficient resources
        return DatabaseError(detail, code=sqlstate, where=where, retryable=True)
    return kind(detail, code=sqlstate, where=where)


def sqlite_error(error: sqlite3.Error, where: str) -> DatabaseError | StoreURLError:
    """The store error for a ``sqlite3.Error`` (classified by ``sqlite_errorcode``)."""
    detail = str(error).strip() or type(error).__name__
    code = getattr(error, "sqlite_errorcode", None)
    name = getattr(error, "sqlite_errorname", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in _SQLITE_URL_CODES:
        return StoreURLError(f"{where} {_SQLITE_URL_CODES[primary]} ({detail})")
    kind = _SQLITE_CODES.get(primary or -1, DatabaseError)
    return kind(detail, code=name, where=where)


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential from 5 ms, capped at 0.5 s, with
    full jitter so that retrying clients do not move in step."""
    return random.uniform(0, min(0.005 * 2 ** attempt, 0.5))


def retrying(operation: Callable[[], T], attempts: int, *, what: str, repeatable: bool = False,
             backend: Any = None, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``operation`` until it succeeds, retrying a retryable :class:`DatabaseError` up to
    ``attempts`` times in all (the last error is raised). Only for operations whose transaction
    leaves nothing behind when it fails: a failed attempt must be safe to run again.
    ``repeatable``: running it again after it did commit is harmless too, so a connection lost
    during COMMIT (``commit_unknown``) is retried as well. Inside a transaction of ``backend``
    the operation runs once: only the enclosing transaction as a whole could be run again."""
    if backend is not None and backend.transaction_open:
        return operation()
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except DatabaseError as error:
            if not (error.retryable or (repeatable and error.commit_unknown)) or attempt >= attempts:
                raise
            _log.warning("%s: %s (attempt %d of %d)", what, error, attempt, attempts)
            sleep(backoff(attempt))
    raise AssertionError("unreachable")  # pragma: no cover
