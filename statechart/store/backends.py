"""Database connections behind one small interface: SQLite (embedded default) and PostgreSQL.

The store writes its SQL once, with ``?`` placeholders; a backend translates what differs
between the two (placeholders, explicit write transactions, row locking for timer workers,
duplicate-key errors). Everything else is shared.

This is also the one seam where driver errors become the store's own (``store/faults.py``):
nothing above it sees a ``psycopg`` or ``sqlite3`` exception. A PostgreSQL backend whose
connection died reconnects at its next call outside a transaction; a read outside a transaction
that finds the connection dead reconnects and reads again at once.
"""

from __future__ import annotations

import math
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import unquote, urlsplit, urlunsplit

from ..durations import parse_duration
from ..errors import ConnectionLostError, SerializationConflictError, StoreError, StoreURLError
from .faults import postgres_error, sqlite_error

__all__ = ["Backend", "SQLiteBackend", "PostgresBackend", "open_backend", "IntegrityError", "RetryableError",
           "BACKEND_OPTIONS"]

#: The options a store URL query (or ``Store.open`` keyword) may set, by dialect.
BACKEND_OPTIONS = {"sqlite": ("synchronous", "busy_timeout"), "postgresql": ("statement_timeout", "lock_timeout")}
#: The longest timeout accepted (PostgreSQL's limit is about 24 days; a week is plenty).
_MAX_TIMEOUT = 7 * 86400.0
_DEFAULT_BUSY_TIMEOUT = 30.0
_DEFAULT_CONNECT_TIMEOUT = 10
#: What a PostgreSQL server says when it refuses a connection only for now.
_TRANSIENT_REFUSALS = ("starting up", "shutting down", "in recovery", "too many clients", "too many connections",
                       "connection slots", "terminating connection")


class IntegrityError(Exception):
    """A unique constraint was violated (a duplicate instance id, say)."""


#: Kept for callers that caught the backend's old name for a deadlock or serialization failure.
RetryableError = SerializationConflictError


class Backend:
    dialect = ""
    url = ""
    #: How to claim one due timer without two workers claiming the same one.
    lock_suffix = ""
    #: How to read a row so that no other transaction can change it before we commit (SQLite needs
    #: nothing: its write transactions are serialized from BEGIN IMMEDIATE on).
    row_lock = ""

    @property
    def transaction_open(self) -> bool:
        """Whether a transaction is running: a failed operation inside one cannot be retried on
        its own (the whole transaction has to be)."""
        return False

    @contextmanager
    def transaction(self) -> Iterator["Backend"]:  # pragma: no cover - interface
        raise NotImplementedError
        yield self

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def _closed_error(url: str) -> StoreError:
    return StoreError(f"the store at {_redacted(url)} was closed; open it again with Store.open")


