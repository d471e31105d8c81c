"""Quarantine: work that keeps failing for one instance is retried with backoff, then parked.

A timer whose step raises, an outbox event its publisher refuses, a migration step that cannot
map one instance: each failure is one row of ``statechart_failures`` per (kind, instance) with the
error, the number of attempts and when to try again (exponential backoff from
``Store.retry_backoff`` seconds, doubling, at most ``MAX_BACKOFF``). After ``Store.max_attempts``
attempts the row is *parked*: nothing retries it until someone calls ``store.retry(id)``
(``statechart instances retry ID``). Meanwhile the worker, the relays and the migration runner go
on with every other instance, so one poison instance never stops the others.

The functions here run inside the caller's transaction; the Store calls them.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import attrs

from .backends import Backend

__all__ = ["QuarantineHost", "Failure", "KINDS", "MAX_BACKOFF", "backoff", "record_failure", "clear_failure",
           "failures", "blocked_clause"]

class QuarantineHost(Protocol):
    """What quarantine needs of a store (a ``Store``): its connection and retry policy. A protocol,
    not the Store class, so this module sits below ``core`` and imports nothing back from it."""

    backend: Backend
    max_attempts: int
    retry_backoff: float


#: What can fail for one instance: firing its timer, publishing its outbox event, migrating it.
KINDS = ("timer", "outbox", "migration")
#: The longest wait between two attempts, in seconds.
MAX_BACKOFF = 3600.0
_COLUMNS = ("kind, instance_id, item, attempts, error, parked, first_failed_at, last_failed_at, "
            "next_attempt_at")


@attrs.frozen
class Failure:
    """One instance's failing work of one kind, as recorded."""

    kind: str
    instance_id: str
    item: str  # what failed: the timer's event and send id, the outbox id, the migration step
    attempts: int
    error: str
    parked: bool
    first_failed_at: float
    last_failed_at: float
    next_attempt_at: float

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def backoff(attempts: int, base: float) -> float:
    """Seconds to wait after the ``attempts``-th failure: base, 2 x base, 4 x base ... at most MAX_BACKOFF."""
    return min(MAX_BACKOFF, base * 2 ** min(attempts - 1, 32))


def _failure(row: Sequence[Any]) -> Failure:
    return Failure(row[0], row[1], row[2], int(row[3]), row[4], bool(row[5]), float(row[6]), float(row[7]),
                   float(row[8]))


def record_failure(store: QuarantineHost, kind: str, instance_id: str, item: str, error: str, now: float) -> Failure:
    """Count one more failed attempt of ``kind`` for the instance; park it at ``store.max_attempts``."""
    backend = store.backend
    row = backend.execute(f"SELECT attempts, first_failed_at FROM statechart_failures WHERE kind = ? "
                          f"AND instance_id = ?{backend.row_lock}", (kind, instance_id)).fetchone()
    attempts = (int(row[0]) if row else 0) + 1
    first = float(row[1]) if row else now
    parked = attempts >= store.max_attempts
    next_attempt = now + backoff(attempts, store.retry_backoff)
    backend.execute(
        f"INSERT INTO statechart_failures ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (kind, instance_id) DO UPDATE SET item = excluded.item, attempts = excluded.attempts, "
        "error = excluded.error, parked = excluded.parked, last_failed_at = excluded.last_failed_at, "
        "next_attempt_at = excluded.next_attempt_at",
        (kind, instance_id, item, attempts, error, parked, first, now, next_attempt))
    return Failure(kind, instance_id, item, attempts, error, parked, first, now, next_attempt)


def clear_failure(store: QuarantineHost, kind: str, instance_id: str) -> None:
    """The work succeeded (or is retried by hand): forget its failures."""
    store.backend.execute("DELETE FROM statechart_failures WHERE kind = ? AND instance_id = ?", (kind, instance_id))


def failures(store: QuarantineHost, *, kind: str | None = None, parked: bool | None = None,
             instance_id: str | None = None, limit: int = 100, after: str | None = None) -> list[Failure]:
    """Recorded failures by instance id (keyset pagination: pass the last instance id as ``after``)."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("kind", kind), ("parked", parked), ("instance_id", instance_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if after is not None:
        where.append("instance_id > ?")
        params.append(after)
    params.append(limit)
    rows = store.backend.execute(
        f"SELECT {_COLUMNS} FROM statechart_failures {'WHERE ' + ' AND '.join(where) if where else ''} "
        "ORDER BY instance_id, kind LIMIT ?", params).fetchall()
    return [_failure(row) for row in rows]


def blocked_clause(kind: str, instance_column: str) -> str:
    """SQL that is true when the instance's work of ``kind`` must wait (parked, or backing off);
    takes two parameters: True (parked) and now."""
    return (f"EXISTS (SELECT 1 FROM statechart_failures f WHERE f.kind = '{kind}' AND f.instance_id = "
            f"{instance_column} AND (f.parked = ? OR f.next_attempt_at > ?))")
