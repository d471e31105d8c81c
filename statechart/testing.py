"""Property testing for machines: Hypothesis strategies, a ready property test, checked sends.

    from statechart.testing import events, run_property, checked_send

    run_property(machine, max_examples=200)              # AssertionError with a minimal replay

    @given(events(machine, {"ADD": st.fixed_dictionaries({"price": st.integers(1, 50)})}))
    def test_order(steps): ...

Invariants: a state (or the machine, at the top level) may declare ``invariant: "<expression>"``.
The interpreter does not evaluate them; :func:`check_invariants` does, for the machine and for
every active state, with the instance's data as names and ``In('id')`` available.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Iterable, Mapping, Sequence

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from .clock import VirtualClock
from .durations import parse_duration
from .expressions import Expression, compile_expression
from .instance import Instance, SendResult
from .machine import Machine
from .model import ROOT

__all__ = ["Send", "Advance", "Step", "events", "event_names", "run_property", "replay", "check_invariants",
           "checked_send", "InvariantViolation", "PropertyFailure"]


@attrs.frozen
class Send:
    """Send ``event`` with ``data`` to the instance."""

    event: str
    data: Any = None

    def __repr__(self) -> str:
        return f"send({self.event!r}, {self.data!r})" if self.data is not None else f"send({self.event!r})"


@attrs.frozen
class Advance:
    """Move the VirtualClock on by ``seconds`` (delayed sends and ``after`` transitions fire)."""

    seconds: float

    def __repr__(self) -> str:
        return f"advance({self.seconds!r})"


Step = Send | Advance


class InvariantViolation(AssertionError):
    """An invariant is false (or cannot be evaluated) after ``events`` were sent."""

    def __init__(self, state: str, expression: str, events: Sequence[Any], detail: str = "") -> None:
        self.state = state
        self.expression = expression
        self.events = list(events)
        self.detail = detail
        where = "the machine's invariant" if state == ROOT else f"invariant of {state!r}"
        sequence = ", ".join(repr(e) for e in self.events) or "(no events)"
        super().__init__(f"{where} {expression!r} {detail or 'is false'} after: {sequence}")


class PropertyFailure(AssertionError):
    """Something broke while replaying ``steps`` (an illegal configuration, an invariant, an exception)."""

    def __init__(self, steps: Sequence[Step], problem: str) -> None:
        self.steps = list(steps)
        self.problem = problem
        super().__init__(f"{problem}\nafter: {', '.join(repr(s) for s in steps) or '(start)'}")


# ---------------------------------------------------------------------------------------------
# strategies


def event_names(machine: Machine) -> list[str]:
    """Event names the machine handles that a client may send: every exact descriptor of its
    transitions, without done.*, the timers' after.* events, platform error events and wildcards."""
    names = set()
    for state in machine.model.states.values():
        for transition in state.transitions:
            if transition.delay is not None:
                continue
            for descriptor in transition.events:
                if descriptor == "*" or descriptor.split(".")[0] in ("done", "error", "after"):
                    continue
                names.add(descriptor)
    return sorted(names)


def _delays(machine: Machine) -> list[float]:
    found = set()
    for state in machine.model.states.values():
        for transition in state.transitions:
            if transition.delay is not None:
                found.add(float(transition.delay))
        for block in state.entry + state.exit:
            for action in block:
                spec = action.spec
                if action.verb == "send" and isinstance(spec, dict) and isinstance(spec.get("send"), dict):
                    delay = spec["send"].get("delay")
                    if isinstance(delay, str):
                        try:
                            found.add(float(parse_duration(delay)))
                        except Exception:  # noqa: BLE001 - an expression-valued delay: skip it
                            pass
                    elif isinstance(delay, (int, float)):
                        found.add(float(delay))
    return sorted(found)


def events(machine: Machine, data_strategies: Mapping[str, st.SearchStrategy] | st.SearchStrategy |
           Callable[[str], st.SearchStrategy] | None = None, *, advance: bool = True, max_size: int = 20,
           names: Iterable[str] | None = None) -> st.SearchStrategy[list[Step]]:
    """Lists of steps valid for ``machine``: :class:`Send` of the events it handles, mixed with
    :class:`Advance` of its delays (and a little less and more) when ``advance`` is true.

    ``data_strategies`` gives event data: a dict event name -> strategy (events not in it get
    None), one strategy used for every event, or a function name -> strategy."""
    chosen = sorted(names) if names is not None else event_names(machine)
    options: list[st.SearchStrategy] = []
    for name in chosen:
        if data_strategies is None:
            data: st.SearchStrategy = st.none()
        elif isinstance(data_strategies, Mapping):
            data = data_strategies.get(name, st.none())
        elif isinstance(data_strategies, st.SearchStrategy):
            data = data_strategies
        else:
            data = data_strategies(name)
        options.append(st.builds(Send, st.just(name), data))
    if advance:
        delays = _delays(machine)
        seconds = sorted({1.0, *delays, *(d / 2 for d in delays)})
        options.append(st.builds(Advance, st.sampled_from(seconds)))
    if not options:
        return st.just([])
    return st.lists(st.one_of(options), max_size=max_size)