class _SQLiteCursor:
    """A sqlite3 cursor whose fetches are inside the seam too: SQLite runs a query step by step
    as its rows are fetched, so a busy or corrupt database may only show at ``fetchall()``."""

    def __init__(self, cursor: sqlite3.Cursor, where: str) -> None:
        self._cursor = cursor
        self._where = where

    def fetchone(self) -> Any:
        try:
            return self._cursor.fetchone()
        except sqlite3.Error as error:
            raise sqlite_error(error, self._where) from error

    def fetchall(self) -> list[Any]:
        try:
            return self._cursor.fetchall()
        except sqlite3.Error as error:
            raise sqlite_error(error, self._where) from error

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def description(self) -> Any:
        return self._cursor.description

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class SQLiteBackend(Backend):
    """A file in WAL mode; writers take the write lock at BEGIN (IMMEDIATE) so they queue, never
    deadlock, and a transaction reads what it then writes. A writer waits up to ``busy_timeout``
    seconds for the lock, then fails with the retryable DatabaseBusyError."""

    dialect = "sqlite"

    def __init__(self, url: str, path: str, synchronous: str = "NORMAL",
                 timeout: float = _DEFAULT_BUSY_TIMEOUT) -> None:
        self.url = url
        self.path = path
        self.busy_timeout = timeout
        self._closed = False
        if path != ":memory:":
            target = Path(path)
            if target.is_dir():
                raise StoreURLError(f"{path} is a directory, not a database file; write sqlite:///{path}/store.db")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StoreURLError(f"cannot create the folder for the database file {path}: "
                                    f"{error.strerror or error}") from None
        try:
            self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=timeout)
        except sqlite3.Error as error:
            raise sqlite_error(error, path) from None
        try:
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute(f"PRAGMA synchronous={synchronous}")
            self.connection.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as error:
            self.connection.close()
            raise sqlite_error(error, path) from None
        self._depth = 0

    @property
    def transaction_open(self) -> bool:
        return self._depth > 0

    @contextmanager
    def transaction(self) -> Iterator["SQLiteBackend"]:
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._run("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._depth = 0
            self._rollback()
            raise
        self._depth = 0
        try:
            self._run("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        # SQLite rolls back by itself after some errors (SQLITE_FULL, an I/O error): only roll back
        # what is still open, and never let a failing ROLLBACK hide the error that caused it.
        try:
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _run(self, sql: str) -> None:
        self.execute(sql)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self._closed:
            raise _closed_error(self.url)
        try:
            return _SQLiteCursor(self.connection.execute(sql, params), self.path)
        except sqlite3.IntegrityError as error:
            raise IntegrityError(str(error)) from error
        except sqlite3.Error as error:
            raise sqlite_error(error, self.path) from error

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self._closed:
            raise _closed_error(self.url)
        try:
            self.connection.executemany(sql, rows)
        except sqlite3.IntegrityError as error:
            raise IntegrityError(str(error)) from error
        except sqlite3.Error as error:
            raise sqlite_error(error, self.path) from error

    def close(self) -> None:
        self._closed = True
        self.connection.close()


class PostgresBackend(Backend):
    """psycopg 3 with explicit transactions; concurrent writers are kept honest by the store's
    optimistic revision check (a retry reads with ``FOR UPDATE``), and timer workers share work
    with ``FOR UPDATE SKIP LOCKED``. Deadlocks and serialization failures surface as the retryable
    :class:`SerializationConflictError`; a dropped connection as :class:`ConnectionLostError`,
    after which the next call outside a transaction connects again (with the same timeouts)."""

    dialect = "postgresql"
    lock_suffix = " FOR UPDATE SKIP LOCKED"
    row_lock = " FOR UPDATE"

    def __init__(self, url: str, conninfo: str | None = None, *, statement_timeout: float | None = None,
                 lock_timeout: float | None = None) -> None:
        try:
            import psycopg
        except ImportError:  # psycopg is the optional `postgres` extra; SQLite needs nothing
            raise StoreError("a postgresql:// store needs psycopg, which is not installed: "
                             "pip install 'statechart[postgres]'") from None
        self.url = url
        self.where = _redacted(url)
        self._conninfo = conninfo if conninfo is not None else url
        self._psycopg = psycopg
        self.statement_timeout = statement_timeout
        self.lock_timeout = lock_timeout
        self._closed = False
        self._sql: dict[str, str] = {}
        self._transaction: Any = None
        #: How many times this backend connected again after losing its connection.
        self.reconnects = 0
        self.connection = self._connect()

    def _connect(self) -> Any:
        psycopg = self._psycopg
        try:
            connection = psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.ProgrammingError as error:  # libpq could not parse the URL
            raise StoreURLError(f"cannot use the PostgreSQL URL {self.where}: {' '.join(str(error).split())}") \
                from None
        except psycopg.Error as error:
            message = str(error).strip()
            if "FATAL:" in message and not any(phrase in message for phrase in _TRANSIENT_REFUSALS):
                # The server answered and refused for good: no such database or role, a bad option.
                raise StoreURLError(f"PostgreSQL at {self.where} refused the connection: "
                                    f"{' '.join(message.split('FATAL:', 1)[1].split())}") from None
            raise ConnectionLostError(message, where=self.where, code=getattr(error, "sqlstate", None),
                                      summary="cannot connect to the database") from None
        try:
            settings = [(name, value) for name, value in (("statement_timeout", self.statement_timeout),
                                                          ("lock_timeout", self.lock_timeout)) if value is not None]
            for name, value in settings:
                connection.execute("SELECT set_config(%s, %s, false)", (name, _milliseconds(value)))
        except psycopg.Error as error:
            connection.close()
            raise postgres_error(error, self.where) from None
        return connection

    @property
    def transaction_open(self) -> bool:
        return self._transaction is not None

    def _live(self) -> Any:
        """The connection, connected again first if it died (only called outside a transaction)."""
        if self._closed:
            raise _closed_error(self.url)
        connection = self.connection
        if connection.closed or connection.broken:
            self.connection = connection = self._connect()
            self.reconnects += 1
        return connection

    def _translate(self, sql: str) -> str:
        translated = self._sql.get(sql)
        if translated is None:
            translated = self._sql[sql] = sql.replace("%", "%%").replace("?", "%s")
        return translated

    @contextmanager
    def transaction(self) -> Iterator["PostgresBackend"]:
        if self._transaction is not None:
            yield self
            return
        transaction = self._begin()
        self._transaction = transaction
        try:
            yield self
        except BaseException as error:
            self._transaction = None
            try:
                transaction.__exit__(type(error), error, error.__traceback__)  # rolls back (or finds it gone)
            except self._psycopg.Error as failure:
                raise postgres_error(failure, self.where) from error
            raise
        self._transaction = None
        try:
            transaction.__exit__(None, None, None)  # COMMIT
        except self._psycopg.Error as error:
            raise postgres_error(error, self.where, commit_unknown=True) from error

    def _begin(self) -> Any:
        """BEGIN; a connection found dead at BEGIN (terminated while idle) is replaced at once:
        nothing of the transaction has run yet."""
        for attempt in (1, 2):
            connection = self._live()
            transaction = connection.transaction()
            try:
                transaction.__enter__()
                return transaction
            except self._psycopg.Error as error:
                wrapped = postgres_error(error, self.where)
                if attempt == 2 or not isinstance(wrapped, ConnectionLostError):
                    raise wrapped from error
        raise AssertionError("unreachable")  # pragma: no cover

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        inside = self._transaction is not None
        connection = self.connection if inside else self._live()
        try:
            return connection.execute(self._translate(sql), params, prepare=True)
        except self._psycopg.errors.UniqueViolation as error:
            raise IntegrityError(str(error)) from error
        except self._psycopg.Error as error:
            wrapped = postgres_error(error, self.where)
            if inside or not isinstance(wrapped, ConnectionLostError) or not _reads_only(sql):
                raise wrapped from error
        # A read outside a transaction found the connection dead (terminated while idle, say):
        # nothing was written, so connect again and read once more.
        try:
            return self._live().execute(self._translate(sql), params, prepare=True)
        except self._psycopg.Error as error:
            raise postgres_error(error, self.where) from error

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        connection = self.connection if self._transaction is not None else self._live()
        try:
            with connection.cursor() as cursor:
                cursor.executemany(self._translate(sql), rows)
        except self._psycopg.errors.UniqueViolation as error:
            raise IntegrityError(str(error)) from error
        except self._psycopg.Error as error:
            raise postgres_error(error, self.where) from error

    def close(self) -> None:
        self._closed = True
        self.connection.close()


def _reads_only(sql: str) -> bool:
    text = sql.lstrip().upper()
    return text.startswith("SELECT") and "FOR UPDATE" not in text


def _milliseconds(seconds: float) -> str:
    return f"{max(1, math.ceil(seconds * 1000)) if seconds > 0 else 0}ms"


def _redacted(url: str) -> str:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url.split("@")[-1] if "@" in url else url
    if password:
        return url.replace(f":{password}@", ":***@")
    return url


def _timeout(name: str, value: Any) -> float:
    """A timeout option: seconds as a number, or a duration (``500ms``, ``5s``); 0 means none
    (PostgreSQL) or do not wait at all (SQLite)."""
    try:
        seconds = parse_duration(value)
    except ValueError as error:
        raise StoreURLError(f"{name}: {error}") from None
    if not math.isfinite(seconds) or seconds > _MAX_TIMEOUT:
        raise StoreURLError(f"{name}={value!r} is too long; at most {_MAX_TIMEOUT / 86400:g} days")
    return seconds


def _options(url: str, query: str, dialect: str, overrides: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Our options from the URL query and the keyword arguments (which win); the query
    parameters that are not ours (for libpq), in order and exactly as written (libpq decodes
    them itself, and does not read ``+`` as a space)."""
    ours: dict[str, Any] = {}
    rest: list[str] = []
    every = {name for names in BACKEND_OPTIONS.values() for name in names}
    for parameter in filter(None, query.split("&")):
        raw_name, _, raw_value = parameter.partition("=")
        name, value = unquote(raw_name), unquote(raw_value)
        if name in BACKEND_OPTIONS[dialect]:
            ours[name] = value
        elif name in every:
            raise StoreURLError(f"the option {name} applies to {_dialect_of(name)} stores only, not to {_redacted(url)!r}")
        elif dialect == "sqlite":
            raise StoreURLError(f"unknown option {name!r} in {_redacted(url)!r}; SQLite stores take "
                                f"{', '.join(BACKEND_OPTIONS['sqlite'])}")
        else:
            rest.append(parameter)
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in BACKEND_OPTIONS[dialect]:
            raise StoreURLError(f"the option {name} applies to {_dialect_of(name)} stores only, not to "
                                f"{_redacted(url)!r}")
        ours[name] = value
    return ours, rest


def _dialect_of(option: str) -> str:
    return "SQLite" if option in BACKEND_OPTIONS["sqlite"] else "PostgreSQL"


def open_backend(url: str, **options: Any) -> Backend:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``sqlite:///:memory:``,
    ``postgresql://user@host:5432/db``. SQLite options: ``?synchronous=full`` for power-loss
    durability (the default, NORMAL, survives process crashes), ``?busy_timeout=5s`` (how long a
    writer waits for the database lock; default 30s). PostgreSQL options: ``?statement_timeout=5s``,
    ``?lock_timeout=1s`` (default: the server's); other query parameters go to libpq
    (``connect_timeout`` defaults to 10 seconds unless PGCONNECT_TIMEOUT is set). Keyword
    ``options`` (the same names) override the URL's."""
    if not isinstance(url, str):
        raise StoreURLError(f"a store URL must be a string, not {type(url).__name__}")
    if "\x00" in url:
        raise StoreURLError("the store URL contains a NUL byte")
    if url.startswith("sqlite:"):
        parts = urlsplit(url)
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise StoreURLError(f"no database file in {url!r}; write sqlite:///path/to/file.db")
        chosen, _ = _options(url, parts.query, "sqlite", options)
        synchronous = str(chosen.get("synchronous", "NORMAL")).upper()
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise StoreURLError(f"synchronous={synchronous.lower()!r} is not one of off, normal, full, extra")
        busy = _timeout("busy_timeout", chosen.get("busy_timeout", _DEFAULT_BUSY_TIMEOUT))
        return SQLiteBackend(url, path, synchronous, busy)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            parts = urlsplit(url)
        except ValueError as error:
            raise StoreURLError(f"cannot parse the PostgreSQL URL {_redacted(url)}: {error}") from None
        chosen, rest = _options(url, parts.query, "postgresql", options)
        if not any(unquote(p.partition("=")[0]) == "connect_timeout" for p in rest) \
                and "PGCONNECT_TIMEOUT" not in os.environ:
            # libpq waits for an unreachable host for as long as the network lets it; a worker
            # reconnecting in a loop should hear about it in seconds.
            rest.append(f"connect_timeout={_DEFAULT_CONNECT_TIMEOUT}")
        conninfo = urlunsplit(parts._replace(query="&".join(rest)))
        timeouts = {name: _timeout(name, chosen[name]) for name in ("statement_timeout", "lock_timeout")
                    if name in chosen}
        return PostgresBackend(url, conninfo, **timeouts)
    raise StoreURLError(f"unsupported store URL {_redacted(url)!r}: use sqlite:///path.db or "
                        "postgresql://user@host/db")
