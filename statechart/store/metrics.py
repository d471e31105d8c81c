"""Lifecycle metrics of stored instances, computed by the database (GROUP BY), never row by row here.

* events by outcome (applied, unhandled, rejected) and the rate of unhandled + rejected ("illegal")
  events, from the audit log (creation rows are not events);
* transitions per state pair: applied audit rows whose active atomic states changed, grouped by
  the atomic states before and after (comma-separated, as the audit stores them);
* time in state: how long the active atomic states of unfinished instances have been active;
* stuck instances: unfinished instances in a non-final atomic state entered ``stuck_after`` seconds
  ago or earlier, per state, with the ids of the oldest few;
* outbox lag and the number of unpublished events;
* instances per machine and version, and how many of them are done;
* quarantined work per kind (timer, outbox, migration): failing (waiting for its next attempt)
  and parked (waiting for ``store.retry``).

``window`` (seconds) limits the audit-based figures (events, transitions) to the last ``window``
seconds; None means all time. Whether a state is final comes from the registered machine
versions; a state of a version not registered with the store counts as non-final.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs

from ..clock import Clock
from ..machine import Machine
from ..model import StateKind
from .backends import Backend
from .outbox import Outbox

__all__ = ["MetricsSource", "lifecycle_metrics", "Metrics", "EventCounts", "TransitionCount", "StateTime",
           "StuckState", "Population", "FailureCount"]

_START = "(start)"  # the audit label of the creation step, which is not an event


class MetricsSource(Protocol):
    """What the metrics read of a store (a ``Store``). A protocol, not the Store class, so this
    module sits below ``core`` (which calls it) and imports nothing back from it."""

    backend: Backend
    clock: Clock
    machines: dict[tuple[str, int], Machine]

    @property
    def outbox(self) -> Outbox: ...


@attrs.frozen
class EventCounts:
    applied: int = 0
    unhandled: int = 0
    rejected: int = 0

    @property
    def total(self) -> int:
        return self.applied + self.unhandled + self.rejected

    @property
    def illegal(self) -> int:
        return self.unhandled + self.rejected

    @property
    def illegal_rate(self) -> float:
        """(unhandled + rejected) / all events; 0.0 when there were none."""
        return self.illegal / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"applied": self.applied, "unhandled": self.unhandled, "rejected": self.rejected,
                "total": self.total, "illegal": self.illegal, "illegal_rate": self.illegal_rate}


@attrs.frozen
class TransitionCount:
    machine: str
    from_states: str  # the active atomic states before, comma-separated
    to_states: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "from": self.from_states, "to": self.to_states, "count": self.count}


@attrs.frozen
class StateTime:
    machine: str
    state: str
    count: int  # unfinished instances with the state active
    mean_seconds: float
    max_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "state": self.state, "count": self.count,
                "mean_seconds": self.mean_seconds, "max_seconds": self.max_seconds}


@attrs.frozen
class StuckState:
    machine: str
    state: str
    count: int
    oldest: tuple[str, ...]  # instance ids, longest in the state first
    max_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "state": self.state, "count": self.count, "oldest": list(self.oldest),
                "max_seconds": self.max_seconds}


@attrs.frozen
class Population:
    machine: str
    version: int
    instances: int
    done: int

    @property
    def active(self) -> int:
        return self.instances - self.done

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "version": self.version, "instances": self.instances,
                "active": self.active, "done": self.done}


@attrs.frozen
class FailureCount:
    """Quarantined work of one kind: ``failing`` will be retried after its backoff, ``parked`` waits
    for ``store.retry``."""

    kind: str
    failing: int
    parked: int

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "failing": self.failing, "parked": self.parked}


@attrs.frozen
class Metrics:
    """A consistent-enough picture of the store at ``now`` (each figure is one query)."""

    now: float
    machine: str | None
    window: float | None
    stuck_after: float
    events: EventCounts
    transitions: tuple[TransitionCount, ...]
    time_in_state: tuple[StateTime, ...]
    stuck: tuple[StuckState, ...]  # per state: an instance stuck in two parallel states is in both
    stuck_instances: int  # distinct instances stuck in at least one state
    outbox_lag: float
    outbox_unpublished: int
    instances: tuple[Population, ...]
    failures: tuple[FailureCount, ...] = ()

    @property
    def parked(self) -> int:
        """Parked items of every kind."""
        return sum(f.parked for f in self.failures)

    @property
    def illegal_rate(self) -> float:
        return self.events.illegal_rate

    @property
    def events_per_second(self) -> float | None:
        """Events per second over the window (None for all time)."""
        return self.events.total / self.window if self.window else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now,
            "machine": self.machine,
            "window_seconds": self.window,
            "stuck_after_seconds": self.stuck_after,
            "instances": [p.to_dict() for p in self.instances],
            "events": {**self.events.to_dict(), "per_second": self.events_per_second},
            "transitions": [t.to_dict() for t in self.transitions],
            "time_in_state": [t.to_dict() for t in self.time_in_state],
            "stuck": {"instances": self.stuck_instances, "states": [s.to_dict() for s in self.stuck]},
            "outbox": {"lag_seconds": self.outbox_lag, "unpublished": self.outbox_unpublished},
            "failures": {"parked": self.parked, "kinds": [f.to_dict() for f in self.failures]},
        }


def lifecycle_metrics(store: MetricsSource, *, machine: str | None = None, window: float | None = None,
                      stuck_after: float = 3600.0, now: float | None = None, oldest: int = 5) -> Metrics:
    """Compute the lifecycle metrics of ``store`` (of one machine's instances when ``machine`` is given)
    at ``now`` (default: the store's clock). ``oldest``: how many stuck ids to name per state."""
    if window is not None and window <= 0:
        raise ValueError("window must be a positive number of seconds (or None for all time)")
    if stuck_after < 0:
        raise ValueError("stuck_after cannot be negative")
    now = float(store.clock.now() if now is None else now)
    outbox = store.outbox
    stuck, stuck_instances = _stuck(store, machine, now, stuck_after, oldest)
    return Metrics(
        now=now, machine=machine, window=window, stuck_after=stuck_after,
        events=_events(store, machine, now, window),
        transitions=_transitions(store, machine, now, window),
        time_in_state=_time_in_state(store, machine, now),
        stuck=stuck,
        stuck_instances=stuck_instances,
        outbox_lag=outbox.lag(now, machine=machine),
        outbox_unpublished=outbox.count(False, machine=machine),
        instances=_population(store, machine),
        failures=_failures(store, machine),
    )


def _audit_filters(machine: str | None, now: float, window: float | None) -> tuple[str, list[Any]]:
    sql, params = "", []
    if machine is not None:
        sql += " AND machine = ?"
        params.append(machine)
    if window is not None:
        sql += " AND created_at >= ?"
        params.append(now - window)
    return sql, params


def _events(store: MetricsSource, machine: str | None, now: float, window: float | None) -> EventCounts:
    extra, params = _audit_filters(machine, now, window)
    rows = store.backend.execute(
        f"SELECT outcome, COUNT(*) FROM statechart_audit WHERE event <> ?{extra} GROUP BY outcome",
        [_START, *params]).fetchall()
    counts = {outcome: int(count) for outcome, count in rows}
    return EventCounts(counts.get("applied", 0), counts.get("unhandled", 0), counts.get("rejected", 0))


def _transitions(store: MetricsSource, machine: str | None, now: float, window: float | None
                 ) -> tuple[TransitionCount, ...]:
    extra, params = _audit_filters(machine, now, window)
    rows = store.backend.execute(
        "SELECT machine, from_states, to_states, COUNT(*) AS n FROM statechart_audit "
        f"WHERE outcome = 'applied' AND from_states <> to_states AND from_states <> ''{extra} "
        "GROUP BY machine, from_states, to_states ORDER BY n DESC, machine, from_states, to_states",
        params).fetchall()
    return tuple(TransitionCount(m, f, t, int(n)) for m, f, t, n in rows)


def _active_states_where(machine: str | None) -> tuple[str, list[Any]]:
    sql = ("FROM statechart_instance_states s JOIN statechart_instances i ON i.id = s.instance_id "
           "WHERE s.atomic = ? AND i.done = ?")
    params: list[Any] = [True, False]
    if machine is not None:
        sql += " AND i.machine = ?"
        params.append(machine)
    return sql, params


def _time_in_state(store: MetricsSource, machine: str | None, now: float) -> tuple[StateTime, ...]:
    source, params = _active_states_where(machine)
    rows = store.backend.execute(
        f"SELECT i.machine, s.state, COUNT(*), AVG(s.entered_at), MIN(s.entered_at) {source} "
        "GROUP BY i.machine, s.state ORDER BY i.machine, s.state", params).fetchall()
    return tuple(StateTime(m, state, int(n), max(0.0, now - float(mean)), max(0.0, now - float(first)))
                 for m, state, n, mean, first in rows)


def _stuck(store: MetricsSource, machine: str | None, now: float, stuck_after: float, oldest: int
           ) -> tuple[tuple[StuckState, ...], int]:
    source, params = _active_states_where(machine)
    not_final, final_params = _not_final(store, machine)
    source += f" AND s.entered_at <= ?{not_final}"
    params += [now - stuck_after, *final_params]
    # Per (machine, state): the group's size and its `oldest` longest-waiting rows, in one query.
    rows = store.backend.execute(
        "SELECT machine, state, instance_id, entered_at, n FROM ("
        "SELECT i.machine, s.state, s.instance_id, s.entered_at, "
        "COUNT(*) OVER (PARTITION BY i.machine, s.state) AS n, "
        "ROW_NUMBER() OVER (PARTITION BY i.machine, s.state ORDER BY s.entered_at, s.instance_id) AS r "
        f"{source}) ranked WHERE r <= ? ORDER BY machine, state, entered_at, instance_id",
        [*params, max(1, oldest)]).fetchall()
    groups: dict[tuple[str, str], list[Any]] = {}
    for name, state, instance_id, entered_at, n in rows:
        groups.setdefault((name, state), [int(n), float(entered_at), []])[2].append(instance_id)
    stuck = tuple(sorted((StuckState(name, state, n, tuple(ids[:oldest]), max(0.0, now - first))
                          for (name, state), (n, first, ids) in groups.items()),
                         key=lambda s: (-s.count, s.machine, s.state)))
    distinct = store.backend.execute(f"SELECT COUNT(DISTINCT s.instance_id) {source}", params).fetchone()[0]
    return stuck, int(distinct)


def _not_final(store: MetricsSource, machine: str | None) -> tuple[str, list[Any]]:
    """An SQL condition leaving out the final states of the registered machine versions."""
    sql, params = "", []
    for (name, version), registered in sorted(store.machines.items()):
        if machine is not None and name != machine:
            continue
        finals = sorted(s.id for s in registered.model.states.values() if s.kind is StateKind.FINAL)
        if finals:
            sql += f" AND NOT (i.machine = ? AND i.version = ? AND s.state IN ({', '.join('?' * len(finals))}))"
            params += [name, version, *finals]
    return sql, params


def _population(store: MetricsSource, machine: str | None) -> tuple[Population, ...]:
    sql = ("SELECT machine, version, COUNT(*), SUM(CASE WHEN done THEN 1 ELSE 0 END) FROM statechart_instances"
           + (" WHERE machine = ?" if machine is not None else "") + " GROUP BY machine, version ORDER BY machine, version")
    rows = store.backend.execute(sql, [machine] if machine is not None else []).fetchall()
    return tuple(Population(m, int(v), int(n), int(d or 0)) for m, v, n, d in rows)


def _failures(store: MetricsSource, machine: str | None) -> tuple[FailureCount, ...]:
    from .quarantine import KINDS

    sql = "SELECT f.kind, f.parked, COUNT(*) FROM statechart_failures f"
    params: list[Any] = []
    if machine is not None:
        sql += " JOIN statechart_instances i ON i.id = f.instance_id WHERE i.machine = ?"
        params.append(machine)
    counts = {(kind, bool(parked)): int(n) for kind, parked, n in
              store.backend.execute(sql + " GROUP BY f.kind, f.parked", params).fetchall()}
    return tuple(FailureCount(kind, counts.get((kind, False), 0), counts.get((kind, True), 0)) for kind in KINDS)
