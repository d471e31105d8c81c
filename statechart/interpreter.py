"""The W3C SCXML algorithm (Appendix D) as a pure step over (model, status, event, now).

Function names follow the spec's procedures so the code can be read beside it:
``select_transitions``, ``remove_conflicting_transitions``, ``compute_exit_set``,
``get_transition_domain``, ``find_lcca``, ``get_effective_target_states``,
``compute_entry_set``, ``add_descendant_states_to_enter``, ``add_ancestor_states_to_enter``,
``is_in_final_state``, ``microstep`` and ``macrostep`` (the body of ``mainEventLoop``).

Speed comes from doing the structural work once. What the spec computes on every event
depends only on the configuration, the event name, which guards held and (for history
targets) the stored history, so an :class:`Engine` caches it:

* per (configuration, event name): the candidate transitions of each atomic state in
  priority order, and, when no guard can change the outcome, the finished microstep plan;
* per (configuration, enabled transitions[, history]): the microstep plan: exit order,
  history to record, the action blocks to run in order with the configuration each one
  sees, the done events to raise, and the configuration after.

A step is then a dictionary lookup, the guards, and the actions. Nothing here does I/O:
delayed sends and emitted effects are returned to the caller, and time is an argument.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

import attrs

from .errors import CallbackError, EventlessLoopError
from .events import Event, descriptor_matches
from .jsonvalues import copy_json
from .limits import reset_budget
from .model import ROOT, Action, MachineModel, StateKind, Transition

__all__ = [
    "ActionContext",
    "Effect",
    "PendingSend",
    "Status",
    "Microstep",
    "Macrostep",
    "Engine",
    "DEFAULT_MICROSTEP_LIMIT",
    "plan_microstep",
    "default_entry",
]

DEFAULT_MICROSTEP_LIMIT = 1000
SCXML_PROCESSOR = "http://www.w3.org/TR/scxml/#SCXMLEventProcessor"
_BLOCK = 0
_DONE = 1
_BIND = 2


@attrs.frozen(slots=True)
class Effect:
    """A domain event an ``emit`` produced; the caller commits it (a transactional outbox)."""

    event: str
    data: Any = None


@attrs.frozen(slots=True)
class PendingSend:
    """A delayed send waiting for its due time on the instance's clock."""

    id: str
    event: str
    data: Any
    due: float
    seq: int
    internal_id: bool = False  # the id was generated, not chosen by the author

    def to_event(self, session_id: str | None) -> Event:
        """SCXML 5.10.1: ``sendid`` is the author's id (given or stored by ``id_location``), else blank."""
        return Event(self.event, self.data, "external", None if self.internal_id else self.id,
                     f"#_scxml_{session_id}", SCXML_PROCESSOR)


class Status(NamedTuple):
    """The part of an instance that changes from step to step (the rest is the model).

    A NamedTuple rather than an attrs class: one is built per event, and tuple construction
    is several times cheaper than a frozen attrs ``__init__``."""

    configuration: frozenset[str]
    history: dict[str, frozenset[str]]
    data: dict[str, Any]
    pending: tuple[PendingSend, ...]
    done: bool
    send_counter: int
    bound: frozenset[str] = frozenset()  # states whose own data is set (late binding)


@attrs.frozen(slots=True)
class Microstep:
    """A cached microstep plan (one set of transitions taken together)."""

    transitions: tuple[Transition, ...]
    exit_order: tuple[str, ...]
    history_updates: tuple[tuple[str, frozenset[str]], ...]
    ops: tuple[tuple[int, Any, frozenset[str]], ...]
    configuration: frozenset[str]
    halts: bool
    trace: tuple[str, ...]

    @property
    def entered(self) -> tuple[str, ...]:
        return tuple(t[6:] for t in self.trace if t.startswith("enter:"))


class Macrostep(NamedTuple):
    """What one event did: the microsteps taken, including eventless and internal ones."""

    event: Event | None
    handled: bool
    configuration_before: frozenset[str]
    configuration_after: frozenset[str]
    microsteps: tuple[Microstep, ...]
    events: tuple[str, ...]  # every event processed, the triggering one first, then internal ones

    @property
    def transitions(self) -> tuple[Transition, ...]:
        return tuple(t for step in self.microsteps for t in step.transitions)

    @property
    def trace(self) -> tuple[str, ...]:
        return tuple(line for step in self.microsteps for line in step.trace)


