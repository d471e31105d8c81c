"""Checks for the slips authors make that load fine and run wrong.

Each check reads the compiled model only and errs on the side of silence: where Python code
(named guards and actions) could change or read data, the data checks say nothing, since
they cannot see what that code does.

- ``reentry-effect``: an ``emit`` (or a ``send`` to another target) in the entry actions of a
  state that a history state can restore. Resuming through history re-enters the state, so the
  message goes out again on every resume: correct SCXML, and a classic production bug (a second
  "chargeback opened").
- ``constant-guard``: a ``cond`` that is true for no value of the data it reads, or for every
  value (``amount > 100 and amount < 10``, ``approved or not approved``). Decided exactly, by
  evaluating the guard at the critical values of each name, for guards made of ``and``/``or``/
  ``not``, names and comparisons of a name with a literal; other guards are left alone.
- ``unread-assignment``: an ``assign`` to a key that no expression reads and ``data:`` does not
  declare, usually a misspelling of a declared key.
"""

from __future__ import annotations

import ast
import difflib
import itertools
import math
from typing import Any, Iterator

from .action_specs import model_actions, walk_actions
from .expressions import ExpressionSyntaxError, compile_expression
from .findings import Finding
from .model import Action, MachineModel, StateKind

__all__ = ["reentry_effects", "constant_guards", "unread_assignments"]


def _has_python(model: MachineModel) -> bool:
    """Named Python guards or actions: code whose reads and writes of data cannot be seen."""
    return any(a.verb == "call" for a in model_actions(model)) or any(
        t.guard_name is not None for s in model.states.values() for t in s.transitions)


def _targeted(model: MachineModel, state_id: str) -> bool:
    return any(state_id in t.targets for s in model.states.values()
               for t in s.transitions + ((s.initial,) if s.initial is not None else ()))


def _effects(action: Action) -> Iterator[tuple[str, str]]:
    """(verb, event) of each message an action sends out of the machine."""
    for verb, body in walk_actions(action.spec, ("emit", "send")):
        event = body if isinstance(body, str) else body.get("event") if isinstance(body, dict) else None
        if verb == "send" and (not isinstance(body, dict) or body.get("target") in (None, "#_internal")
                               or body.get("delay") or body.get("delay_expr")):
            continue  # internal events and timers: re-arming them on resume is what entry is for
        if isinstance(event, str):
            yield ("emits" if verb == "emit" else "sends"), event


def reentry_effects(model: MachineModel) -> list[Finding]:
    states = model.states
    findings: list[Finding] = []
    reported: set[int] = set()
    for history in states.values():
        if history.kind is not StateKind.HISTORY or not _targeted(model, history.id):
            continue
        parent = history.parent
        restored = [s for s in states.values() if parent in s.ancestors and s.kind is not StateKind.HISTORY]
        for state in restored:
            for block in state.entry:
                for action in block:
                    if id(action) in reported:
                        continue
                    for verb, event in _effects(action):
                        reported.add(id(action))
                        findings.append(Finding(
                            "reentry-effect",
                            f"entry of {state.id!r} {verb} {event!r}, and history {history.id!r} can restore "
                            f"{state.id!r}: it runs again on every resume, so {event!r} goes out again; move it "
                            "to the transition that first enters the state, or guard it with data",
                            action.location or state.location, state.id))
                        break
    return findings


#: Comparison operators whose truth, for one variable against constants, changes only at those
#: constants: evaluating the guard just below, at and just above each is exhaustive.
_COMPARISONS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_MAX_CASES = 4096


