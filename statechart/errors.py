"""The exception types of statechart, all under :class:`StatechartError`.

Each exception carries the structured facts (file, line, column, state, event ...) as
attributes for programs, and a sentence a person can act on as its message. The CLI
prints the sentence; it never shows a traceback for one of these.
"""

from __future__ import annotations

from typing import Any, Iterable

import attrs

__all__ = [
    "CallbackError",
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
    "PythonNotImportedError",
    "StoreURLError",
    "StoreInputError",
    "DatabaseError",
    "ConnectionLostError",
    "StatementTimeoutError",
    "LockNotAvailableError",
    "DatabaseBusyError",
    "SerializationConflictError",
    "DiskFullError",
    "DatabaseCorruptError",
    "CorruptInstanceError",
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

    def __init__(self, event: str, configuration: Iterable[str], errors: Iterable[str] = ()) -> None:
        self.event = event
        self.configuration = frozenset(configuration)
        #: What failed while the transitions were selected (a guard that raised counts as false).
        self.errors = tuple(errors)
        because = f"; {'; '.join(self.errors)}" if self.errors else ""
        super().__init__(
            f"event {event!r} is not handled in configuration "
            f"{{{', '.join(sorted(self.configuration))}}}; nothing was changed{because}"
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
    """Base class of the errors a store raises about stored instances.

    ``retryable`` says whether running the same call again may succeed without anyone changing
    anything (a dropped connection, a lock held by another transaction); a program can branch on
    it instead of on driver-specific exception types.
    """

    retryable: bool = False


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
    """Every attempt lost the race to concurrent writers; nothing was written, so a later retry may succeed."""

    retryable = True

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


class CallbackError(Exception):
    """A named Python guard or action raised. It counts as SCXML says (a guard is false, an
    action stops its block, ``error.execution`` is raised); its message names the callable,
    where it is defined and the line that raised, so the author can go straight there."""

    def __init__(self, kind: str, name: str, function: Any, error: BaseException) -> None:
        self.kind, self.name, self.error = kind, name, error
        code = getattr(function, "__code__", None)
        file = code.co_filename if code is not None else None
        defined = f" ({_relative(file)}:{code.co_firstlineno})" if code is not None else ""
        line = None
        traceback = error.__traceback__
        while traceback is not None:  # the innermost frame in the callable's own file
            if traceback.tb_frame.f_code.co_filename == file:
                line = traceback.tb_lineno
            traceback = traceback.tb_next
        at = f" at line {line}" if line is not None else ""
        super().__init__(f"{kind} {name!r}{defined} raised {type(error).__name__}{at}: {error}")


def _relative(file: str | None) -> str:
    """A source file as the user knows it: relative to the current directory when inside it."""
    import os

    if not file:
        return "?"
    try:
        relative = os.path.relpath(file)
    except ValueError:
        return file
    return file if relative.startswith("..") else relative


class PythonNotImportedError(StatechartError):
    """A named action or guard of a machine loaded with ``python="static"`` was called.

    The static check reads a module to know its names without running it (what the read-only
    CLI commands do), so its functions exist only as stand-ins that refuse to run."""

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name
        super().__init__(f"{name!r} from {module!r} was checked but not imported (the machine was loaded with "
                         "python='static'); load it with python='project' (CLI: --allow-python) to run it")


class StoreURLError(StoreError):
    """The store URL cannot be used: a bad scheme or option, a directory, a file that is not a
    SQLite database, an unparsable PostgreSQL URL. Nothing was opened or written."""


class StoreInputError(StoreError, ValueError):
    """An argument to a store call is out of range (an id with a NUL byte, a negative limit ...);
    checked before the database is touched, identically on SQLite and PostgreSQL."""

    def __init__(self, what: str, value: object, rule: str) -> None:
        self.what = what
        self.value = value
        self.rule = rule
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        super().__init__(f"invalid {what} {shown}: {rule}")


class DatabaseError(StoreError):
    """The database failed an operation; the driver's error, wrapped at the backend seam.

    ``code`` is the SQLSTATE (PostgreSQL) or the SQLite result code name, ``detail`` the driver's
    first line. The subclasses name the failures a program may handle; this base covers the rest.
    """

    retryable = False
    #: What happened, as the start of the message.
    summary = "the database failed"

    def __init__(self, detail: str, *, code: str | None = None, where: str = "", retryable: bool | None = None,
                 commit_unknown: bool = False, summary: str | None = None) -> None:
        self.detail = " ".join(detail.split())  # one line: drivers put hints on their own lines
        if summary is not None:
            self.summary = summary
        self.code = code
        self.where = where
        if retryable is not None:
            self.retryable = retryable
        #: The connection died while COMMIT was in flight: the transaction may or may not have been
        #: committed, so only a call that is safe to repeat (an idempotency key) may be retried.
        self.commit_unknown = commit_unknown
        if commit_unknown:
            self.retryable = False
        advice = ("retrying may help" if self.retryable else
                  "it may have been committed: check before repeating, or use an idempotency key"
                  if commit_unknown else "retrying will not help until it is fixed")
        location = f" on {where}" if where else ""
        coded = f" [{code}]" if code else ""
        super().__init__(f"{self.summary}{location}{coded}: {self.detail}; {advice}")


class ConnectionLostError(DatabaseError):
    """The connection to the database dropped or could not be made (server restart, network,
    ``pg_terminate_backend``). An open Store reconnects on its next call."""

    retryable = True
    summary = "connection to the database lost"


class StatementTimeoutError(DatabaseError):
    """A statement ran longer than ``statement_timeout`` and was cancelled; nothing was written."""

    retryable = True
    summary = "statement timed out"


class LockNotAvailableError(DatabaseError):
    """A row or table lock held by another transaction was not released within ``lock_timeout``."""

    retryable = True
    summary = "lock not available"


class DatabaseBusyError(DatabaseError):
    """SQLite: another connection held the database lock for longer than ``busy_timeout``."""

    retryable = True
    summary = "database is locked (busy)"


class SerializationConflictError(DatabaseError):
    """The database aborted the transaction because of a concurrent one (deadlock, serialization
    failure): nothing was written, and running it again may well succeed."""

    retryable = True
    summary = "transaction aborted by a concurrent one"


class DiskFullError(DatabaseError):
    """The disk (or SQLite's ``max_page_count``) is full; the transaction was rolled back."""

    summary = "database or disk is full"


class DatabaseCorruptError(DatabaseError):
    """SQLite reports the database file as malformed; restore it from a backup."""

    summary = "database file is corrupt (restore it from a backup)"


class CorruptInstanceError(StoreError, IllegalSnapshotError):
    """A stored instance row cannot be decoded (invalid JSON, a wrong shape, fields of the wrong
    type): it is reported alone, so that listings, counts, workers and migrations go on with the
    other instances. It is an :class:`IllegalSnapshotError` too: a row is a snapshot at rest."""

    def __init__(self, instance_id: str, detail: str, *, machine: str = "") -> None:
        self.instance_id = instance_id
        self.detail = detail
        self.problems = (detail,)
        self.machine = machine
        StatechartError.__init__(self, f"stored instance {instance_id!r} cannot be decoded: {detail}; repair or delete its row "
                         f"(statechart instances delete {instance_id})")
