"""Durations as authors write them (``500ms``, ``30s``, ``5m``, ``2h``, ``1d``, ``.5s``) <-> seconds.

One home for reading and writing durations: :func:`parse_duration` reads what authors and CLI users
write, :func:`format_delay` writes a delay back the way an author would (``after 5m`` in labels and
findings), and :func:`format_duration` writes an elapsed or remaining time for people to read at a
glance (``2h 5m ago``, ``in 1m 30s``) in the CLI, the demo and the drawings.
"""

from __future__ import annotations

import re

__all__ = ["parse_duration", "format_delay", "format_duration", "DURATION_UNITS"]

DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: The whole units, largest first, that :func:`format_duration` and :func:`format_delay` write.
_UNITS_LARGEST_FIRST = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
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


def format_delay(seconds: float) -> str:
    """``5m``, ``90s``, ``1d``, ``250ms``: a delay in the one unit an author would write it in.

    The largest whole unit that divides it exactly, else milliseconds, so that
    ``parse_duration(format_delay(s)) == s`` for any whole number of milliseconds.
    """
    for unit, size in _UNITS_LARGEST_FIRST:
        if seconds >= size and (seconds / size) == int(seconds / size):
            return f"{int(seconds / size)}{unit}"
    return f"{int(round(seconds * 1000))}ms"


def format_duration(seconds: float) -> str:
    """``2h 5m``, ``45s``, ``3d 4h``, ``250ms``: the two largest units, for people to read at a glance.

    Rounded to the second (so a timer due in 1799.9999s reads ``30m``, not ``29m 59s``); under
    a second it is written in milliseconds, and a negative time (a clock that went back) as ``0s``.
    """
    seconds = max(0.0, float(seconds))
    milliseconds = round(seconds * 1000)
    if milliseconds < 1000:
        return f"{milliseconds}ms" if milliseconds else "0s"
    rest, parts = int(round(seconds)), []
    for unit, size in _UNITS_LARGEST_FIRST:
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return " ".join(parts[:2])
