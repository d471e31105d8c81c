"""Durations as authors write them (``500ms``, ``30s``, ``5m``, ``2h``, ``1d``, ``.5s``) -> seconds."""

from __future__ import annotations

import re

__all__ = ["parse_duration", "DURATION_UNITS"]

DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)\s*$")


def parse_duration(value: object) -> float:
    """Return seconds; raises ValueError with the accepted forms when ``value`` is not a duration.

    A bare number is taken as seconds, so that computed delays (SCXML ``delayexpr``) and
    YAML numbers both work.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * DURATION_UNITS[match.group(2)]
    raise ValueError(
        f"{value!r} is not a duration; write a number and a unit: 500ms, 30s, 5m, 2h or 1d"
    )