def system_variables(machine_name: str, session_id: str) -> dict[str, Any]:
    """SCXML's read-only system variables, as expressions see them (built once per instance)."""
    return {"_sessionid": session_id, "_name": machine_name,
            "_ioprocessors": {"scxml": {"location": f"#_scxml_{session_id}"}}}


class ActionContext:
    """What actions and guards see during one macrostep; named Python actions receive it.

    ``data`` may be changed in place; ``raise_event``, ``send``, ``cancel`` and ``emit``
    are the only ways to act on the world, and they take effect only when the step
    completes (emitted effects are handed to the caller, never executed here).
    """

    __slots__ = ("machine", "data", "event", "In", "system", "now", "internal", "effects", "pending",
                 "logs", "errors", "send_counter", "bound", "_deep_copied", "_pending_copied", "_immediate")

    def __init__(self, machine: MachineModel, data: dict[str, Any], system: dict[str, Any], now: float,
                 pending: tuple[PendingSend, ...], send_counter: int) -> None:
        self.machine = machine
        self.data = data
        self.event: Event | None = None
        self.In: Callable[[str], bool] = frozenset().__contains__
        self.system = system
        self.now = now
        self.internal: deque[Event] = deque()
        self.effects: list[Effect] = []
        self.pending: Sequence[PendingSend] = pending
        self.logs: list[tuple[str | None, Any]] = []
        self.errors: list[str] = []
        self.send_counter = send_counter
        self._deep_copied = False
        self._pending_copied = False
        self._immediate: list[tuple[str, int]] = []
        self.bound: frozenset[str] = frozenset()
        reset_budget()  # one context per macrostep: its iteration budget starts here

    # -- the surface for Python actions -----------------------------------------------------
    def raise_event(self, name: str, data: Any = None) -> None:
        """Queue an internal event, processed before the next external one (SCXML ``<raise>``)."""
        self.internal.append(Event(name, data, "internal"))

    def send(self, event: str, data: Any = None, *, delay: float = 0.0, id: str | None = None) -> str:
        """Send an event to this instance's external queue, now or after ``delay`` seconds."""
        self.send_counter += 1
        generated = id is None
        send_id = f"send.{self.send_counter}" if generated else id
        if not self._pending_copied:
            self.pending = list(self.pending)
            self._pending_copied = True
        self.pending.append(PendingSend(send_id, event, data, self.now + delay, self.send_counter, generated))
        if delay <= 0:
            self._immediate.append((send_id, self.send_counter))
        return send_id

    @property
    def immediate_sends(self) -> Sequence[tuple[str, int]]:
        """(send id, seq) of every zero-delay send to this instance made during the step, in order:
        the instance delivers them right after the step, before the caller's call returns."""
        return self._immediate

    def send_to(self, target: Any, event: str, data: Any = None, *, delay: float = 0.0, id: str | None = None,
                id_location: str | None = None) -> None:
        """SCXML ``<send>`` with a target: this session's external queue (no target, or
        ``#_scxml_<own session id>``), its internal queue (``#_internal``), or nowhere we can reach."""
        own = f"#_scxml_{self.system.get('_sessionid')}"
        if id is None and id_location is not None:
            id = f"send.{self.send_counter + 1}.{id_location}"  # the author will see it: not blank
        if target is None or target == own:
            send_id = self.send(event, data, delay=delay, id=id)
        elif target == "#_internal":
            if delay:
                raise ValueError("a send to #_internal cannot have a delay")
            self.send_counter += 1
            send_id = id or f"send.{self.send_counter}"
            self.internal.append(Event(event, data, "internal", send_id))
        elif isinstance(target, str) and target.startswith("#_"):
            self.send_counter += 1
            send_id = id or f"send.{self.send_counter}"
            message = f"send target {target!r} cannot be reached from this instance"
            self.errors.append(message)
            self.internal.append(Event("error.communication", {"message": message}, "platform", send_id))
        else:
            raise ValueError(f"send target {target!r} is not supported; use #_internal, or no target for this "
                             "instance's own queue")
        if id_location is not None:
            self.data[id_location] = send_id

    def cancel(self, send_id: str) -> None:
        """Cancel a pending delayed send by its id; unknown ids are ignored, as in SCXML."""
        if not any(p.id == send_id for p in self.pending):
            return
        if not self._pending_copied:
            self.pending = list(self.pending)
            self._pending_copied = True
        self.pending[:] = [p for p in self.pending if p.id != send_id]

    def emit(self, event: str, data: Any = None) -> None:
        """Produce a domain event for the outside world; returned with the step's result."""
        self.effects.append(Effect(event, data))

    def log(self, label: str | None, value: Any) -> None:
        self.logs.append((label, value))

    def prepare_for_python(self) -> None:
        """Python code may mutate nested values in place; give it a private deep copy once per step."""
        if not self._deep_copied:
            self.data = copy_json(self.data)
            self._deep_copied = True

    def error(self, exception: BaseException, where: str) -> None:
        described = exception if isinstance(exception, CallbackError) else f"{type(exception).__name__}: {exception}"
        message = f"{where}: {described}"
        self.errors.append(message)
        self.internal.append(Event("error.execution", {"message": message}, "platform"))


