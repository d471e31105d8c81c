"""The transactional outbox: events that ``emit`` committed with a state change, waiting to be published.

Each ``emit`` of a stored step becomes a row of ``statechart_outbox`` in the same transaction as
the step. A relay hands the unpublished rows, in commit order (= id order), to a publisher and
marks each one published only after the publisher returned: at-least-once delivery, so consumers
should be idempotent (the outbox id is a good key).

On PostgreSQL several relays may share one outbox: each claims its batch with
``SELECT ... FOR UPDATE SKIP LOCKED`` inside a transaction held while the batch is handed over,
so one event is never in the hands of two relays at the same time. On SQLite run one relay.
"""

from __future__ import annotations

import json
import logging
import operator
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import attrs

from ..errors import DatabaseError, StoreInputError
from .faults import retrying
from .inputs import check_count, check_limit, check_optional_id

if TYPE_CHECKING:  # pragma: no cover
    from .core import Store

__all__ = ["Outbox", "OutboxEvent"]

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


class Outbox:
    """The outbox of one store (``store.outbox``)."""

    def __init__(self, store: "Store") -> None:
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
              on_error: str = "stop") -> int:
        """Hand every unpublished event to ``handler(event)`` in commit order, marking each published
        only after the handler returned for it; poll for new ones until ``stop`` is set (or after
        ``max_idle_polls`` polls in a row found nothing). Returns how many events were delivered.

        When the handler raises, the events before it in the batch are marked, that event and the
        later ones are not (they come again). ``on_error="stop"`` re-raises the handler's exception;
        ``"retry"`` logs it and tries again from that event after ``poll_interval``.

        On PostgreSQL the batch is claimed with ``FOR UPDATE SKIP LOCKED`` in a transaction held
        while the handler runs, so the handler must not write through this Store (open another).

        A transient database failure (the connection dropped, a timeout) is logged, and the relay
        waits ``poll_interval`` and carries on, connecting again; events handed over but not yet
        marked come again (at-least-once).
        """
        if on_error not in ("stop", "retry"):
            raise ValueError(f"on_error must be 'stop' or 'retry', not {on_error!r}")
        check_count(batch, "batch")
        delivered = idle = 0
        while stop is None or not stop.is_set():
            try:
                count = self._relay_batch(handler, batch)
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

    def _relay_batch(self, handler: Callable[[OutboxEvent], Any], batch: int) -> int:
        backend = self.store.backend
        if backend.lock_suffix:  # claim rows so that a concurrent relay skips them until we commit
            with backend.transaction():
                rows = backend.execute(
                    f"SELECT {_COLUMNS} FROM statechart_outbox WHERE published_at IS NULL "
                    f"ORDER BY id LIMIT ?{backend.lock_suffix}", (batch,)).fetchall()
                handed, failure = self._hand_over([_event(row) for row in rows], handler)
                self.mark_published(handed)
        else:
            handed, failure = self._hand_over(self.pending(batch), handler)
            self.mark_published(handed)
        if failure is not None:
            raise _HandlerFailed(len(handed), failure)
        return len(handed)

    @staticmethod
    def _hand_over(events: list[OutboxEvent], handler: Callable[[OutboxEvent], Any]
                   ) -> tuple[list[int], BaseException | None]:
        handed: list[int] = []
        for event in events:
            try:
                handler(event)
            except BaseException as error:  # noqa: BLE001 - reported by relay() after marking the rest
                return handed, error
            handed.append(event.id)
        return handed, None