# ---------------------------------------------------------------------------------------------
# invariants


_COMPILED: dict[str, Expression] = {}


def _compiled(source: str) -> Expression:
    expression = _COMPILED.get(source)
    if expression is None:
        expression = _COMPILED[source] = compile_expression(source)
    return expression


def invariants(machine: Machine) -> list[tuple[str, str]]:
    """(state id or ROOT, expression) for every declared invariant, the machine's first."""
    states = machine.model.states
    return [(s.id, s.invariant) for s in sorted(states.values(), key=lambda s: (s.id != ROOT, s.order))
            if s.invariant]


def check_invariants(machine: Machine, configuration: frozenset[str], data: Mapping[str, Any]
                     ) -> tuple[str, str, str] | None:
    """The first violated invariant as (state, expression, detail), or None when all hold.

    The machine's invariant always applies; a state's only while the state is active."""
    for state_id, source in invariants(machine):
        if state_id != ROOT and state_id not in configuration:
            continue
        try:
            value = _compiled(source).evaluate(dict(data), None, configuration.__contains__, {})
        except Exception as error:  # noqa: BLE001 - an invariant that cannot be evaluated fails
            return state_id, source, f"could not be evaluated ({type(error).__name__}: {error})"
        if not value:
            return state_id, source, "is false"
    return None


_SENT: "weakref.WeakKeyDictionary[Instance, list[Send]]" = weakref.WeakKeyDictionary()


def checked_send(instance: Instance, event: str, data: Any = None) -> SendResult:
    """``instance.send(event, data)``, then check the invariants of the machine and of every
    active state; raises :class:`InvariantViolation` naming the state, the expression and the
    events sent to this instance through ``checked_send`` so far."""
    sent = _SENT.setdefault(instance, [])
    sent.append(Send(event, data))
    result = instance.send(event, data)
    violated = check_invariants(instance.machine, instance.configuration, instance.data)
    if violated is not None:
        state, expression, detail = violated
        raise InvariantViolation(state, expression, list(sent), "" if detail == "is false" else detail)
    return result


# ---------------------------------------------------------------------------------------------
# the property


def replay(machine: Machine, steps: Sequence[Step], *, check: bool = True,
           data: Mapping[str, Any] | None = None) -> Instance:
    """Start an instance on a VirtualClock and apply ``steps``, checking after each one that
    the configuration is legal and (unless told not to) that the invariants hold.

    Raises :class:`PropertyFailure` naming the steps up to and including the failing one."""
    clock = VirtualClock()
    done: list[Step] = []

    def verify(instance: Instance) -> None:
        problems = machine.is_legal(instance.configuration)
        if problems:
            raise PropertyFailure(done, "illegal configuration {" + ", ".join(sorted(instance.configuration))
                                  + "}: " + "; ".join(problems))
        if check:
            violated = check_invariants(machine, instance.configuration, instance.data)
            if violated is not None:
                state, expression, detail = violated
                where = "the machine's invariant" if state == ROOT else f"invariant of {state!r}"
                raise PropertyFailure(done, f"{where} {expression!r} {detail}")

    try:
        instance = machine.start(data=data, clock=clock)
    except Exception as error:  # noqa: BLE001
        raise PropertyFailure(done, f"start raised {type(error).__name__}: {error}") from error
    verify(instance)
    for step in steps:
        if instance.done:
            break
        done.append(step)
        try:
            if isinstance(step, Send):
                instance.send(step.event, step.data)
            else:
                instance.advance(step.seconds)
        except Exception as error:  # noqa: BLE001
            raise PropertyFailure(done, f"{type(error).__name__}: {error}") from error
        verify(instance)
    return instance


def run_property(machine: Machine, *, max_examples: int = 100, check_invariants: bool = True,
                 data_strategies: Any = None, seed: int | None = None, max_size: int = 20,
                 data: Mapping[str, Any] | None = None) -> int:
    """Drive instances with generated event sequences (and clock advances); after every step the
    configuration must be legal and the invariants must hold, and no step may raise.

    Returns the number of examples run. On failure raises AssertionError whose message holds
    the minimal (shrunk) sequence, written as ``send('A'), advance(60.0), ...``."""
    strategy = events(machine, data_strategies, max_size=max_size)
    ran = [0]

    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=seed is None,
              report_multiple_bugs=False, suppress_health_check=list(HealthCheck), print_blob=False)
    @given(strategy)
    def prop(steps: list[Step]) -> None:
        ran[0] += 1
        replay(machine, steps, check=check_invariants, data=data)

    if seed is not None:
        prop = hypothesis_seed(seed)(prop)
    try:
        prop()
    except PropertyFailure as failure:
        sequence = ", ".join(repr(s) for s in failure.steps) or "(no events: the start itself)"
        raise AssertionError(f"{machine.name} v{machine.version}: {failure.problem}\n"
                             f"minimal failing sequence: {sequence}") from None
    return ran[0]