def _critical_values(tree: ast.expr, names: frozenset[str],
                     declared: dict[str, Any]) -> dict[str, list[Any]] | None:
    """For a guard built only from ``and``/``or``/``not``, bare names and comparisons of a name
    with a literal, the values of each name at which its truth can change; None outside that
    fragment (then nothing is claimed)."""
    values: dict[str, list[Any]] = {name: [] for name in names}

    def visit(node: ast.expr) -> bool:
        if isinstance(node, ast.BoolOp):
            return all(visit(v) for v in node.values)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return visit(node.operand)
        if isinstance(node, ast.Name):
            return node.id in values
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], _COMPARISONS):
            left, right = node.left, node.comparators[0]
            if isinstance(left, ast.Constant):
                left, right = right, left
            if not (isinstance(left, ast.Name) and left.id in values and isinstance(right, ast.Constant)):
                return False
            values[left.id].append(right.value)
            return True
        return False

    if not visit(tree):
        return None
    for name, found in values.items():
        kind = declared.get(name)
        if isinstance(kind, bool) or not found:
            found.extend((True, False))
        elif isinstance(kind, (int, float)):
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in found):
                return None  # compared with numbers and other things: not this simple fragment
            points = sorted(set(found))  # each constant, each gap between two, and both ends
            found = points + [(a + b) / 2 for a, b in zip(points, points[1:])] + [points[0] - 1, points[-1] + 1]
        elif isinstance(kind, str):
            if not all(isinstance(v, str) for v in found):
                return None
            found.append("\0another value")
        else:
            return None  # no declared literal to know the kind of value by
        values[name] = list(dict.fromkeys(found))
    return values


class _Opaque:
    """Stands for what a guard may read besides data (the event, ``In``, system variables): any
    use of it makes the guard undecidable here."""

    def __getattr__(self, name: str) -> Any:
        raise LookupError(name)

    def __getitem__(self, key: Any) -> Any:
        raise LookupError(key)

    def __call__(self, *args: Any) -> Any:
        raise LookupError("In")


def constant_guards(model: MachineModel) -> list[Finding]:
    declared = model.data_spec if isinstance(model.data_spec, dict) else {}
    findings = []
    opaque = _Opaque()
    for state in model.states.values():
        for transition in state.transitions:
            if not transition.cond_text:
                continue
            try:
                expression = compile_expression(transition.cond_text)
                tree = ast.parse(transition.cond_text.strip(), mode="eval").body
            except (ExpressionSyntaxError, SyntaxError):
                continue
            if not expression.names or not expression.names <= declared.keys():
                continue
            critical = _critical_values(tree, expression.names, declared)
            if critical is None or math.prod(len(v) for v in critical.values()) > _MAX_CASES:
                continue
            names = sorted(critical)
            outcomes = set()
            try:
                for case in itertools.product(*(critical[n] for n in names)):
                    outcomes.add(bool(expression.evaluate(dict(zip(names, case)), opaque, opaque, opaque)))
            except Exception:  # noqa: BLE001 - a comparison across kinds, the event read: not decided
                continue
            if len(outcomes) == 1:
                value = outcomes.pop()
                findings.append(Finding(
                    "constant-guard",
                    f"guard {transition.cond_text!r} of {transition.id} is {'always' if value else 'never'} true, "
                    f"whatever the value{'s' if len(names) > 1 else ''} of {', '.join(names)}",
                    transition.location, transition.id))
    return findings


def _declared(model: MachineModel) -> set[str]:
    declared = set(model.data_spec) if isinstance(model.data_spec, dict) else set()
    for state in model.states.values():
        if isinstance(state.data_spec, dict):
            declared |= set(state.data_spec)
    return declared


def unread_assignments(model: MachineModel) -> list[Finding]:
    if _has_python(model):
        return []
    declared = _declared(model)
    findings = []
    for action in model_actions(model):
        if action.verb != "assign" or not isinstance(action.spec, dict):
            continue
        for key in action.spec.get("assign", {}):
            root = key.split(".")[0]
            if root in model.names_read or root in declared:
                continue
            close = difflib.get_close_matches(root, sorted(declared), n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            findings.append(Finding(
                "unread-assignment",
                f"assign to {root!r}: no expression reads it and `data:` does not declare it{hint}",
                action.location, root))
    return findings
