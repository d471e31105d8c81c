"""Simulator sessions: an Instance on a VirtualClock, what its last step did, and a way back.

A session is the server-side half of the simulator page. Every change (start, send, advance)
pushes the snapshot and clock it started from onto a bounded stack, so "step back" restores the
instance exactly as it was (``Machine.restore`` runs no action). Sessions live in memory only,
in a bounded registry: the oldest idle ones are dropped, so a page left open for a week, or a
script creating sessions in a loop, cannot grow the server without limit.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
from collections import OrderedDict
from typing import Any, Mapping

import attrs

from ..clock import VirtualClock
from ..durations import parse_duration
from ..errors import StatechartError
from ..instance import Instance, SendResult
from ..jsonvalues import check_json
from ..machine import Machine
from ..snapshot import Snapshot

__all__ = ["Step", "Session", "Sessions", "SimulatorError", "SessionNotFoundError", "format_clock",
           "MAX_TIMERS_PER_ADVANCE", "MAX_ADVANCE_SECONDS"]

#: An ``advance`` fires at most this many timers (a 1s ``after`` loop advanced by a year would
#: otherwise run 31 million macrosteps); the clock then stops at the last timer fired.
MAX_TIMERS_PER_ADVANCE = 1000
#: The longest single advance (about 100 years), so that the clock stays a sensible float.
MAX_ADVANCE_SECONDS = 100 * 365 * 86400.0


class SimulatorError(StatechartError):
    """A simulator request that cannot be done as asked (a bad duration, nothing to step back to)."""


class SessionNotFoundError(SimulatorError):
    """The session id is unknown or its session was dropped (the server keeps a bounded number)."""


@attrs.frozen
class Step:
    """What one simulator action did, as the page shows it."""

    kind: str  # "start" | "send" | "advance" | "back"
    label: str  # "ADD {"price": 5}", "+2d (2 timers fired)", ...
    handled: bool = True
    transitions: tuple[str, ...] = ()
    effects: tuple[tuple[str, Any], ...] = ()
    logs: tuple[tuple[str | None, Any], ...] = ()
    errors: tuple[str, ...] = ()
    timers_fired: tuple[str, ...] = ()

    @classmethod
    def of(cls, kind: str, label: str, results: list[SendResult], *, handled: bool | None = None) -> "Step":
        return cls(
            kind=kind, label=label,
            handled=any(r.handled for r in results) if handled is None else handled,
            transitions=tuple(t for r in results for t in r.transitions),
            effects=tuple((e.event, e.data) for r in results for e in r.effects),
            logs=tuple(entry for r in results for entry in r.logs),
            errors=tuple(message for r in results for message in r.errors),
            timers_fired=tuple(r.event for r in results) if kind == "advance" else (),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "handled": self.handled,
                "transitions": list(self.transitions),
                "effects": [{"event": event, "data": data} for event, data in self.effects],
                "logs": [{"label": label, "value": value} for label, value in self.logs],
                "errors": list(self.errors), "timers_fired": list(self.timers_fired)}


def format_clock(seconds: float) -> str:
    """``+1d 2h 3m 4s`` since the session started (``+0s`` at the start)."""
    whole = int(seconds)
    fraction = seconds - whole
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    if whole or fraction or not parts:
        parts.append(f"{whole + fraction:g}s")
    return "+" + " ".join(parts)


def _payload_text(data: Any) -> str:
    text = json.dumps(data, separators=(",", ":"))
    return text if len(text) <= 60 else text[:59] + "\u2026"


class Session:
    """One simulated instance with its undo stack. Not thread-safe: :class:`Sessions` locks it."""

    def __init__(self, session_id: str, machine: Machine, data: Mapping[str, Any] | None = None, *,
                 history_limit: int = 200) -> None:
        self.id = session_id
        self.machine = machine
        self.history_limit = history_limit
        self.clock = VirtualClock(0.0)
        self.instance: Instance = machine.start(data=data, clock=self.clock, session_id=session_id)
        initial = self.instance.initial_result
        self.last = Step.of("start", "start", [initial] if initial is not None else [], handled=True)
        self.lock = threading.Lock()
        self._history: list[tuple[Snapshot, float, Step]] = []

    @property
    def depth(self) -> int:
        """How many steps back are possible."""
        return len(self._history)

    def _push(self) -> None:
        self._history.append((self.instance.snapshot(), self.clock.now(), self.last))
        del self._history[:-self.history_limit]

    def send(self, event: str, data: Any = None) -> Step:
        """Send one external event; an error leaves the session as it was."""
        if not isinstance(event, str) or not event.strip():
            raise SimulatorError("an event name is needed (a non-empty string)")
        try:
            check_json(data, "the payload")
        except (TypeError, ValueError) as error:
            raise SimulatorError(str(error)) from None
        before = (self.instance.snapshot(), self.clock.now(), self.last)
        result = self.instance.send(event, data)  # raises before changing anything
        self._history.append(before)
        del self._history[:-self.history_limit]
        label = event if data is None else f"{event} {_payload_text(data)}"
        self.last = Step.of("send", label, [result])
        return self.last

    def advance(self, duration: Any = None, *, to_next: bool = False) -> Step:
        """Move the virtual clock by ``duration`` (``30m``, ``2d``, seconds) or to the next timer,
        firing what falls due on the way, in order."""
        if to_next:
            upcoming = self.instance.next_due
            if upcoming is None:
                raise SimulatorError("no timer is pending: nothing to advance to")
            seconds = max(0.0, upcoming - self.clock.now())
        else:
            try:
                seconds = parse_duration(duration)
            except ValueError as error:
                raise SimulatorError(str(error)) from None
            if not math.isfinite(seconds) or seconds > MAX_ADVANCE_SECONDS:
                raise SimulatorError(f"advance by at most {MAX_ADVANCE_SECONDS / 86400 / 365:.0f} years at a time")
        self._push()
        target = self.clock.now() + seconds
        fired: list[SendResult] = []
        stopped = False
        while not self.instance.done:
            upcoming = self.instance.next_due
            if upcoming is None or upcoming > target:
                break
            if len(fired) >= MAX_TIMERS_PER_ADVANCE:
                stopped = True
                break
            self.clock.set(upcoming)
            fired.extend(self.instance.fire_due())
        if not stopped:
            self.clock.set(target)
        label = f"+{format_clock(seconds)[1:]}: " + (f"{len(fired)} timer{'s' * (len(fired) != 1)} fired"
                                                     if fired else "no timer due")
        if stopped:
            label += f" (stopped after {MAX_TIMERS_PER_ADVANCE} timers at {format_clock(self.clock.now())})"
        self.last = Step.of("advance", label, fired, handled=bool(fired))
        return self.last

    def back(self) -> Step:
        """Restore the instance and the clock as they were before the last start/send/advance."""
        if not self._history:
            raise SimulatorError("nothing to step back to: this is where the session started")
        snapshot, moment, step = self._history.pop()
        self.clock = VirtualClock(moment)
        self.instance = self.machine.restore(snapshot, clock=self.clock)
        self.last = step  # the page shows what led to the state it is back in
        return step

    def view(self) -> dict[str, Any]:
        """The session as JSON-ready values (the diagram is added by the app)."""
        instance = self.instance
        states = self.machine.model.states
        now = self.clock.now()
        return {
            "id": self.id, "machine": self.machine.name, "version": self.machine.version,
            "clock": now, "clock_text": format_clock(now),
            "configuration": sorted(instance.configuration, key=lambda s: states[s].order),
            "active_leaves": instance.active_leaves(), "data": instance.data, "done": instance.done,
            "enabled_events": [] if instance.done else instance.enabled_events(),
            "pending": [{"id": p.id, "event": p.event, "data": p.data, "due": p.due,
                         "due_text": format_clock(p.due), "in_text": format_clock(max(0.0, p.due - now))}
                        for p in instance.pending_sends],
            "last": self.last.to_dict(), "depth": self.depth,
        }


class Sessions:
    """The live sessions by id, at most ``limit`` of them (the least recently used is dropped)."""

    def __init__(self, limit: int = 64, history_limit: int = 200) -> None:
        self.limit = limit
        self.history_limit = history_limit
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, machine: Machine, data: Mapping[str, Any] | None = None) -> Session:
        if data is not None and not isinstance(data, Mapping):
            raise SimulatorError("initial data must be a JSON object, like {\"total\": 0}")
        if data is not None:
            try:
                check_json(dict(data), "the initial data")
            except (TypeError, ValueError) as error:
                raise SimulatorError(str(error)) from None
        session = Session(secrets.token_urlsafe(12), machine, data, history_limit=self.history_limit)
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > self.limit:
                self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str) -> Session:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise SessionNotFoundError(f"no simulator session {session_id!r} (it may have expired: the "
                                           f"server keeps the {self.limit} most recent); start a new one")
            self._sessions.move_to_end(session_id)
            return session
