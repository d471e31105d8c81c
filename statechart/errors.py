"""The exception types of statechart, all under :class:`StatechartError`.

Each exception carries the structured facts (file, line, column, state, event ...) as
attributes for programs, and a sentence a person can act on as its message. The CLI
prints the sentence; it never shows a traceback for one of these.
"""

from __future__ import annotations

from typing import Iterable

import attrs

__all__ = [
    "StatechartError",
    "Problem",
    "LoadError",
    "DefinitionMismatchError",
    "SnapshotFormatError",
    "IllegalSnapshotError",
    "ReservedEventError",
    "ExpressionLimitError",
    "UnknownEventError",
    "UnhandledEventError",
    "EventlessLoopError",
    "InstanceDoneError",
    "InvariantViolationError",
    "StoreError",
    "InstanceNotFoundError",
    "DuplicateInstanceError",
    "MachineNotLoadedError",
    "ConcurrencyError",
    "IdempotencyConflictError",
    "PayloadError",
    "StoreSchemaError",
]


class StatechartError(Exception):
    """Base class of every error statechart raises on purpose."""


@attrs.frozen
class Problem:
    """One thing wrong with a machine file, located as precisely as the YAML allows."""

    file: str
    line: int
    column: int
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.message}" + (f" ({self.hint})" if self.hint else "")


