"""The compiled model: frozen values that describe a machine, with everything precomputed.

The compiler (``compile.py``) builds these once; the interpreter only reads them. Nothing
here runs actions or knows about files, stores or rendering.
"""

from __future__ import annotations

import enum
from typing import Any, Callable

import attrs

__all__ = [
    "ROOT",
    "StateKind",
    "Location",
    "Action",
    "Transition",
    "State",
    "MachineModel",
    "format_seconds",
]

#: The id of the implicit root state (SCXML's ``<scxml>`` element); never in a configuration.
ROOT = "$root"


class StateKind(enum.Enum):
    ATOMIC = "atomic"
    COMPOUND = "compound"
    PARALLEL = "parallel"
    FINAL = "final"
    HISTORY = "history"


@attrs.frozen
class Location:
    """Where a piece of the model was written, for messages and analysis reports."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@attrs.frozen
class Action:
    """One piece of executable content, already compiled into a callable.

    ``run`` takes the step context (``interpreter.ActionContext``) and performs the action;
    it raises on failure, which the interpreter turns into ``error.execution``.
    ``verb`` and ``text`` describe the action for traces, diagrams and exports; ``spec`` keeps
    the parsed YAML form so the machine can be written back out (SCXML export, diagrams).
    """

    verb: str
    text: str
    run: Callable[[Any], None] = attrs.field(eq=False, repr=False)
    spec: Any = attrs.field(eq=False, repr=False, default=None)
    location: Location | None = attrs.field(eq=False, default=None)


@attrs.frozen(cache_hash=True)
class Transition:
    """A transition as written; ``events`` is empty for eventless ones."""

    id: str
    source: str
    events: tuple[str, ...]
    targets: tuple[str, ...]
    internal: bool
    cond_text: str | None
    guard_name: str | None
    check: Callable[[Any], bool] | None = attrs.field(eq=False, repr=False)
    actions: tuple[Action, ...]
    order: int
    location: Location | None = attrs.field(eq=False, default=None)
    delay: float | None = None  # set for transitions compiled from `after`
    description: str | None = None

    @property
    def targetless(self) -> bool:
        return not self.targets

    @property
    def label(self) -> str:
        """A short human form: ``EVENT [cond]``, used by traces and diagrams."""
        if self.delay is not None:
            head = f"after {format_seconds(self.delay)}"
        elif self.events:
            head = " ".join(self.events)
        else:
            head = "always"
        guard = self.cond_text or self.guard_name
        return f"{head} [{guard}]" if guard else head


def format_seconds(seconds: float) -> str:
    """A delay as authors write it (``30m``, ``2d``, ``1500ms``): the largest unit that divides it exactly,
    so a timer reads the same in a transition label, an analysis path and a diagram."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and (seconds / size) == int(seconds / size):
            return f"{int(seconds / size)}{unit}"
    return f"{int(round(seconds * 1000))}ms"


@attrs.frozen
class State:
    """A state with its place in the tree precomputed (document order, ancestors, depth)."""

    id: str
    kind: StateKind
    parent: str  # ROOT for top-level states
    children: tuple[str, ...]
    order: int  # document order, 0-based, over all states
    depth: int  # 1 for top-level states
    ancestors: tuple[str, ...]  # proper ancestors, nearest first, ending with ROOT
    initial: Transition | None  # compound states: the default initial transition
    entry: tuple[tuple[Action, ...], ...]
    exit: tuple[tuple[Action, ...], ...]
    transitions: tuple[Transition, ...]
    history_deep: bool = False  # history states only
    done_data: Callable[[Any], Any] | None = attrs.field(eq=False, repr=False, default=None)
    done_data_spec: Any = attrs.field(eq=False, repr=False, default=None)
    invariant: str | None = None
    description: str | None = None
    location: Location | None = attrs.field(eq=False, default=None)
    data_init: Callable[[Any], Any] | None = attrs.field(eq=False, repr=False, default=None)
    data_spec: Any = None  # the state's own `data` (SCXML <datamodel> inside a state)
    invariant_check: Any = attrs.field(eq=False, repr=False, default=None)  # the compiled invariant

    @property
    def is_atomic(self) -> bool:
        return self.kind in (StateKind.ATOMIC, StateKind.FINAL)


@attrs.frozen
class MachineModel:
    """Everything the interpreter needs about one machine version, computed once."""

    name: str
    version: int
    states: dict[str, State]  # every state including ROOT, in document order
    initial_data: Callable[[Any], dict[str, Any]] = attrs.field(eq=False, repr=False)
    data_spec: dict[str, Any] = attrs.field(eq=False, repr=False)
    definition_hash: str
    events: frozenset[str]  # event names and prefixes mentioned by transitions (for strict mode)
    wildcard: bool  # some transition listens to `*`
    source: str | None = attrs.field(eq=False, default=None)
    description: str | None = None
    python_modules: tuple[str, ...] = ()
    raw: Any = attrs.field(eq=False, repr=False, default=None)
    late_binding: bool = False
    script: str | None = None  # runs once after the data is set, before the first state is entered
    #: Data names some expression of the machine reads (guards, assigns, logs, sends ...), for the
    #: analysis of assignments nothing reads. Python guards and actions are not included.
    names_read: frozenset[str] = attrs.field(eq=False, default=frozenset())

    @property
    def root(self) -> State:
        return self.states[ROOT]

    def is_descendant(self, state: str, ancestor: str) -> bool:
        return ancestor in self.states[state].ancestors

    def knows_event(self, name: str) -> bool:
        """True when some transition's descriptor matches ``name`` (used by strict mode)."""
        if self.wildcard or name in self.events:
            return True
        parts = name.split(".")
        return any(".".join(parts[:i]) in self.events for i in range(1, len(parts)))
