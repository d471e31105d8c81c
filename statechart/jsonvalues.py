"""JSON-compatible values: copying them, and checking that a value is one.

A step works on a copy of the data so that a failed step leaves the instance as it was; the
loader turns its located containers into plain ones; a migration checks what ``map_data``
returned. One recursive copy serves them all.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["copy_json", "check_json"]


def copy_json(value: Any) -> Any:
    """A deep copy of dicts and lists (subclasses become plain dict and list); scalars are shared."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value


def check_json(value: Any, path: str = "data") -> None:
    """Raise TypeError or ValueError naming where ``value`` is not JSON data (cheaper than encoding)."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"{path} is {value}, which JSON cannot hold")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path} has the key {key!r}; JSON keys are strings")
            check_json(item, f"{path}[{key!r}]")
        return
    raise TypeError(f"{path} is a {type(value).__name__}, which JSON cannot hold")
