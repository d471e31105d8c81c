"""The transactional outbox: events that ``emit`` committed with a state change, waiting to be published.

Each ``emit`` of a stored step becomes a row of ``statechart_outbox`` in the same transaction as
the step. A relay hands the unpublished rows, in commit order (= id order), to a publisher and
marks each one published only after the publisher returned: at-least-once delivery, so consumers
should be idempotent (the outbox id is a good key).

Any number of relays may share one outbox, on either backend, and each instance's events still
arrive in commit order: a relay first *claims instances* (a row of ``statechart_outbox_claims``
per instance, with a lease, in one short transaction), then hands over the unpublished events of
the instances it claimed, oldest first, then marks them published and drops its claims. Another
relay skips claimed instances, so it never publishes an instance's later event while an earlier
one is in someone else's hands. No transaction is held while the publisher runs. A relay that
dies leaves its claims to expire after ``lease`` seconds (its events are then delivered again:
at-least-once); a relay stops handing over an instance's events once its lease ran out.

With ``on_error="quarantine"`` a publisher failure is recorded for that instance only (see
``store/quarantine.py``): its later events wait (order is kept), the other instances go on, and
after ``store.max_attempts`` failures the instance is parked until ``store.retry(id)``.
"""

from __future__ import annotations

import json
import logging
import operator
import threading
import time
import uuid
from typing import Any, Callable, Iterable, Protocol, Sequence

import attrs

from ..errors import DatabaseError, StoreInputError
from .faults import retrying
from ..clock import Clock
from .inputs import check_count, check_limit, check_optional_id
from .quarantine import Failure, QuarantineHost

__all__ = ["Outbox", "OutboxEvent", "OutboxHost"]

_log = logging.getLogger("statechart.outbox")
_COLUMNS = "id, instance_id, machine, event, data, created_at, published_at"
_CHUNK = 500  # ids per IN (...) list
_MAX_OUTBOX_ID = 2**63 - 1  # PostgreSQL BIGSERIAL


def _outbox_id(value: Any, what: str = "outbox id") -> int:
    """An outbox id: any integer type (``operator.index``: a numpy integer too, not a string or a
    float), checked for range so that both backends answer the same."""
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise StoreInputError(what, value, f"must be an integer, not {type(value).__name__}") from None
    if not 0 <= value <= _MAX_OUTBOX_ID:
        raise StoreInputError(what, value, f"must be between 0 and {_MAX_OUTBOX_ID}")
    return value
#: Seconds a relay's claim on an instance lasts; a publish must take less than this.
DEFAULT_LEASE = 300.0
_POLICIES = ("stop", "retry", "quarantine")


@attrs.frozen
class OutboxEvent:
    """One emitted event as committed: ``id`` orders events by commit."""

    id: int
    instance_id: str
    machine: str
    event: str
    data: Any
    created_at: float
    published_at: float | None = None

    @property
    def published(self) -> bool:
        return self.published_at is not None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "instance_id": self.instance_id, "machine": self.machine, "event": self.event,
                "data": self.data, "created_at": self.created_at, "published_at": self.published_at}


def _event(row: Sequence[Any]) -> OutboxEvent:
    return OutboxEvent(int(row[0]), row[1], row[2], row[3], json.loads(row[4]) if row[4] is not None else None,
                       row[5], row[6])


class _HandlerFailed(Exception):
    """The handler raised after ``delivered`` events of the batch were handed over and marked."""

    def __init__(self, delivered: int, error: BaseException) -> None:
        super().__init__(delivered, error)
        self.delivered = delivered
        self.error = error


class OutboxHost(QuarantineHost, Protocol):
    """What the outbox needs of a store (a ``Store``). A protocol, not the Store class, so the
    outbox sits below ``core`` (which builds it) and imports nothing back from it."""

    clock: Clock
    retries: int

    def audit_failure(self, instance_id: str, event: str, actor: str | None, failure: Failure) -> None: ...