def _due_order(pending: PendingSend) -> tuple[float, int]:
    return pending.due, pending.seq


@attrs.frozen(slots=True)
class _Selection:
    """Cached per (configuration, event name)."""

    groups: tuple[tuple[Transition, ...], ...]  # per atomic state, candidates in priority order
    fixed: tuple[Transition, ...] | None  # the enabled set when no guard can change it
    fixed_plan: Microstep | None  # its plan, when it does not depend on history


_NO_SELECTION = _Selection((), (), None)
_HISTORY_DEPENDENT = object()


class Engine:
    """The interpreter for one machine model, with its caches. Safe to share between instances."""

    def __init__(self, model: MachineModel, *, microstep_limit: int = DEFAULT_MICROSTEP_LIMIT) -> None:
        self.model = model
        self.states = model.states
        self.microstep_limit = microstep_limit
        self._selections: dict[tuple[frozenset[str], str | None], _Selection] = {}
        self._plans: dict[tuple[frozenset[str], tuple[Transition, ...]], Any] = {}
        self._history_plans: dict[tuple, Microstep] = {}
        self._halt_plans: dict[frozenset[str], tuple[tuple[Action, ...], ...]] = {}
        self._children = {
            sid: tuple(c for c in s.children if self.states[c].kind is not StateKind.HISTORY)
            for sid, s in self.states.items()
        }
        self._history_children = {
            sid: tuple(c for c in s.children if self.states[c].kind is StateKind.HISTORY)
            for sid, s in self.states.items()
        }

    # -- public entry points ----------------------------------------------------------------
    def start(self, ctx: ActionContext) -> tuple[Status, Macrostep, ActionContext]:
        """Enter the initial configuration and run to completion (SCXML ``interpret``).

        ``ctx`` already holds the initial data (and any error.execution its expressions raised)."""
        ctx.event = None
        root_initial = self.states[ROOT].initial
        assert root_initial is not None
        status = Status(frozenset(), {}, ctx.data, (), False, 0)
        return self._run(status, ctx, None, (root_initial,), None)

    def macrostep(self, status: Status, event: Event, system: dict[str, Any], now: float
                  ) -> tuple[Status, Macrostep, ActionContext]:
        """Process one external event and everything it causes (one pass of ``mainEventLoop``)."""
        ctx = ActionContext(self.model, dict(status.data), system, now, status.pending, status.send_counter)
        ctx.bound = status.bound
        ctx.event = event
        ctx.In = status.configuration.__contains__
        enabled, plan = self.select_transitions(status.configuration, event.name, ctx, status.history)
        return self._run(status, ctx, event, enabled, plan)

    def _run(self, status: Status, ctx: ActionContext, event: Event | None,
             enabled: tuple[Transition, ...] | None, plan: Microstep | None) -> tuple[Status, Macrostep, ActionContext]:
        configuration = status.configuration
        history = status.history
        running = not status.done
        microsteps: list[Microstep] = []
        events = [event.name] if event is not None else []
        handled = bool(enabled)
        if enabled:
            if plan is None:
                plan = self.plan(configuration, enabled, history)
            configuration, history, running = self.microstep(plan, ctx, history)
            microsteps.append(plan)
        # Run to completion: eventless transitions first, then internal events (spec D mainEventLoop).
        internal = ctx.internal
        limit = self.microstep_limit
        unhandled = 0  # internal events taken since the last microstep, none of them handled
        while running:
            ctx.In = configuration.__contains__
            enabled, plan = self.select_transitions(configuration, None, ctx, history)
            if not enabled:
                if not internal:
                    break
                ctx.event = internal.popleft()
                events.append(ctx.event.name)
                enabled, plan = self.select_transitions(configuration, ctx.event.name, ctx, history)
                if not enabled:
                    # A guard that keeps failing (or raising) queues a new error.execution each
                    # time it is evaluated, so the queue may never drain: stop as for a loop.
                    unhandled += 1
                    if unhandled > limit:
                        raise self._stalled_error(event, configuration)
                    continue
            unhandled = 0
            if plan is None:
                plan = self.plan(configuration, enabled, history)
            configuration, history, running = self.microstep(plan, ctx, history)
            microsteps.append(plan)
            if len(microsteps) > limit:
                raise self.loop_error(event, microsteps)
        if not running and not status.done:
            self.exit_interpreter(configuration, ctx)
            ctx.pending, ctx._pending_copied = (), False  # a finished instance has no timers left
        record = Macrostep(event, handled, status.configuration, configuration, tuple(microsteps), tuple(events))
        # Keep pending sends in due order (as a restored snapshot has them), so an instance and
        # its restored copy report the same `scheduled`/`cancelled` in the same order.
        pending = ctx.pending if not ctx._pending_copied else tuple(sorted(ctx.pending, key=_due_order))
        new_status = Status(configuration, history, ctx.data, pending, not running, ctx.send_counter, ctx.bound)
        return new_status, record, ctx

    def loop_error(self, event: Event | None, microsteps: Sequence[Microstep]) -> EventlessLoopError:
        """The error that stops a run which took more than ``microstep_limit`` microsteps for ``event``,
        naming the transitions and states of the last ones; the instance raises it too when the
        zero-delay sends a step caused keep sending."""
        tail = microsteps[-20:]
        transitions = list(dict.fromkeys(t.id for step in tail for t in step.transitions))
        states = list(dict.fromkeys(s for step in tail for s in sorted(step.configuration, key=self._order)))
        return EventlessLoopError(event.name if event else None, self.microstep_limit, transitions, states)

    def _stalled_error(self, event: Event | None, configuration: frozenset[str]) -> EventlessLoopError:
        selection = self._selections.get((configuration, None), _NO_SELECTION)
        transitions = list(dict.fromkeys(t.id for group in selection.groups for t in group))
        states = sorted((s for s in configuration if self.states[s].is_atomic), key=self._order)
        return EventlessLoopError(event.name if event else None, self.microstep_limit, transitions, states)

    def _order(self, state: str) -> int:
        return self.states[state].order

    # -- selectTransitions / selectEventlessTransitions ---------------------------------------
    def select_transitions(self, configuration: frozenset[str], name: str | None, ctx: ActionContext,
                           history: dict[str, frozenset[str]]) -> tuple[tuple[Transition, ...], Microstep | None]:
        """Spec ``selectTransitions``: per atomic state in document order, the first enabled
        transition of the state or its nearest ancestor; then conflicts are removed in the plan."""
        selection = self._selections.get((configuration, name))
        if selection is None:
            selection = self._build_selection(configuration, name)
        if selection.fixed is not None:
            return selection.fixed, selection.fixed_plan
        enabled: list[Transition] = []
        for group in selection.groups:
            for transition in group:
                check = transition.check
                if check is not None:
                    try:
                        if not check(ctx):
                            continue
                    except Exception as error:  # noqa: BLE001 - SCXML: a failing cond is false + error
                        ctx.error(error, f"cond of {transition.id}")
                        continue
                if transition not in enabled:
                    enabled.append(transition)
                break
        return tuple(enabled), None

    def _build_selection(self, configuration: frozenset[str], name: str | None) -> _Selection:
        states = self.states
        atomic = sorted((s for s in configuration if states[s].is_atomic), key=self._order)
        groups = []
        for state_id in atomic:
            group = []
            for source in (state_id,) + states[state_id].ancestors[:-1]:
                for transition in states[source].transitions:
                    if name is None:
                        if not transition.events:
                            group.append(transition)
                    elif any(descriptor_matches(d, name) for d in transition.events):
                        group.append(transition)
            if group:
                groups.append(tuple(group))
        if not groups:
            selection = _NO_SELECTION
        elif all(group[0].check is None for group in groups):
            fixed = tuple(dict.fromkeys(group[0] for group in groups))
            plan = self._plans.get((configuration, fixed))
            if plan is None:
                plan = self.plan(configuration, fixed, None)
            selection = _Selection(tuple(groups), fixed, None if plan is _HISTORY_DEPENDENT else plan)
        else:
            selection = _Selection(tuple(groups), None, None)
        if len(self._selections) > 100_000:
            self._selections.clear()
        self._selections[(configuration, name)] = selection
        return selection

    # -- microstep ------------------------------------------------------------------------------
    def microstep(self, plan: Microstep, ctx: ActionContext, history: dict[str, frozenset[str]]
                  ) -> tuple[frozenset[str], dict[str, frozenset[str]], bool]:
        """Spec ``microstep``: exitStates, executeTransitionContent, enterStates, run from a plan."""
        if plan.history_updates:
            history = dict(history)
            history.update(plan.history_updates)
        for kind, payload, seen in plan.ops:
            ctx.In = seen.__contains__
            if kind is _BLOCK:
                for action in payload:
                    try:
                        action.run(ctx)
                    except Exception as error:  # noqa: BLE001 - SCXML: error.execution, skip the block
                        ctx.error(error, action.text)
                        break
            elif kind is _BIND:
                if payload.id not in ctx.bound:
                    ctx.bound = ctx.bound | {payload.id}
                    payload.data_init(ctx)
            else:
                event_name, done_data, final_id = payload
                data = None
                if done_data is not None:
                    try:
                        data = done_data(ctx)
                    except Exception as error:  # noqa: BLE001
                        ctx.error(error, f"done_data of {final_id}")
                ctx.internal.append(Event(event_name, data, "internal"))
        return plan.configuration, history, not plan.halts

    def exit_interpreter(self, configuration: frozenset[str], ctx: ActionContext) -> None:
        """Spec ``exitInterpreter``: run the exit actions of every active state, innermost first.

        The configuration is kept as it was, so a finished instance still shows where it ended."""
        blocks = self._halt_plans.get(configuration)
        if blocks is None:
            order = sorted(configuration, key=self._order, reverse=True)
            blocks = tuple(block for s in order for block in self.states[s].exit)
            self._halt_plans[configuration] = blocks
        ctx.In = configuration.__contains__
        for block in blocks:
            for action in block:
                try:
                    action.run(ctx)
                except Exception as error:  # noqa: BLE001
                    ctx.error(error, action.text)
                    break

    # -- building plans -------------------------------------------------------------------------
    def plan(self, configuration: frozenset[str], enabled: tuple[Transition, ...],
             history: dict[str, frozenset[str]] | None) -> Any:
        """The cached microstep plan for these transitions; ``history=None`` asks whether one exists
        that does not depend on stored history (returns the marker otherwise)."""
        key = (configuration, enabled)
        plan = self._plans.get(key)
        if plan is None:
            builder = _PlanBuilder(self, configuration, history or {})
            plan = builder.build(enabled)
            if len(self._plans) > 100_000:
                self._plans.clear()
            if builder.consulted_history:
                self._plans[key] = _HISTORY_DEPENDENT
                if history is None:
                    return _HISTORY_DEPENDENT
                self._history_plans[(key, frozenset(history.items()))] = plan
            else:
                self._plans[key] = plan
            return plan
        if plan is _HISTORY_DEPENDENT:
            if history is None:
                return plan
            history_key = (key, frozenset(history.items()))
            plan = self._history_plans.get(history_key)
            if plan is None:
                plan = _PlanBuilder(self, configuration, history).build(enabled)
                if len(self._history_plans) > 100_000:
                    self._history_plans.clear()
                self._history_plans[history_key] = plan
        return plan


