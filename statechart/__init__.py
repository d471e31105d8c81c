"""statechart: hierarchical statecharts with W3C SCXML semantics, authored in YAML.

    machine = statechart.load("machines/order/v2.yaml")
    instance = machine.start()
    result = instance.send("CHECKOUT")

The names below are imported on first use (PEP 562), so ``import statechart`` and the
``statechart`` command start fast: a command that only prints its help never pays for the
compiler, the store or the snapshot converter.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from .clock import Clock, SystemClock, VirtualClock
    from .errors import (
        ConcurrencyError,
        DefinitionMismatchError,
        DuplicateInstanceError,
        EventlessLoopError,
        IdempotencyConflictError,
        InstanceDoneError,
        InstanceNotFoundError,
        InvariantViolationError,
        LoadError,
        MachineNotLoadedError,
        PayloadError,
        Problem,
        SnapshotFormatError,
        StatechartError,
        StoreError,
        StoreSchemaError,
        PythonNotImportedError,
        IllegalSnapshotError,
        ReservedEventError,
        StoreURLError,
        StoreInputError,
        DatabaseError,
        ConnectionLostError,
        StatementTimeoutError,
        LockNotAvailableError,
        DatabaseBusyError,
        SerializationConflictError,
        DiskFullError,
        DatabaseCorruptError,
        CorruptInstanceError,
        ExpressionLimitError,
        UnhandledEventError,
        UnknownEventError,
    )
    from .events import Event
    from .instance import Instance, SendResult
    from .interpreter import ActionContext, Effect, PendingSend
    from .machine import Machine, load, loads
    from .snapshot import Snapshot
    from .store import Receipt, Store, StoredInstance

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("load", "loads", "Machine"), ".machine"),
    **dict.fromkeys(("Instance", "SendResult"), ".instance"),
    "Snapshot": ".snapshot",
    **dict.fromkeys(("Store", "StoredInstance", "Receipt"), ".store"),
    "Event": ".events",
    **dict.fromkeys(("Effect", "PendingSend", "ActionContext"), ".interpreter"),
    **dict.fromkeys(("Clock", "SystemClock", "VirtualClock"), ".clock"),
    **dict.fromkeys((
        "StatechartError",
        "LoadError",
        "Problem",
        "DefinitionMismatchError",
        "SnapshotFormatError",
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
        "IllegalSnapshotError",
        "ReservedEventError",
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
        "ExpressionLimitError",
    ), ".errors"),
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        value: Any = version("statechart")
    elif name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name], __name__), name)
    else:
        raise AttributeError(f"module 'statechart' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__, "__version__"])
