"""Walking the written form of actions (``Action.spec``): the nested blocks of ``if`` and
``foreach`` included, so a check sees an ``emit`` wherever it was written."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from .model import Action, MachineModel

__all__ = ["walk_actions", "model_actions"]


def model_actions(model: MachineModel) -> Iterator[Action]:
    """Every action block's actions, as compiled: entry and exit of each state, initial
    transitions, and the actions of every transition."""
    for state in model.states.values():
        for block in state.entry + state.exit:
            yield from block
        if state.initial is not None:
            yield from state.initial.actions
        for transition in state.transitions:
            yield from transition.actions


def walk_actions(spec: Any, verbs: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """(verb, body) of every action with one of ``verbs`` in an action's YAML form, nested ones
    included (``then``/``elif``/``else`` of ``if``, ``do`` of ``foreach``)."""
    verbs = tuple(verbs)
    if isinstance(spec, list):
        for item in spec:
            yield from walk_actions(item, verbs)
        return
    if not isinstance(spec, dict):
        return
    for verb in verbs:
        if verb in spec:
            yield verb, spec[verb]
    for key in ("then", "else", "do"):
        if key in spec:
            yield from walk_actions(spec[key], verbs)
    if "elif" in spec and isinstance(spec["elif"], list):
        for branch in spec["elif"]:
            if isinstance(branch, dict):
                yield from walk_actions(branch.get("then"), verbs)
    if "foreach" in spec and isinstance(spec["foreach"], dict):
        yield from walk_actions(spec["foreach"].get("do"), verbs)