class _PlanBuilder:
    """Runs the structural half of the spec's microstep once, recording what to do."""

    def __init__(self, engine: Engine, configuration: frozenset[str], history: dict[str, frozenset[str]]) -> None:
        self.engine = engine
        self.states = engine.states
        self.configuration = configuration
        self.history = history
        self.consulted_history = False

    def build(self, enabled: tuple[Transition, ...]) -> Microstep:
        transitions = self.remove_conflicting_transitions(enabled)
        states = self.states
        current = set(self.configuration)
        ops: list[tuple[int, Any, frozenset[str]]] = []
        trace: list[str] = []

        # exitStates
        exit_set = self.compute_exit_set(transitions)
        exit_order = sorted(exit_set, key=lambda s: states[s].order, reverse=True)
        history_updates = []
        for state_id in exit_order:
            for history_id in self.engine._history_children[state_id]:
                if states[history_id].history_deep:
                    value = frozenset(s for s in self.configuration
                                      if states[s].is_atomic and state_id in states[s].ancestors)
                else:
                    value = frozenset(s for s in self.configuration if states[s].parent == state_id)
                history_updates.append((history_id, value))
        for state_id in exit_order:
            trace.append(f"exit:{state_id}")
            for block in states[state_id].exit:
                ops.append((_BLOCK, block, frozenset(current)))
            current.discard(state_id)

        # executeTransitionContent
        for transition in transitions:
            trace.append(f"transition:{transition.id}")
            if transition.actions:
                ops.append((_BLOCK, transition.actions, frozenset(current)))

        # enterStates: it runs after exitStates, so history targets see what was just recorded
        if history_updates:
            self.history = {**self.history, **dict(history_updates)}
        to_enter: dict[str, None] = {}
        default_entry: set[str] = set()
        default_history_content: dict[str, tuple[Action, ...]] = {}
        self.compute_entry_set(transitions, to_enter, default_entry, default_history_content)
        halts = False
        for state_id in sorted(to_enter, key=lambda s: states[s].order):
            state = states[state_id]
            current.add(state_id)
            trace.append(f"enter:{state_id}")
            if state.data_init is not None and self.engine.model.late_binding:
                ops.append((_BIND, state, frozenset(current)))
            for block in state.entry:
                ops.append((_BLOCK, block, frozenset(current)))
            if state_id in default_entry and state.initial is not None and state.initial.actions:
                ops.append((_BLOCK, state.initial.actions, frozenset(current)))
            if state_id in default_history_content:
                ops.append((_BLOCK, default_history_content[state_id], frozenset(current)))
            if state.kind is StateKind.FINAL:
                if state.parent == ROOT:
                    halts = True
                else:
                    parent = states[state.parent]
                    ops.append((_DONE, (f"done.state.{parent.id}", state.done_data, state_id), frozenset(current)))
                    grandparent = states[parent.parent] if parent.parent != ROOT else None
                    if grandparent is not None and grandparent.kind is StateKind.PARALLEL:
                        if all(self.is_in_final_state(child, current) for child in self.engine._children[grandparent.id]):
                            ops.append((_DONE, (f"done.state.{grandparent.id}", None, state_id), frozenset(current)))
        return Microstep(
            transitions=transitions,
            exit_order=tuple(exit_order),
            history_updates=tuple(history_updates),
            ops=tuple(ops),
            configuration=frozenset(current),
            halts=halts,
            trace=tuple(trace),
        )

    # -- spec procedures ------------------------------------------------------------------------
    def remove_conflicting_transitions(self, enabled: Iterable[Transition]) -> tuple[Transition, ...]:
        """Spec ``removeConflictingTransitions``: on overlapping exit sets, a transition from a
        descendant beats one from its ancestor; otherwise the earlier one in document order wins."""
        filtered: list[Transition] = []
        exit_sets: dict[str, frozenset[str]] = {}
        for first in enabled:
            preempted = False
            to_remove = []
            first_exit = exit_sets.setdefault(first.id, self.compute_exit_set((first,)))
            for second in filtered:
                second_exit = exit_sets.setdefault(second.id, self.compute_exit_set((second,)))
                if first_exit & second_exit:
                    if second.source in self.states[first.source].ancestors:
                        to_remove.append(second)
                    else:
                        preempted = True
                        break
            if not preempted:
                for second in to_remove:
                    filtered.remove(second)
                filtered.append(first)
        return tuple(filtered)

    def compute_exit_set(self, transitions: Iterable[Transition]) -> frozenset[str]:
        """Spec ``computeExitSet``: active descendants of each transition's domain."""
        result: set[str] = set()
        for transition in transitions:
            if transition.targets:
                domain = self.get_transition_domain(transition)
                for state_id in self.configuration:
                    if domain in self.states[state_id].ancestors:
                        result.add(state_id)
        return frozenset(result)

    def get_transition_domain(self, transition: Transition) -> str | None:
        """Spec ``getTransitionDomain``: the state whose descendants the transition may exit and enter."""
        targets = self.get_effective_target_states(transition)
        if not targets:
            return None
        source = transition.source
        if source == ROOT:
            return ROOT
        # Entering a history state enters everything from its parent down to the states it
        # stands for (addDescendantStatesToEnter), so the domain must contain the history state
        # itself, not only its effective targets. Appendix D uses the effective targets alone;
        # from inside the history's parent that re-enters still-active states (entry actions
        # twice, no exit) and can enter a second child of an active compound or region.
        history_targets = [t for t in transition.targets if self.states[t].kind is StateKind.HISTORY]
        if history_targets:
            targets = [*targets, *history_targets]
        if (transition.internal and self.states[source].kind is StateKind.COMPOUND
                and all(source in self.states[t].ancestors for t in targets)):
            return source
        return self.find_lcca([source, *targets])

    def find_lcca(self, state_ids: Sequence[str]) -> str:
        """Spec ``findLCCA``: the nearest compound (or root) proper ancestor of the first state
        that contains all the others."""
        head, tail = state_ids[0], state_ids[1:]
        for ancestor in self.states[head].ancestors:
            if ancestor != ROOT and self.states[ancestor].kind is not StateKind.COMPOUND:
                continue
            if all(ancestor in self.states[s].ancestors for s in tail):
                return ancestor
        return ROOT

    def get_effective_target_states(self, transition: Transition) -> list[str]:
        """Spec ``getEffectiveTargetStates``: history targets replaced by what they stand for."""
        targets: dict[str, None] = {}
        for target in transition.targets:
            state = self.states[target]
            if state.kind is StateKind.HISTORY:
                self.consulted_history = True
                stored = self.history.get(target)
                if stored:
                    targets.update(dict.fromkeys(sorted(stored, key=self.engine._order)))
                else:
                    assert state.initial is not None
                    targets.update(dict.fromkeys(self.get_effective_target_states(state.initial)))
            else:
                targets[target] = None
        return list(targets)

    def compute_entry_set(self, transitions: Iterable[Transition], to_enter: dict[str, None],
                          default_entry: set[str], default_history_content: dict[str, tuple[Action, ...]]) -> None:
        """Spec ``computeEntrySet``."""
        for transition in transitions:
            for target in transition.targets:
                self.add_descendant_states_to_enter(target, to_enter, default_entry, default_history_content)
            domain = self.get_transition_domain(transition)
            for state_id in self.get_effective_target_states(transition):
                self.add_ancestor_states_to_enter(state_id, domain, to_enter, default_entry, default_history_content)

    def add_descendant_states_to_enter(self, state_id: str, to_enter: dict[str, None], default_entry: set[str],
                                       default_history_content: dict[str, tuple[Action, ...]]) -> None:
        """Spec ``addDescendantStatesToEnter``."""
        state = self.states[state_id]
        if state.kind is StateKind.HISTORY:
            self.consulted_history = True
            stored = self.history.get(state_id)
            if stored:
                targets = sorted(stored, key=self.engine._order)
            else:
                assert state.initial is not None
                default_history_content[state.parent] = state.initial.actions
                targets = list(state.initial.targets)
            for target in targets:
                self.add_descendant_states_to_enter(target, to_enter, default_entry, default_history_content)
            for target in targets:
                self.add_ancestor_states_to_enter(target, state.parent, to_enter, default_entry,
                                                  default_history_content)
            return
        to_enter[state_id] = None
        if state.kind is StateKind.COMPOUND:
            default_entry.add(state_id)
            assert state.initial is not None
            for target in state.initial.targets:
                self.add_descendant_states_to_enter(target, to_enter, default_entry, default_history_content)
            for target in state.initial.targets:
                self.add_ancestor_states_to_enter(target, state_id, to_enter, default_entry, default_history_content)
        elif state.kind is StateKind.PARALLEL:
            for child in self.engine._children[state_id]:
                if not any(child == s or child in self.states[s].ancestors for s in to_enter):
                    self.add_descendant_states_to_enter(child, to_enter, default_entry, default_history_content)

    def add_ancestor_states_to_enter(self, state_id: str, ancestor: str | None, to_enter: dict[str, None],
                                     default_entry: set[str],
                                     default_history_content: dict[str, tuple[Action, ...]]) -> None:
        """Spec ``addAncestorStatesToEnter``: ancestors up to (not including) ``ancestor``, and the
        other regions of every parallel ancestor entered on the way."""
        for parent in self.states[state_id].ancestors:
            if parent == ancestor or parent == ROOT:
                break
            to_enter[parent] = None
            if self.states[parent].kind is StateKind.PARALLEL:
                for child in self.engine._children[parent]:
                    if not any(child == s or child in self.states[s].ancestors for s in to_enter):
                        self.add_descendant_states_to_enter(child, to_enter, default_entry, default_history_content)

    def is_in_final_state(self, state_id: str, configuration: set[str]) -> bool:
        """Spec ``isInFinalState``."""
        state = self.states[state_id]
        if state.kind is StateKind.COMPOUND:
            return any(self.states[c].kind is StateKind.FINAL and c in configuration
                       for c in self.engine._children[state_id])
        if state.kind is StateKind.PARALLEL:
            return all(self.is_in_final_state(c, configuration) for c in self.engine._children[state_id])
        return False


