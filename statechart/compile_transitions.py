"""Transitions of a state: `on`, `transitions`, `always`, `after` and `on_done` -> ordered
:class:`model.Transition` values with resolved targets and one compiled check (cond, then guard).
"""

from __future__ import annotations

from typing import Any, Callable

import attrs

from . import actions as act
from .compile_core import CompilerCore, closest, describe_value
from .errors import CallbackError, StatechartError
from .events import DESCRIPTOR_PATTERN, normalize_descriptor
from .expressions import Expression
from .model import ROOT, Action, StateKind, Transition
from .quoting import quote_repr
from .yaml_loader import LocatedList, LocatedMap, Mark

__all__ = ["TransitionCompiler", "TRANSITION_KEYS", "expression_check", "all_checks", "guard_check"]

TRANSITION_KEYS = ("target", "cond", "guard", "actions", "type", "description")


class TransitionCompiler(CompilerCore):
    """Transitions and their targets (uses ``expression`` and ``bound`` of the data part and
    ``action_list`` of the action part)."""

    def state_transitions(self, state_id: str, body: LocatedMap, kind: StateKind,
                          entry: list[tuple[Action, ...]], exit_: list[tuple[Action, ...]]) -> list[Transition]:
        transitions: list[Transition] = []
        on = body.get("on")
        if "on" in body:
            if not isinstance(on, LocatedMap):
                self.problem(body.value_marks["on"], "`on` must be a mapping of event -> transition(s)")
            else:
                for key, spec in on.items():
                    events = self.descriptors(key, on.key_marks[key])
                    transitions += self.transition_list(state_id, key, events, spec, on.value_marks[key])
        if "transitions" in body:
            transitions += self.ordered_transitions(state_id, body["transitions"], body.value_marks["transitions"])
        if "always" in body:
            transitions += self.transition_list(state_id, "always", (), body["always"], body.value_marks["always"])
        if "after" in body:
            after = body["after"]
            if not isinstance(after, LocatedMap):
                self.problem(body.value_marks["after"], "`after` must be a mapping of duration -> transition(s)")
            else:
                sends, cancels = [], []
                for index, (key, spec) in enumerate(after.items()):
                    seconds = self.duration(key, after.key_marks[key])
                    if seconds is None:
                        continue
                    event = f"after.{index}.{state_id}"
                    send_id = f"after.{index}.{state_id}"
                    sends.append(Action("timer", f"send {event} after {key}", act.make_simple_send(event, seconds, send_id),
                        {"send": {"event": event, "delay": key, "id": send_id}}, self.location(after.key_marks[key])))
                    cancels.append(Action("timer-cancel", f"cancel {send_id}", act.make_cancel(send_id, None),
                                          {"cancel": send_id}, self.location(after.key_marks[key])))
                    for transition in self.transition_list(state_id, f"after {key}", (event,), spec,
                                                           after.value_marks[key]):
                        transitions.append(with_delay(transition, seconds))
                if sends:
                    entry.append(tuple(sends))
                    exit_.append(tuple(cancels))
        if "on_done" in body:
            event = f"done.state.{state_id}"
            self.events.add(event)
            transitions += self.transition_list(state_id, "on_done", (event,), body["on_done"],
                                                body.value_marks["on_done"])
        for order, transition in enumerate(transitions):
            transitions[order] = with_order(transition, order)
        return transitions

    def transition_id(self, source: str, label: str) -> str:
        """``<state>:<event as written>:<n>``, n counting that label's transitions in the state, so the
        id is the same whether a transition was written under `on` or in a `transitions` list."""
        key = (source, label)
        count = self.label_counts.get(key, 0)
        self.label_counts[key] = count + 1
        return f"{source}:{label}:{count}"

    def ordered_transitions(self, state_id: str, spec: Any, mark: Mark) -> list[Transition]:
        """SCXML's single ordered list: each item is a transition mapping with an optional `event`."""
        if not isinstance(spec, LocatedList):
            self.problem(mark, "`transitions` must be a list of transitions, each with an optional `event`")
            return []
        result = []
        for index, (item, item_mark) in enumerate(zip(spec, spec.item_marks)):
            if not isinstance(item, LocatedMap):
                self.problem(item_mark, "each item of `transitions` is a mapping with `event`, `target`, ...")
                continue
            events: tuple[str, ...] = ()
            body = item
            if "event" in item:
                if not isinstance(item["event"], str):
                    self.problem(item.value_marks["event"], f"`event` must be an event name, not {quote_repr(item['event'])}")
                    continue
                events = self.descriptors(item["event"], item.value_marks["event"])
                body = LocatedMap(item.mark)
                for key, value in item.items():
                    if key != "event":
                        body[key] = value
                        body.key_marks[key] = item.key_marks[key]
                        body.value_marks[key] = item.value_marks[key]
            label = " ".join(str(item["event"]).split()) if "event" in item else "always"
            transition = self.transition(state_id, self.transition_id(state_id, label), events, body, item_mark)
            if transition is not None:
                result.append(transition)
        return result

    def descriptors(self, key: str, mark: Mark) -> tuple[str, ...]:
        tokens = key.split()
        if not tokens:
            self.problem(mark, "an empty event name", "write the event name, `*` or a prefix like `error.*`")
        result = []
        for token in tokens:
            if not DESCRIPTOR_PATTERN.match(token):
                self.problem(mark, f"{quote_repr(token)} is not a valid event descriptor",
                             "event names are dotted words: PAY, order.paid, error.* or *")
                continue
            descriptor = normalize_descriptor(token)
            if descriptor == "*":
                self.wildcard = True
            self.events.add(descriptor)
            result.append(descriptor)
        return tuple(result)

    def transition_list(self, source: str, key: str, events: tuple[str, ...], spec: Any,
                        mark: Mark) -> list[Transition]:
        items: list[tuple[Any, Mark]]
        if isinstance(spec, LocatedList):
            items = list(zip(spec, spec.item_marks))
            if not items:
                self.problem(mark, f"the transition list for {quote_repr(key)} is empty")
        else:
            items = [(spec, mark)]
        result = []
        for item, item_mark in items:
            transition = self.transition(source, self.transition_id(source, key), events, item, item_mark)
            if transition is not None:
                result.append(transition)
        return result

    def transition(self, source: str, transition_id: str, events: tuple[str, ...], spec: Any,
                   mark: Mark) -> Transition | None:
        targets: tuple[str, ...] = ()
        check = None
        cond_text = guard_name = description = None
        actions: tuple[Action, ...] = ()
        internal = False
        if isinstance(spec, str):
            targets = self.targets(spec, mark)
        elif isinstance(spec, LocatedMap):
            self.unknown_keys(spec, TRANSITION_KEYS, "a transition")
            if "target" in spec and spec["target"] is not None:
                targets = self.targets(spec["target"], spec.value_marks["target"])
            checks = []  # both `cond` and `guard` must hold; the cond is checked first
            if "cond" in spec:
                expression = self.expression(spec["cond"], spec.value_marks["cond"], "cond")
                if expression is not None:
                    cond_text = expression.source
                    checks.append(expression_check(expression))
            if "guard" in spec:
                if not isinstance(spec["guard"], str):
                    self.problem(spec.value_marks["guard"],
                                 f"`guard` must name a Python predicate, got {describe_value(spec['guard'])}")
                else:
                    guard_name = spec["guard"]
                    function = self.bound(guard_name, self.guards, spec.value_marks["guard"], "guard")
                    if function is not None:
                        checks.append(guard_check(guard_name, function))
            check = checks[0] if len(checks) == 1 else all_checks(tuple(checks)) if checks else None
            if "actions" in spec:
                actions = self.action_list(spec["actions"], spec.value_marks["actions"], f"actions of {transition_id}")
            internal = self.choice(spec, "type", ("external", "internal"), "transition type",
                                   "internal keeps the source state active when the targets are its "
                                   "descendants") == "internal"
            self.check_text(spec, "description")
            description = spec.get("description")
        elif spec is not None:
            self.problem(mark, "a transition is a target state id, a mapping with `target`/`cond`/`actions`, "
                               "or a list of those")
            return None
        return Transition(
            id=transition_id, source=source, events=events, targets=targets, internal=internal,
            cond_text=cond_text, guard_name=guard_name, check=check, actions=actions, order=0,
            location=self.location(mark), description=description,
        )

    def targets(self, spec: Any, mark: Mark) -> tuple[str, ...]:
        if isinstance(spec, str):
            names, marks = [spec], [mark]
        elif isinstance(spec, LocatedList) and all(isinstance(s, str) for s in spec) and spec:
            names, marks = list(spec), spec.item_marks
        else:
            self.problem(mark, "a target must be a state id, a dotted path, or a list of state ids")
            return ()
        resolved = []
        for name, name_mark in zip(names, marks):
            state = self.resolve(name, name_mark)
            if state is not None:
                resolved.append(state)
        if len(resolved) == len(names) and len(resolved) > 1:
            self.check_orthogonal(resolved, mark)
        return tuple(resolved)

    def resolve(self, name: str, mark: Mark) -> str | None:
        parts = name.split(".")
        last = parts[-1]
        if last not in self.raw_states:
            self.problem(mark, f"target {quote_repr(name)} does not exist",
                         closest(last, self.raw_states) or "targets name a state id of this machine")
            return None
        chain = [last] + [a for a in self.ancestors[last] if a != ROOT]
        if parts[:-1] and chain[1 : len(parts)][::-1] != parts[:-1]:
            actual = ".".join(reversed(chain))
            self.problem(mark, f"target path {quote_repr(name)} does not match the state tree", f"{quote_repr(last)} is at {quote_repr(actual)}")
            return None
        return last

    def check_orthogonal(self, targets: list[str], mark: Mark,
                         hint: str = "several targets must lie in different regions of a parallel state") -> None:
        """Targets can be active together when each pair meets in a parallel state, neither
        containing the other. Checked in one walk up from each target (linear in the targets
        times the depth, not quadratic: a list of 50,000 targets took minutes); the first
        conflicting pair is reported."""
        passed_by: dict[str, str] = {}  # state -> the first target whose ancestor chain went through it
        for target in targets:
            chain = (target,) + self.ancestors[target]
            for index, state in enumerate(chain):
                earlier = passed_by.get(state)
                if earlier is None:
                    continue
                kind = self.raw_states[state][1] if state != ROOT else StateKind.COMPOUND
                if state in (target, earlier) or kind is not StateKind.PARALLEL:
                    self.problem(mark, f"targets {quote_repr(earlier)} and {quote_repr(target)} cannot be active "
                                       "together", hint)
                    return
                break
            else:
                index = len(chain)
            for state in chain[:index]:
                passed_by[state] = target