class Outbox:
    """The outbox of one store (``store.outbox``)."""

    def __init__(self, store: OutboxHost) -> None:
        self.store = store

    # -- reading -------------------------------------------------------------------------------------
    def pending(self, limit: int = 100, after_id: int | None = None, *, machine: str | None = None
                ) -> list[OutboxEvent]:
        """Unpublished events in commit order (ids after ``after_id``, at most ``limit``)."""
        check_limit(limit)
        if after_id is not None:
            _outbox_id(after_id, "after id")
        where, params = self._where(False, machine)
        if after_id is not None:
            where.append("id > ?")
            params.append(after_id)
        params.append(limit)
        rows = self.store.backend.execute(
            f"SELECT {_COLUMNS} FROM statechart_outbox WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
            params).fetchall()
        return [_event(row) for row in rows]

    def events(self, ids: Iterable[int]) -> list[OutboxEvent]:
        """The events with these ids, published or not, in id order (unknown ids are left out)."""
        wanted = sorted({_outbox_id(i) for i in ids})
        found: list[OutboxEvent] = []
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start:start + _CHUNK]
            rows = self.store.backend.execute(
                f"SELECT {_COLUMNS} FROM statechart_outbox WHERE id IN ({', '.join('?' * len(chunk))}) "
                "ORDER BY id", chunk).fetchall()
            found.extend(_event(row) for row in rows)
        return found

    def count(self, published: bool | None = None, *, machine: str | None = None) -> int:
        """How many events: all (None), published (True) or unpublished (False)."""
        where, params = self._where(published, machine)
        sql = "SELECT COUNT(*) FROM statechart_outbox" + (f" WHERE {' AND '.join(where)}" if where else "")
        return int(self.store.backend.execute(sql, params).fetchone()[0])

    def lag(self, now: float | None = None, *, machine: str | None = None) -> float:
        """Seconds the oldest unpublished event has waited (0.0 when none waits)."""
        where, params = self._where(False, machine)
        row = self.store.backend.execute(
            f"SELECT MIN(created_at) FROM statechart_outbox WHERE {' AND '.join(where)}", params).fetchone()
        if row is None or row[0] is None:
            return 0.0
        now = self.store.clock.now() if now is None else now
        return max(0.0, float(now) - float(row[0]))

    @staticmethod
    def _where(published: bool | None, machine: str | None) -> tuple[list[str], list[Any]]:
        check_optional_id(machine, "machine name")
        where: list[str] = []
        params: list[Any] = []
        if published is not None:
            where.append("published_at IS NOT NULL" if published else "published_at IS NULL")
        if machine is not None:
            where.append("machine = ?")
            params.append(machine)
        return where, params

    # -- marking --------------------------------------------------------------------------------------
    def mark_published(self, ids: Iterable[int], *, now: float | None = None) -> int:
        """Mark events published in one transaction; returns how many were not published before
        (marking an already published or unknown id again changes nothing)."""
        wanted = sorted({_outbox_id(i) for i in ids})
        if not wanted:
            return 0
        backend = self.store.backend
        moment = self.store.clock.now() if now is None else now

        def mark() -> int:
            marked = 0
            with backend.transaction():
                for start in range(0, len(wanted), _CHUNK):
                    chunk = wanted[start:start + _CHUNK]
                    marked += backend.execute(
                        f"UPDATE statechart_outbox SET published_at = ? WHERE published_at IS NULL "
                        f"AND id IN ({', '.join('?' * len(chunk))})", [moment, *chunk]).rowcount
            return marked

        return retrying(mark, self.store.retries, what="marking outbox events published", repeatable=True,
                        backend=backend)

    # -- relaying --------------------------------------------------------------------------------------
    def relay(self, handler: Callable[[OutboxEvent], Any], *, batch: int = 100, poll_interval: float = 1.0,
              stop: threading.Event | None = None, max_idle_polls: int | None = None,
              on_error: str = "stop", lease: float = DEFAULT_LEASE) -> int:
        """Hand every unpublished event to ``handler(event)`` in commit order, marking each published
        only after the handler returned for it; poll for new ones until ``stop`` is set (or after
        ``max_idle_polls`` polls in a row found nothing). Returns how many events were delivered.

        When the handler raises, the events before it in the batch are marked, that event and the
        later ones are not (they come again). ``on_error="stop"`` re-raises the handler's exception;
        ``"retry"`` logs it and tries again from that event after ``poll_interval``; ``"quarantine"``
        records the failure for that event's instance (retried with backoff, parked after
        ``store.max_attempts``) and goes on with the other instances.

        Several relays (threads, processes, machines) may run at once: each instance is claimed by
        one relay at a time for ``lease`` seconds, so its events arrive in commit order.

        A transient database failure (the connection dropped, a timeout) is logged, and the relay
        waits ``poll_interval`` and carries on, connecting again; events handed over but not yet
        marked come again (at-least-once).
        """
        if on_error not in _POLICIES:
            raise ValueError(f"on_error must be 'stop', 'retry' or 'quarantine', not {on_error!r}")
        check_count(batch, "batch")
        if not lease > 0:
            raise ValueError(f"lease must be a positive number of seconds, not {lease!r}")
        delivered = idle = 0
        while stop is None or not stop.is_set():
            try:
                count = self._relay_batch(handler, batch, lease, on_error == "quarantine")
            except _HandlerFailed as failure:
                delivered += failure.delivered
                if on_error == "stop" or not isinstance(failure.error, Exception):
                    raise failure.error from None
                _log.warning("outbox relay: the handler raised %s: %s; retrying in %gs",
                             type(failure.error).__name__, failure.error, poll_interval,
                             exc_info=failure.error)
                idle = 0
                self._wait(stop, poll_interval)
                continue
            except DatabaseError as error:
                if not (error.retryable or error.commit_unknown):
                    raise
                _log.warning("outbox relay: %s; trying again in %gs", error, poll_interval)
                self._wait(stop, poll_interval)
                continue
            delivered += count
            if count:
                idle = 0
                continue
            idle += 1
            if max_idle_polls is not None and idle >= max_idle_polls:
                break
            self._wait(stop, poll_interval)
        return delivered

    @staticmethod
    def _wait(stop: threading.Event | None, seconds: float) -> None:
        if stop is not None:
            stop.wait(seconds)
        else:
            time.sleep(seconds)

    def _relay_batch(self, handler: Callable[[OutboxEvent], Any], batch: int, lease: float,
                     quarantine: bool) -> int:
        token = uuid.uuid4().hex
        claimed, failing_before, expires = self._claim(token, batch, lease)
        if not claimed:
            return 0
        try:
            events = self._claimed_events(claimed, batch)
            handed, failure, failed = self._hand_over(events, handler, expires, quarantine)
        except BaseException:
            self._release(token, [], {}, set())
            raise
        delivered = set(handed)
        recovered = {e.instance_id for e in events if e.id in delivered and e.instance_id in failing_before}
        self._release(token, handed, failed, recovered - set(failed))
        if failure is not None:
            raise _HandlerFailed(len(handed), failure)
        return len(handed)

    def _claim(self, token: str, batch: int, lease: float) -> tuple[list[str], set[str], float]:
        """Claim up to ``batch`` instances with unpublished events, oldest first, that no live relay
        holds and that are not quarantined; one short transaction."""
        from .backends import RetryableError
        from .quarantine import blocked_clause

        store = self.store
        backend = store.backend
        now = store.clock.now()
        expires = now + lease
        claimed: list[str] = []
        failing_before: set[str] = set()
        try:
            with backend.transaction():
                # The oldest unpublished events of free instances (walked in id order on the index, so a
                # large backlog costs no more than the window), grouped by instance.
                candidates = backend.execute(
                    "SELECT instance_id, MIN(id) AS oldest, EXISTS (SELECT 1 FROM statechart_failures f WHERE "
                    "f.kind = 'outbox' AND f.instance_id = oldest_events.instance_id) "
                    "FROM (SELECT o.id, o.instance_id FROM statechart_outbox o "
                    "WHERE o.published_at IS NULL AND NOT EXISTS (SELECT 1 FROM statechart_outbox_claims c "
                    f"WHERE c.instance_id = o.instance_id AND c.expires_at > ?) AND NOT "
                    f"{blocked_clause('outbox', 'o.instance_id')} ORDER BY o.id LIMIT ?) oldest_events "
                    "GROUP BY instance_id ORDER BY oldest LIMIT ?", (now, True, now, batch * 4, batch)).fetchall()
                failing_before = {row[0] for row in candidates if row[2]}  # failed before, backoff over
                wanted = sorted(row[0] for row in candidates)  # one lock order: no deadlocks between relays
                for start in range(0, len(wanted), _CHUNK):
                    # One statement per chunk; an instance a live relay claimed since we looked is not returned.
                    chunk = wanted[start:start + _CHUNK]
                    taken = backend.execute(
                        "INSERT INTO statechart_outbox_claims (instance_id, token, expires_at) VALUES "
                        f"{', '.join(['(?, ?, ?)'] * len(chunk))} ON CONFLICT (instance_id) DO UPDATE SET "
                        "token = excluded.token, expires_at = excluded.expires_at "
                        "WHERE statechart_outbox_claims.expires_at <= ? RETURNING instance_id",
                        [*(value for instance_id in chunk for value in (instance_id, token, expires)), now]
                    ).fetchall()
                    claimed.extend(sorted(row[0] for row in taken))
        except RetryableError:  # a concurrent relay won a race: try again next round
            return [], set(), expires
        return claimed, failing_before, expires

    def _claimed_events(self, claimed: list[str], batch: int) -> list[OutboxEvent]:
        """The unpublished events of the claimed instances, in commit order (read after the claim
        committed, so nothing another relay published before is handed over again)."""
        backend = self.store.backend
        events: list[OutboxEvent] = []
        for start in range(0, len(claimed), _CHUNK):
            chunk = claimed[start:start + _CHUNK]
            rows = backend.execute(
                f"SELECT {_COLUMNS} FROM statechart_outbox WHERE published_at IS NULL AND instance_id IN "
                f"({', '.join('?' * len(chunk))}) ORDER BY id LIMIT ?", [*chunk, batch]).fetchall()
            events.extend(_event(row) for row in rows)
        events.sort(key=lambda event: event.id)
        return events[:batch]

    def _release(self, token: str, handed: list[int], failed: dict[str, tuple[OutboxEvent, BaseException]],
                 recovered: set[str]) -> None:
        """Mark what was handed over, record the quarantined failures, forget the failures of instances
        whose events went through this time, drop this round's claims."""
        from .quarantine import clear_failure, record_failure

        store = self.store
        backend = store.backend
        with backend.transaction():
            self.mark_published(handed)
            now = store.clock.now()
            for instance_id, (event, error) in failed.items():
                reason = f"{type(error).__name__}: {error}"[:1000]
                failure = record_failure(store, "outbox", instance_id, f"outbox #{event.id} {event.event}", reason,
                                         now)
                store.audit_failure(instance_id, f"(publish {event.event})", "relay", failure)
                _log.warning("outbox relay: publishing event %d of instance %r failed (attempt %d): %s", event.id,
                             instance_id, failure.attempts, reason)
            for instance_id in sorted(recovered):
                clear_failure(store, "outbox", instance_id)
            backend.execute("DELETE FROM statechart_outbox_claims WHERE token = ?", (token,))

    def _hand_over(self, events: list[OutboxEvent], handler: Callable[[OutboxEvent], Any], expires: float,
                   quarantine: bool) -> tuple[list[int], BaseException | None, dict[str, tuple[OutboxEvent, BaseException]]]:
        """Hand events over in commit order. An instance whose event failed (quarantine) or whose lease
        ran out gets none of its later events this round: they would overtake the earlier one."""
        clock = self.store.clock
        handed: list[int] = []
        failed: dict[str, tuple[OutboxEvent, BaseException]] = {}
        for event in events:
            if event.instance_id in failed:
                continue
            if clock.now() >= expires:  # another relay may own these instances by now
                break
            try:
                handler(event)
            except BaseException as error:  # noqa: BLE001 - reported by relay() after marking the rest
                if quarantine and isinstance(error, Exception):
                    failed[event.instance_id] = (event, error)
                    continue
                return handed, error, failed
            handed.append(event.id)
        return handed, None, failed
