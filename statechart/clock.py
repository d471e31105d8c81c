"""Clocks the caller controls: the interpreter never reads the time itself.

An instance asks its clock for ``now()`` when it schedules a delayed send and when it
looks for sends that are due. Tests and ``statechart run --fast-forward`` use a
:class:`VirtualClock`; services use :class:`SystemClock` and a durable timer store.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "SystemClock", "VirtualClock"]


class Clock(Protocol):
    def now(self) -> float: ...


class SystemClock:
    """Wall-clock seconds since the epoch."""

    def now(self) -> float:
        return time.time()


class VirtualClock:
    """A clock that moves only when told to; ``advance`` and ``set`` never go backwards."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a virtual clock cannot go backwards")
        self._now += seconds
        return self._now

    def set(self, moment: float) -> float:
        self._now = max(self._now, float(moment))
        return self._now
