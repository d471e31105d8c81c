"""A running instance: a status, a clock, and the engine that steps it.

The instance is the thin, stateful shell around the pure interpreter: it turns a caller's
``send`` into an event, keeps the new status only when the whole macrostep succeeded, and
fires delayed sends when its clock says they are due.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

import attrs

from .clock import Clock, VirtualClock
from .errors import (
    InstanceDoneError,
    InvariantViolationError,
    PayloadError,
    ReservedEventError,
    UnhandledEventError,
    UnknownEventError,
)
from .events import Event, is_reserved_event
from .jsonvalues import JSONValueError, json_value
from .interpreter import ActionContext, Effect, Engine, Macrostep, PendingSend, Status, system_variables
from .model import ROOT, MachineModel
from .snapshot import Snapshot

__all__ = ["Instance", "MachineHandle", "SendResult", "checked_payload"]


class MachineHandle(Protocol):
    """What an instance needs of its machine: the compiled model, the engine that steps it,
    the identity a snapshot records, and the invariants checked mode verifies.

    :class:`statechart.machine.Machine` is the one implementation; the protocol lets this
    module run instances without importing the module that creates them (the arrow points
    one way: machine -> instance)."""

    @property
    def model(self) -> MachineModel: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def definition_hash(self) -> str: ...

    @property
    def invariants(self) -> tuple[tuple[str, str | None, Any], ...]: ...


@attrs.frozen
class SendResult:
    """What one call did: the triggering event's macrostep, then any zero-delay sends it caused."""

    event: str
    data: Any
    handled: bool  # some transition was enabled for the event itself
    configuration_before: frozenset[str]
    configuration_after: frozenset[str]
    macrosteps: tuple[Macrostep, ...]
    effects: tuple[Effect, ...]  # emitted domain events, in order, for the caller to commit
    logs: tuple[tuple[str | None, Any], ...]
    errors: tuple[str, ...]  # error.execution causes, for authors
    done: bool
    pending_before: tuple[PendingSend, ...] = attrs.field(repr=False, default=())
    pending_after: tuple[PendingSend, ...] = attrs.field(repr=False, default=())

    @property
    def transitions(self) -> tuple[str, ...]:
        """Ids of every transition taken, in order."""
        return tuple(t.id for step in self.macrosteps for t in step.transitions)

    @property
    def trace(self) -> tuple[str, ...]:
        """``exit:<state>``, ``transition:<id>``, ``enter:<state>`` lines in the order they happened."""
        return tuple(line for step in self.macrosteps for line in step.trace)

    @property
    def scheduled(self) -> tuple[PendingSend, ...]:
        """Delayed sends this call created (the timers a store must write)."""
        before = {(p.id, p.seq) for p in self.pending_before}
        return tuple(p for p in self.pending_after if (p.id, p.seq) not in before)

    @property
    def cancelled(self) -> tuple[PendingSend, ...]:
        """Delayed sends that were pending before and are gone now (fired or cancelled)."""
        after = {(p.id, p.seq) for p in self.pending_after}
        return tuple(p for p in self.pending_before if (p.id, p.seq) not in after)


_RESERVED_STARTS = ("done", "error", "after")


def checked_payload(event: str, data: Any) -> Any:
    """Refuse what a caller may not send: a reserved event name, or data that is not JSON
    (a copy of ``data`` is returned, checked in the same pass)."""
    if type(event) is not str:
        raise TypeError(f"an event name is a str, not {type(event).__name__}")
    if event.startswith(_RESERVED_STARTS) and is_reserved_event(event):
        raise ReservedEventError(event)
    if data is None:
        return None
    try:
        return json_value(data, "event data")
    except JSONValueError as error:
        raise PayloadError(f"cannot send {event!r}: {error}") from None


