"""The arrows of a migration step: which old state goes to which new one, how many stored
instances take each arrow, and which new states no arrow reaches.

Read from the step as written, without running it: a ``STATES`` table gives one arrow per
(entry, target) pair; a ``map_state`` function is code, so only the identities (ids in both
versions) are arrows, marked ``by_function``. Both the migration drawing and the review page
use this, so the numbers they show agree.

Instances are counted once: ``counts`` per old state id (as ``Store.count(state=...)`` gives
them) are read for atomic states only, and each atomic state's instances go to the arrow of the
nearest table entry that covers it (its own, else its nearest ancestor's). A compound entry
therefore carries only the instances that no deeper entry takes, and the totals add up.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs

from ..model import ROOT, MachineModel, StateKind

__all__ = ["Arrow", "StepArrows", "step_arrows"]


@attrs.frozen
class Arrow:
    """One arrow: old state -> new state; ``instances`` is None when no counts were given."""

    old: str
    new: str
    by_function: bool = False
    instances: int | None = None
    known: bool = True  # the target is a state of the new version


@attrs.frozen
class StepArrows:
    arrows: tuple[Arrow, ...]
    unmapped: frozenset[str]  # old states (atomic, or compound with every leaf unmapped) nothing maps
    unreached: tuple[str, ...]  # new states no arrow reaches, in document order
    instances: int | None  # instances counted over the atomic old states (None without counts)


def _model(machine: Any) -> MachineModel:
    return machine if isinstance(machine, MachineModel) else machine.model


def _drawable(model: MachineModel) -> list[Any]:
    return [s for s in model.states.values() if s.id != ROOT and s.kind is not StateKind.HISTORY]


def _entry(table: Mapping[str, Any], model: MachineModel, state: str) -> str | None:
    for candidate in (state,) + model.states[state].ancestors[:-1]:
        if candidate in table:
            return candidate
    return None


def _targets(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    try:
        return [str(v) for v in value]
    except TypeError:
        return [str(value)]


def _default_entry(model: MachineModel, state: str, into: set[str]) -> None:
    """``state`` and what entering it by default enters (initial children, every region)."""
    if state in into or state not in model.states:
        return
    into.add(state)
    node = model.states[state]
    if node.kind is StateKind.PARALLEL:
        for child in node.children:
            if model.states[child].kind is not StateKind.HISTORY:
                _default_entry(model, child, into)
    elif node.kind is StateKind.COMPOUND and node.initial is not None:
        for target in node.initial.targets:
            _default_entry(model, target, into)


def step_arrows(step: Any, old_machine: Any, new_machine: Any,
                counts: Mapping[str, int] | None = None) -> StepArrows:
    """The arrows of ``step`` (a :class:`statechart.migrate.chain.Step`) from ``old`` to ``new``."""
    old, new = _model(old_machine), _model(new_machine)
    drawable = _drawable(old)
    leaves = [s.id for s in drawable if s.kind not in (StateKind.COMPOUND, StateKind.PARALLEL)]
    leaf_counts = {s: int(counts.get(s, 0)) for s in leaves} if counts is not None else None
    pairs: list[tuple[str, str, bool]] = []
    unmapped: set[str] = set()
    taken: dict[str, int] = {}  # table entry (or state, for map_state) -> instances it takes
    if getattr(step, "states", None) is not None:
        table = step.states
        for key, value in table.items():
            pairs.extend((key, target, False) for target in _targets(value))
        for leaf in leaves:
            entry = _entry(table, old, leaf) if leaf in old.states else None
            if entry is None:
                unmapped.add(leaf)
            elif leaf_counts is not None:
                taken[entry] = taken.get(entry, 0) + leaf_counts[leaf]
        for s in drawable:  # a compound state none of whose leaves is covered
            if s.id not in leaves and _entry(table, old, s.id) is None:
                inside = [leaf for leaf in leaves if s.id in old.states[leaf].ancestors]
                if inside and all(leaf in unmapped for leaf in inside):
                    unmapped.add(s.id)
    else:
        table = {}
        for s in drawable:
            if s.id in new.states:
                pairs.append((s.id, s.id, True))
                if leaf_counts is not None and s.id in leaf_counts:
                    taken[s.id] = leaf_counts[s.id]
            else:
                unmapped.add(s.id)
    reached: set[str] = set()
    for key, target, _ in pairs:
        if target not in new.states:
            continue
        reached.update(a for a in new.states[target].ancestors if a != ROOT)
        _default_entry(new, target, reached)
        if key in old.states and key in table:  # instances deeper inside land on same-named states
            for inner in old.states:
                if key in old.states[inner].ancestors and inner in new.states and \
                        target in new.states[inner].ancestors and _entry(table, old, inner) == key:
                    reached.add(inner)
                    reached.update(a for a in new.states[inner].ancestors if a != ROOT)
                    _default_entry(new, inner, reached)
    arrows = tuple(Arrow(key, target, by_function, None if leaf_counts is None else taken.get(key, 0),
                         known=target in new.states) for key, target, by_function in pairs)
    unreached = tuple(s.id for s in _drawable(new) if s.id not in reached)
    return StepArrows(arrows, frozenset(unmapped), unreached,
                      None if leaf_counts is None else sum(leaf_counts.values()))
