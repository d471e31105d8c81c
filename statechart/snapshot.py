"""The snapshot: everything needed to continue an instance, as a value and as JSON.

The snapshot format has a version of its own (``format``), independent of machine versions,
so stored snapshots stay readable across releases; ``snapshot.schema.json`` in the package
describes the JSON form. Restoring checks the machine's definition hash, so a snapshot is
never silently continued under a changed definition (that is what migrations are for).
"""

from __future__ import annotations

import json
import math
from typing import Any

import attrs
import cattrs

from .errors import SnapshotFormatError
from .interpreter import PendingSend

__all__ = ["SNAPSHOT_FORMAT", "Snapshot", "QueuedEvent", "snapshot_converter"]

#: The current snapshot format; bump it (and teach ``from_dict`` the old one) when the shape changes.
SNAPSHOT_FORMAT = 1


@attrs.frozen
class QueuedEvent:
    name: str
    data: Any = None
    type: str = "internal"


@attrs.frozen
class Snapshot:
    """An instance at rest. Configuration and history hold state ids; data is JSON-compatible."""

    machine: str
    version: int
    definition_hash: str
    configuration: frozenset[str]
    history: dict[str, frozenset[str]]
    data: dict[str, Any]
    done: bool = False
    session_id: str | None = None
    pending_sends: tuple[PendingSend, ...] = ()
    internal_queue: tuple[QueuedEvent, ...] = ()
    send_counter: int = 0
    bound_states: frozenset[str] = frozenset()  # late binding: states whose own data has been set
    format: int = SNAPSHOT_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return snapshot_converter.unstructure(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, document: Any) -> "Snapshot":
        if not isinstance(document, dict):
            raise SnapshotFormatError("a snapshot must be a JSON object")
        found = document.get("format")
        if found != SNAPSHOT_FORMAT:
            raise SnapshotFormatError(
                f"snapshot format {found if type(found) is int else type(found).__name__} is not readable by this release (it reads format {SNAPSHOT_FORMAT})"
            )
        try:
            return snapshot_converter.structure(document, cls)
        except (cattrs.BaseValidationError, KeyError, TypeError, ValueError, RecursionError) as error:
            details = _describe(error)
            raise SnapshotFormatError(f"malformed snapshot: {details}") from None

    @classmethod
    def from_json(cls, text: str) -> "Snapshot":
        try:
            document = json.loads(text, parse_constant=_refuse_constant)
        except (json.JSONDecodeError, ValueError) as error:  # ValueError: NaN, or an int of > 4300 digits
            raise SnapshotFormatError(f"a snapshot must be JSON: {error}") from None
        except RecursionError:
            raise SnapshotFormatError("a snapshot must be JSON: it is nested too deeply") from None
        return cls.from_dict(document)


snapshot_converter = cattrs.Converter(forbid_extra_keys=True)


def _is_frozenset(kind: Any) -> bool:
    return kind is frozenset or getattr(kind, "__origin__", None) is frozenset


snapshot_converter.register_unstructure_hook_func(_is_frozenset, lambda value: sorted(value))
snapshot_converter.register_structure_hook_func(_is_frozenset, lambda value, _: frozenset(_strings(value)))


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"expected a list of state ids, got {value!r}")
    return value


def _describe(error: Exception) -> str:
    """cattrs' located messages; its formatter itself fails on some inputs (keys that are not
    strings), and a refusal must not turn into a crash, so fall back to a plain description."""
    if not isinstance(error, cattrs.BaseValidationError):
        return str(error)[:500]
    try:
        return "; ".join(cattrs.transform_error(error))[:2000]
    except Exception:  # noqa: BLE001 - the formatter's own failure
        return f"{error.message} (a field has the wrong shape)"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# Exact types: cattrs would otherwise turn done: "yes" into True and send_counter: 1.5 into 1, and a
# snapshot that says something else than what it restores to must be refused, not reinterpreted.
def _exact(kind: type, what: str) -> Any:
    def structure(value: Any, _: Any) -> Any:
        if type(value) is not kind:
            raise ValueError(f"expected {what}, got {value!r}"[:200])
        return value

    return structure


def _seconds(value: Any, _: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ValueError(f"expected a finite number of seconds, got {value!r}"[:200])
    return float(value)


snapshot_converter.register_structure_hook(bool, _exact(bool, "true or false"))
snapshot_converter.register_structure_hook(int, _exact(int, "a whole number"))
snapshot_converter.register_structure_hook(str, _exact(str, "a string"))
snapshot_converter.register_structure_hook(float, _seconds)