def expression_check(expression: Expression) -> Callable[[Any], bool]:
    """A `cond` as a check over the run-time context (the expression was compiled once, here)."""
    evaluate = expression.evaluate

    def check(ctx: Any) -> bool:
        return bool(evaluate(ctx.data, ctx.event, ctx.In, ctx.system))

    return check


def all_checks(checks: tuple[Callable[[Any], bool], ...]) -> Callable[[Any], bool]:
    """`cond` and `guard` together: both must hold, the cond is tried first."""
    def check(ctx: Any) -> bool:
        return all(part(ctx) for part in checks)

    return check


def guard_check(name: str, function: Callable[[Any], Any]) -> Callable[[Any], bool]:
    """A Python guard as a check: a raising guard becomes a :class:`CallbackError` naming it."""
    def check(ctx: Any) -> bool:
        ctx.prepare_for_python()
        try:
            return bool(function(ctx))
        except StatechartError:  # already says what and where
            raise
        except Exception as error:  # noqa: BLE001 - named, located, then counted as false by the caller
            raise CallbackError("guard", name, function, error) from error

    return check


def with_order(transition: Transition, order: int) -> Transition:
    """The transition at its place in the state's document order (its priority)."""
    return attrs.evolve(transition, order=order)


def with_delay(transition: Transition, seconds: float) -> Transition:
    """An `after` transition, with the delay its timer was set for."""
    return attrs.evolve(transition, delay=seconds)