# -- the planning interface -----------------------------------------------------------------------
# Static analysis and the migration check enumerate configurations with the interpreter's own
# structural step, so what they report is what the engine would do. They use these two functions
# rather than the plan builder itself: the builder's methods and the engine's caches stay free to change.


def plan_microstep(engine: Engine, configuration: frozenset[str], enabled: Sequence[Transition],
                   history: Mapping[str, frozenset[str]]) -> Microstep:
    """The structural half of the spec's microstep for ``enabled`` taken in ``configuration``.

    Conflicting transitions are removed, the exit and entry sets computed (``history`` is the
    stored history a history target restores; an absent entry uses the history's default) and
    the resulting :class:`Microstep` returned: configuration after, history to record, trace.
    No guard is evaluated and no action runs; nothing is cached, so any configuration may be
    asked about, reachable or not, without growing the engine's caches."""
    stored = history if isinstance(history, dict) else dict(history)  # the builder never mutates it
    return _PlanBuilder(engine, configuration, stored).build(tuple(enabled))


def default_entry(engine: Engine, targets: Iterable[str]) -> frozenset[str]:
    """The configuration that entering ``targets`` from nowhere gives: the targets, their
    ancestors, and the default entries below any compound or parallel target, exactly as the
    spec's computeEntrySet chooses them (history states use their defaults). No action runs."""
    builder = _PlanBuilder(engine, frozenset(), {})
    to_enter: dict[str, None] = {}
    targets = list(targets)
    # As the spec's computeEntrySet: every target's descendants first, then the ancestors, so a
    # parallel ancestor enters its other regions by default only where no target lies.
    for target in targets:
        builder.add_descendant_states_to_enter(target, to_enter, set(), {})
    for target in targets:
        builder.add_ancestor_states_to_enter(target, ROOT, to_enter, set(), {})
    return frozenset(to_enter)