class LoadError(StatechartError):
    """A machine file could not be loaded; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(
            sorted(problems, key=lambda p: (p.file, p.line, p.column))
        )
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in machine definition"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class DefinitionMismatchError(StatechartError):
    """A snapshot was taken under a different machine definition than the one restoring it."""

    def __init__(self, machine: str, snapshot_version: int, snapshot_hash: str,
                 machine_version: int, machine_hash: str) -> None:
        self.machine = machine
        self.snapshot_version = snapshot_version
        self.snapshot_hash = snapshot_hash
        self.machine_version = machine_version
        self.machine_hash = machine_hash
        super().__init__(
            f"snapshot of {machine!r} was taken with version {snapshot_version} "
            f"(definition {snapshot_hash[:12]}), but this machine is version {machine_version} "
            f"(definition {machine_hash[:12]}); restoring it here could place the instance in states "
            f"that no longer exist. Move it with a migration (migrations/{machine}/) instead."
        )


class SnapshotFormatError(StatechartError):
    """A snapshot document is malformed or of a format this release cannot read."""


class IllegalSnapshotError(SnapshotFormatError):
    """A snapshot (or stored row) that is well-formed but describes an instance that cannot exist:
    two active siblings, a history value outside its parent, ``done: "yes"``, a NaN due time ...

    Restoring it would let a later event jump anywhere, so it is refused before any step runs.
    ``problems`` lists everything wrong; ``instance_id`` names the instance when it is known.
    """

    def __init__(self, problems: Iterable[str], *, machine: str = "", instance_id: str | None = None) -> None:
        self.problems = tuple(problems)
        self.machine = machine
        self.instance_id = instance_id
        whose = f"instance {instance_id!r}" if instance_id else "the snapshot"
        of = f" of {machine!r}" if machine else ""
        super().__init__(f"{whose}{of} cannot be restored: {'; '.join(self.problems)}")


class ReservedEventError(StatechartError):
    """A caller sent an event name the interpreter reserves for itself (``done.*``, ``error.*``,
    ``after.*``); only the interpreter and the timer machinery deliver those. Nothing was changed."""

    def __init__(self, event: str) -> None:
        self.event = event
        super().__init__(
            f"event {event!r} cannot be sent from outside: names starting with done., error. and after. are "
            "raised by the interpreter itself (state completion, failures, timers); nothing was changed")


class ExpressionLimitError(StatechartError):
    """An expression tried to do more than the run-time limits allow (``statechart/limits.py``):
    a huge power or repetition, a format width of a billion, too many iterations in one step.
    Raised inside the evaluation, so the interpreter turns it into ``error.execution``."""


class UnknownEventError(StatechartError):
    """Strict mode: the event is not named by any transition of the machine."""

    def __init__(self, machine: str, event: str, known: Iterable[str]) -> None:
        self.machine = machine
        self.event = event
        self.known = tuple(sorted(known))
        import difflib

        close = difflib.get_close_matches(event, self.known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        super().__init__(f"machine {machine!r} has no transition for event {event!r}{hint}")


class UnhandledEventError(StatechartError):
    """Strict mode: the event is known, but no transition is enabled for it in this configuration."""

    def __init__(self, event: str, configuration: Iterable[str]) -> None:
        self.event = event
        self.configuration = frozenset(configuration)
        super().__init__(
            f"event {event!r} is not handled in configuration "
            f"{{{', '.join(sorted(self.configuration))}}}; nothing was changed"
        )


class EventlessLoopError(StatechartError):
    """A macrostep did not settle: eventless transitions or raised events kept firing."""

    def __init__(self, event: str | None, limit: int, transitions: Iterable[str],
                 states: Iterable[str]) -> None:
        self.event = event
        self.limit = limit
        self.transitions = tuple(transitions)
        self.states = tuple(states)
        super().__init__(
            f"processing {event or 'the initial step'!s} did not settle after {limit} microsteps; "
            f"the loop goes through states {', '.join(self.states)} by transitions "
            f"{', '.join(self.transitions)}. The instance was left as it was before the event."
        )


class InstanceDoneError(StatechartError):
    """The instance reached a top-level final state and accepts no more events."""

    def __init__(self, event: str, configuration: Iterable[str]) -> None:
        self.event = event
        self.configuration = frozenset(configuration)
        super().__init__(
            f"cannot process {event!r}: the instance has finished in "
            f"{{{', '.join(sorted(self.configuration))}}}"
        )


class InvariantViolationError(StatechartError):
    """Checked mode: after a macrostep an invariant of the machine or an active state does not hold."""

    def __init__(self, state: str, expression: str, events: Iterable[str], detail: str = "is false") -> None:
        self.state = state
        self.expression = expression
        self.events = tuple(events)
        self.detail = detail
        where = "the machine's invariant" if state == "$root" else f"the invariant of {state!r}"
        super().__init__(f"{where} `{expression}` {detail} after the events {', '.join(self.events)}; "
                         "the step was not applied")


class StoreError(StatechartError):
    """Base class of the errors a store raises about stored instances."""


class InstanceNotFoundError(StoreError):
    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(f"no stored instance with id {instance_id!r}")


class DuplicateInstanceError(StoreError):
    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(f"an instance with id {instance_id!r} already exists; choose another id or omit it")


class MachineNotLoadedError(StoreError):
    def __init__(self, machine: str, version: int | None, loaded: Iterable[str]) -> None:
        self.machine = machine
        self.version = version
        self.loaded = tuple(sorted(loaded))
        wanted = f"{machine} v{version}" if version is not None else machine
        have = ", ".join(self.loaded) or "none"
        super().__init__(f"machine {wanted} is not registered with this store (registered: {have}); "
                         f"register machines/{machine}/v{version or 'N'}.yaml, or migrate the instance")


class ConcurrencyError(StoreError):
    def __init__(self, instance_id: str, attempts: int) -> None:
        self.instance_id = instance_id
        self.attempts = attempts
        super().__init__(f"instance {instance_id!r} kept changing under us: {attempts} attempts lost the race "
                         "to concurrent writers; nothing was written, retry later")


class IdempotencyConflictError(StoreError):
    def __init__(self, instance_id: str, key: str) -> None:
        self.instance_id = instance_id
        self.key = key
        super().__init__(f"idempotency key {key!r} was already used on instance {instance_id!r} with a different "
                         "event or payload; use a new key for a new request")


class PayloadError(StoreError):
    """Event data or instance data that cannot be stored as JSON."""


class StoreSchemaError(StoreError):
    """The database holds a schema this release cannot use (too new, or not ours)."""
