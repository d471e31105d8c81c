"""Checks on what callers pass to a store, made before the database sees it.

SQLite and PostgreSQL disagree on bad input (SQLite stores a NUL byte that PostgreSQL rejects,
returns every row for ``LIMIT -1`` where PostgreSQL fails, binds an integer key PostgreSQL
refuses to compare with text). Checking here gives one :class:`StoreInputError` with the same
message on both backends, and keeps huge values (a 1 MB id) out of indexes and audit rows.
"""

from __future__ import annotations

from typing import Any

from ..errors import StoreInputError

__all__ = ["MAX_ID_LENGTH", "MAX_LIMIT", "MAX_VERSION", "check_id", "check_optional_id", "check_limit",
           "check_version", "check_optional_version", "check_count", "check_optional_seconds"]

#: Longest id, idempotency key, machine or event name (characters).
MAX_ID_LENGTH = 200
#: Most rows one listing call may ask for.
MAX_LIMIT = 1_000_000
#: Largest machine version (PostgreSQL INTEGER).
MAX_VERSION = 2**31 - 1


def check_id(value: Any, what: str = "instance id") -> str:
    """A non-empty str of at most MAX_ID_LENGTH characters without NUL bytes."""
    if not isinstance(value, str):
        raise StoreInputError(what, value, f"must be a string, not {type(value).__name__}")
    if not value:
        raise StoreInputError(what, value, "must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise StoreInputError(what, value, f"is {len(value)} characters long; at most {MAX_ID_LENGTH} are allowed")
    if "\x00" in value:
        raise StoreInputError(what, value, "must not contain NUL bytes")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise StoreInputError(what, value, "must be valid Unicode text (it holds a lone surrogate)") from None
    return value


def check_optional_id(value: Any, what: str) -> str | None:
    return None if value is None else check_id(value, what)


def _integer(value: Any, what: str, low: int, high: int, *, grouped: bool = True) -> int:
    """An int (not a bool) within ``low .. high``, else StoreInputError naming ``what`` (counts are
    shown with thousands separators, versions as written)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise StoreInputError(what, value, f"must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        bounds = f"{low:,} and {high:,}" if grouped else f"{low} and {high}"
        raise StoreInputError(what, value, f"must be between {bounds}")
    return value


def check_limit(value: Any, what: str = "limit") -> int:
    """A non-negative int up to MAX_LIMIT."""
    return _integer(value, what, 0, MAX_LIMIT)


def check_count(value: Any, what: str) -> int:
    """A positive int up to MAX_LIMIT (batch sizes)."""
    return _integer(value, what, 1, MAX_LIMIT)


def check_version(value: Any, what: str = "version") -> int:
    """A machine version: 1 .. MAX_VERSION."""
    return _integer(value, what, 1, MAX_VERSION, grouped=False)


def check_optional_version(value: Any, what: str = "version") -> int | None:
    return None if value is None else check_version(value, what)


def check_optional_seconds(value: Any, what: str) -> float | None:
    """A finite, non-negative number of seconds (``stuck_for``), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise StoreInputError(what, value, "must be a non-negative number of seconds")
    return float(value)
