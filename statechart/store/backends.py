"""Database connections behind one small interface: SQLite (embedded default) and PostgreSQL.

The store writes its SQL once, with ``?`` placeholders; a backend translates what differs
between the two (placeholders, explicit write transactions, row locking for timer workers,
duplicate-key errors). Everything else is shared.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import parse_qs, urlsplit

from ..errors import StoreError

__all__ = ["Backend", "SQLiteBackend", "PostgresBackend", "open_backend", "IntegrityError", "RetryableError"]


class IntegrityError(Exception):
    """A unique constraint was violated (a duplicate instance id, say)."""


class RetryableError(Exception):
    """The database aborted the transaction because of a concurrent one (a deadlock, a
    serialization failure): nothing was written, and running it again may well succeed."""


class Backend:
    dialect = ""
    url = ""
    #: How to claim one due timer without two workers claiming the same one.
    lock_suffix = ""
    #: How to read a row so that no other transaction can change it before we commit (SQLite needs
    #: nothing: its write transactions are serialized from BEGIN IMMEDIATE on).
    row_lock = ""

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


class SQLiteBackend(Backend):
    """A file in WAL mode; writers take the write lock at BEGIN (IMMEDIATE) so they queue, never
    deadlock, and a transaction reads what it then writes."""

    dialect = "sqlite"

    def __init__(self, url: str, path: str, synchronous: str = "NORMAL", timeout: float = 30.0) -> None:
        self.url = url
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=timeout)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute(f"PRAGMA synchronous={synchronous}")
        self.connection.execute("PRAGMA foreign_keys=ON")
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator["SQLiteBackend"]:
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self.connection.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._depth = 0
            self.connection.execute("ROLLBACK")
            raise
        self._depth = 0
        self.connection.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self.connection.execute(sql, params)
        except sqlite3.IntegrityError as error:
            raise IntegrityError(str(error)) from error

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self.connection.executemany(sql, rows)
        except sqlite3.IntegrityError as error:
            raise IntegrityError(str(error)) from error

    def close(self) -> None:
        self.connection.close()


class PostgresBackend(Backend):
    """psycopg 3 with explicit transactions; concurrent writers are kept honest by the store's
    optimistic revision check (a retry reads with ``FOR UPDATE``), and timer workers share work
    with ``FOR UPDATE SKIP LOCKED``. Deadlocks and serialization failures surface as
    :class:`RetryableError`."""

    dialect = "postgresql"
    lock_suffix = " FOR UPDATE SKIP LOCKED"
    row_lock = " FOR UPDATE"

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:  # psycopg is the optional `postgres` extra; SQLite needs nothing
            raise StoreError("a postgresql:// store needs psycopg, which is not installed: "
                             "pip install 'statechart[postgres]'") from None
        self.url = url
        self._psycopg = psycopg
        try:
            self.connection = psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as error:
            raise StoreError(f"cannot connect to PostgreSQL at {_redacted(url)}: {str(error).strip()}") from None
        self._sql: dict[str, str] = {}
        self._transaction: Any = None
        # SQLSTATE class 40: psycopg does not derive DeadlockDetected from TransactionRollback.
        errors = psycopg.errors
        self._retryable = (errors.TransactionRollback, errors.SerializationFailure, errors.DeadlockDetected)

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
        with self.connection.transaction() as transaction:
            self._transaction = transaction
            try:
                yield self
            finally:
                self._transaction = None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            return self.connection.execute(self._translate(sql), params, prepare=True)
        except self._psycopg.errors.UniqueViolation as error:
            raise IntegrityError(str(error)) from error
        except self._retryable as error:  # deadlock, serialization failure
            raise RetryableError(str(error)) from error

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        try:
            with self.connection.cursor() as cursor:
                cursor.executemany(self._translate(sql), rows)
        except self._psycopg.errors.UniqueViolation as error:
            raise IntegrityError(str(error)) from error
        except self._retryable as error:  # deadlock, serialization failure
            raise RetryableError(str(error)) from error

    def close(self) -> None:
        self.connection.close()


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def open_backend(url: str) -> Backend:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``sqlite:///:memory:``,
    ``postgresql://user@host:5432/db``. SQLite options: ``?synchronous=full`` for power-loss
    durability (the default, NORMAL, survives process crashes)."""
    if url.startswith("sqlite:"):
        parts = urlsplit(url)
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise StoreError(f"no database file in {url!r}; write sqlite:///path/to/file.db")
        options = parse_qs(parts.query)
        synchronous = options.get("synchronous", ["NORMAL"])[0].upper()
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise StoreError(f"synchronous={synchronous!r} is not one of off, normal, full, extra")
        return SQLiteBackend(url, path, synchronous)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresBackend(url)
    raise StoreError(f"unsupported store URL {url!r}: use sqlite:///path.db or postgresql://user@host/db")
