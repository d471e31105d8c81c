"""statechart: hierarchical statecharts with W3C SCXML semantics, authored in YAML.

    machine = statechart.load("machines/order/v2.yaml")
    instance = machine.start()
    result = instance.send("CHECKOUT")
"""

from .clock import Clock, SystemClock, VirtualClock
from .errors import (
    DefinitionMismatchError,
    EventlessLoopError,
    InstanceDoneError,
    InvariantViolationError,
    LoadError,
    Problem,
    SnapshotFormatError,
    IllegalSnapshotError,
    ReservedEventError,
    ExpressionLimitError,
    StatechartError,
    UnhandledEventError,
    UnknownEventError,
    StoreError,
    InstanceNotFoundError,
    DuplicateInstanceError,
    MachineNotLoadedError,
    ConcurrencyError,
    IdempotencyConflictError,
    PayloadError,
    StoreSchemaError,
)
from .events import Event
from .instance import Instance, SendResult
from .interpreter import ActionContext, Effect, PendingSend
from .machine import Machine, load, loads
from .snapshot import Snapshot
from .store import Receipt, Store, StoredInstance

__all__ = [
    "load",
    "loads",
    "Machine",
    "Instance",
    "SendResult",
    "Snapshot",
    "Store",
    "StoredInstance",
    "Receipt",
    "Event",
    "Effect",
    "PendingSend",
    "ActionContext",
    "Clock",
    "SystemClock",
    "VirtualClock",
    "StatechartError",
    "LoadError",
    "Problem",
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

__version__ = "0.1.0"