class Instance:
    """One running instance of a :class:`~statechart.machine.Machine` (its ``machine``)."""

    def __init__(self, machine: MachineHandle, status: Status, clock: Clock, strict: bool, session_id: str,
                 checked: bool = False) -> None:
        self.machine = machine
        self._status = status
        self.clock = clock
        self.strict = strict
        self.session_id = session_id
        self._system = system_variables(machine.name, session_id)
        self.initial_result: SendResult | None = None
        #: Checked mode: every macrostep verifies the invariants of the machine and the active states,
        #: and a violation rejects the step (InvariantViolationError names the events that led to it).
        self.checked = checked
        self.events_sent: list[str] = []

    @classmethod
    def started(cls, machine: MachineHandle, status: Status, record: Macrostep, ctx: ActionContext, clock: Clock,
                strict: bool, session_id: str, checked: bool = False) -> "Instance":
        """The instance after its initial macrostep (``machine.engine.start`` gave ``status``,
        ``record`` and ``ctx``): zero-delay sends it made are delivered and checked mode applies,
        so ``initial_result`` reads as any other step's result. Used by ``Machine.start``."""
        instance = cls(machine, Status(frozenset(), {}, {}, (), False, 0), clock, strict, session_id, checked)
        instance.initial_result = instance._settle("", None, instance._status, status, record, ctx)
        return instance

    # -- what callers read --------------------------------------------------------------------
    @property
    def configuration(self) -> frozenset[str]:
        """Active state ids, compound and parallel ones included."""
        return self._status.configuration

    @property
    def data(self) -> dict[str, Any]:
        return self._status.data

    @property
    def history(self) -> Mapping[str, frozenset[str]]:
        return self._status.history

    @property
    def done(self) -> bool:
        return self._status.done

    @property
    def pending_sends(self) -> tuple[PendingSend, ...]:
        return tuple(sorted(self._status.pending, key=lambda p: (p.due, p.seq)))

    @property
    def next_due(self) -> float | None:
        """When the earliest delayed send falls due, on this instance's clock (None: nothing pending)."""
        return min((p.due for p in self._status.pending), default=None)

    def active_leaves(self) -> list[str]:
        states = self.machine.model.states
        return sorted((s for s in self.configuration if states[s].is_atomic), key=lambda s: states[s].order)

    def enabled_events(self) -> list[str]:
        """Event names a caller could send that some transition of the current configuration
        listens to (guards not evaluated). Platform descriptors (``done.*``, ``error.*``) are left
        out: the interpreter raises those itself, a caller does not send them."""
        states = self.machine.model.states
        names: dict[str, None] = {}
        for state_id in sorted(self.configuration, key=lambda s: states[s].order):
            for transition in states[state_id].transitions:
                if transition.delay is None:
                    names.update(dict.fromkeys(e for e in transition.events if not is_reserved_event(e)))
        return list(names)

    def snapshot(self) -> Snapshot:
        status = self._status
        return Snapshot(
            machine=self.machine.name, version=self.machine.version,
            definition_hash=self.machine.definition_hash, configuration=status.configuration,
            history=dict(status.history), data=status.data, done=status.done, session_id=self.session_id,
            pending_sends=self.pending_sends, send_counter=status.send_counter, bound_states=status.bound,
        )

    # -- stepping ---------------------------------------------------------------------------------
    def send(self, event: str, data: Any = None) -> SendResult:
        """Process one external event to completion; the instance changes only if it all succeeds.

        The caller is outside the trust boundary: ``event`` may not be one the interpreter
        reserves (ReservedEventError) and ``data`` must be JSON data (PayloadError); the payload
        is copied, so the caller keeping a reference cannot change the instance afterwards."""
        if data is not None or event[:1] in "dea" or type(event) is not str:  # "dea": done, error, after
            data = checked_payload(event, data)
        return self._send(event, data)

    def _send(self, event: str, data: Any) -> SendResult:
        """``send`` for an event name and payload already checked (the store checks before it reads)."""
        before = self._status
        if before.done:
            raise InstanceDoneError(event, before.configuration)
        if self.strict and not self.machine.model.knows_event(event):
            raise UnknownEventError(self.machine.name, event, self.machine.model.events)
        after, record, ctx = self.machine.engine.macrostep(before, Event(event, data), self._system,
                                                           self.clock.now())
        if self.strict and not record.handled:
            raise UnhandledEventError(event, before.configuration, ctx.errors)
        return self._settle(event, data, before, after, record, ctx)

    def fire_due(self) -> list[SendResult]:
        """Fire every delayed send whose due time has come, earliest first, each as an external event."""
        results = []
        now = self.clock.now()
        while not self._status.done:
            due = [p for p in self._status.pending if p.due <= now]
            if not due:
                break
            pending = min(due, key=lambda p: (p.due, p.seq))
            before = self._status
            after, record, ctx = self._deliver(before, pending)
            results.append(self._settle(pending.event, pending.data, before, after, record, ctx))
        return results

    def advance(self, seconds: float) -> list[SendResult]:
        """Move a :class:`VirtualClock` forward, firing what falls due on the way, in order."""
        clock = self._virtual_clock()
        target = clock.now() + seconds
        results = []
        while not self._status.done:
            upcoming = self.next_due
            if upcoming is None or upcoming > target:
                break
            clock.set(upcoming)
            results.extend(self.fire_due())
        clock.set(target)
        return results

    def fast_forward(self, max_events: int = 10_000) -> list[SendResult]:
        """Fire pending delayed sends in due order on a virtual clock until none is left."""
        clock = self._virtual_clock()
        results: list[SendResult] = []
        while not self._status.done and self._status.pending and len(results) < max_events:
            clock.set(self.next_due or clock.now())
            results.extend(self.fire_due())
        return results

    def _virtual_clock(self) -> VirtualClock:
        if not isinstance(self.clock, VirtualClock):
            raise TypeError("advance() and fast_forward() need an instance started with clock=VirtualClock()")
        return self.clock

    def _check_invariants(self, after: Status, event: str) -> None:
        label = event or "(start)"
        contains = after.configuration.__contains__
        for state_id, text, expression in self.machine.invariants:
            if state_id != ROOT and state_id not in after.configuration:
                continue
            try:
                holds = expression.evaluate(after.data, None, contains, self._system)
                detail = "is false"
            except Exception as error:  # noqa: BLE001 - an invariant that cannot be evaluated fails
                holds, detail = False, f"could not be evaluated ({type(error).__name__}: {error})"
            if not holds:
                raise InvariantViolationError(state_id, text or "", [*self.events_sent, label], detail)
        self.events_sent.append(label)

    def fire(self, send_id: str, seq: int | None = None) -> SendResult | None:
        """Fire one pending delayed send now, whatever the clock says (a durable timer store
        decides when). Returns None when no such send is pending any more (cancelled or fired)."""
        before = self._status
        if before.done:
            return None
        pending = next((p for p in before.pending if p.id == send_id and (seq is None or p.seq == seq)), None)
        if pending is None:
            return None
        after, record, ctx = self._deliver(before, pending)
        return self._settle(pending.event, pending.data, before, after, record, ctx)

    def _deliver(self, status: Status, pending: PendingSend) -> tuple[Status, Macrostep, ActionContext]:
        status = status._replace(pending=tuple(p for p in status.pending if p is not pending))
        return self.machine.engine.macrostep(status, pending.to_event(self.session_id), self._system,
                                             self.clock.now())

    def _settle(self, event: str, data: Any, before: Status, after: Status, record: Macrostep,
                ctx: ActionContext) -> SendResult:
        """Process the zero-delay sends to self that the step queued, then commit it all at once."""
        if not ctx.immediate_sends:  # the common case: one macrostep
            if self.checked:
                self._check_invariants(after, event)
            self._status = after
            return SendResult(
                event, data, record.handled, before.configuration, after.configuration, (record,),
                tuple(ctx.effects), tuple(ctx.logs), tuple(ctx.errors), after.done, before.pending, after.pending,
            )
        records, contexts = [record], [ctx]
        queue = list(ctx.immediate_sends)
        engine = self.machine.engine
        steps = len(record.microsteps)
        while queue and not after.done:
            send_id, seq = queue.pop(0)
            pending = next((p for p in after.pending if p.id == send_id and p.seq == seq), None)
            if pending is None:
                continue  # cancelled in the meantime
            after, next_record, next_ctx = self._deliver(after, pending)
            records.append(next_record)
            contexts.append(next_ctx)
            queue.extend(next_ctx.immediate_sends)
            steps += len(next_record.microsteps)
            if steps > engine.microstep_limit:  # zero-delay sends that keep sending: nothing committed
                raise engine.loop_error(record.event, [m for r in records for m in r.microsteps])
        if self.checked:
            self._check_invariants(after, event)
        self._status = after
        return SendResult(
            event=event, data=data, handled=record.handled,
            configuration_before=before.configuration, configuration_after=after.configuration,
            macrosteps=tuple(records),
            effects=tuple(e for c in contexts for e in c.effects),
            logs=tuple(entry for c in contexts for entry in c.logs),
            errors=tuple(message for c in contexts for message in c.errors),
            done=after.done, pending_before=before.pending, pending_after=after.pending,
        )
