"""The compiler's common ground: the problem list, locations, and the tables every part fills.

The compiler is split by what it compiles (states, transitions, actions, data); each part is a
mixin over :class:`CompilerCore`, so they all report into one list of problems with
``file:line:col`` and share the tables built while walking the document. The helpers here
describe values in a machine author's words, for the messages of every part.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .errors import Problem
from .expressions import Expression
from .model import ROOT, Location, StateKind
from .quoting import quote_repr
from .yaml_loader import LocatedMap, Mark

__all__ = ["CompilerCore", "DATA_KEY", "closest", "describe_value", "article", "mark_in"]

#: A data key, assign target or foreach variable: a Python identifier.
DATA_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def closest(word: str, choices: Iterable[str]) -> str | None:
    """A did-you-mean hint for a misspelt key, verb or name."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {quote_repr(match[0])}?" if match else None


def describe_value(value: Any) -> str:
    """What a YAML value is, in the words of a machine author."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__  # pragma: no cover - YAML gives nothing else


def article(word: str) -> str:
    """``a state``, ``an atomic state``: the indefinite article for a kind of state."""
    return ("an " if word[:1] in "aeiou" else "a ") + word


def mark_in(text: Any, mark: Mark, offset: int) -> Mark:
    """Where character ``offset`` of an expression written at ``mark`` is in the file."""
    if not isinstance(text, str):
        return mark
    if "\n" in text and not mark.segments:
        return Mark(mark.line, mark.column + (1 if mark.quoted else 0))
    return mark.at(max(0, min(offset, len(text))))


class CompilerCore:
    """Holds the problems found so far and the tables built while walking the document.

    The parts (:class:`compile_states.StateCompiler`, :class:`compile_transitions.TransitionCompiler`,
    :class:`compile_data.DataCompiler`, :class:`compile_actions.ActionCompiler`) derive from it and
    call one another's public methods through ``self``; ``compile._Compiler`` puts them together."""

    def __init__(self, file: str, actions: Mapping[str, Callable], guards: Mapping[str, Callable],
                 base_dir: Path, python_policy: Any) -> None:
        self.file = file
        self.base_dir = base_dir
        self.python_policy = python_policy
        self.problems: list[Problem] = []
        self.actions = dict(actions)
        self.guards = dict(guards)
        self.modules: list[Any] = []
        self.machine_name = ""
        # state id -> (raw mapping, kind, parent id, mark of the id)
        self.raw_states: dict[str, tuple[LocatedMap, StateKind, str, Mark]] = {}
        self.children: dict[str, list[str]] = {ROOT: []}
        self.events: set[str] = set()
        self.late_binding = False
        self.label_counts: dict[tuple[str, str], int] = {}
        #: SCXML documents: an invalid location is error.execution at run time, not a load error.
        self.runtime_location_errors = file.lower().endswith(".scxml")
        self.wildcard = False
        #: Names the machine gives data (data keys, assign and script targets, foreach variables,
        #: send id locations), and every expression with where it was written: checked at the end.
        self.declared: set[str] = set()
        self.name_uses: list[tuple[Expression, Any, Mark, str]] = []
        self.script_reads: set[str] = set()

    # -- reporting ---------------------------------------------------------------------
    def problem(self, mark: Mark, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.file, mark.line, mark.column, message, hint))

    def location(self, mark: Mark) -> Location:
        return Location(self.file, mark.line, mark.column)

    def unknown_keys(self, mapping: LocatedMap, allowed: Iterable[str], what: str,
                     extra_hint: str | None = None, *, hint_for: Callable[[str], str | None] | None = None) -> None:
        allowed = tuple(allowed)
        for key in mapping:
            if key not in allowed:
                hint = (closest(key, allowed) or (hint_for(key) if hint_for else None) or extra_hint
                        or f"{what} accepts: {', '.join(allowed)}")
                self.problem(mapping.key_marks[key], f"unknown key {quote_repr(key)} in {what}", hint)

    def choice(self, body: LocatedMap, key: str, choices: tuple[str, str], what: str, meaning: str) -> str:
        """The value of ``key`` (the first choice when absent), which must be one of two words;
        otherwise a problem with a did-you-mean hint, or what the words mean."""
        value = body.get(key, choices[0])
        if value not in choices:
            self.problem(body.value_marks[key], f"{what} must be {choices[0]!r} or {choices[1]!r}, not "
                         f"{quote_repr(value)}", closest(str(value), choices) or meaning)
        return value

    def check_text(self, body: LocatedMap, key: str) -> None:
        """A free-text key (`description`, `invariant`) must hold a string."""
        if key in body and not isinstance(body[key], str):
            self.problem(body.value_marks[key], f"`{key}` must be a string, got {describe_value(body[key])}")
