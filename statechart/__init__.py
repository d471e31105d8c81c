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
    from .errors import *  # noqa: F403 - every error type: errors.__all__
    from .events import Event
    from .instance import Instance, SendResult
    from .interpreter import ActionContext, Effect, PendingSend
    from .machine import Machine, load, loads
    from .snapshot import Snapshot
    from .store import Receipt, Store, StoredInstance

#: Public name -> the module that defines it; every name in ``errors.__all__`` is public too.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("load", "loads", "Machine"), ".machine"),
    **dict.fromkeys(("Instance", "SendResult"), ".instance"),
    "Snapshot": ".snapshot",
    **dict.fromkeys(("Store", "StoredInstance", "Receipt"), ".store"),
    "Event": ".events",
    **dict.fromkeys(("Effect", "PendingSend", "ActionContext"), ".interpreter"),
    **dict.fromkeys(("Clock", "SystemClock", "VirtualClock"), ".clock"),
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        value: Any = version("statechart")
    elif name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name], __name__), name)
    else:
        errors = import_module(".errors", __name__)
        if name == "__all__":
            value = [*_EXPORTS, *errors.__all__]
        elif name in errors.__all__:
            value = getattr(errors, name)
        else:
            raise AttributeError(f"module 'statechart' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__getattr__("__all__"), "__version__"})
