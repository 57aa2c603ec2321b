"""Sources of "now", so the controller runs unchanged against real time and simulated time."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the current time in seconds."""

    def now(self) -> float: ...


class VirtualClock:
    """Simulated time that only moves when the simulator says so, and never backwards.

    Moving backwards would reorder events and make readings look older than decisions already
    taken on them, so both `advance` and `set` refuse it.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, dt: float) -> float:
        """Move forward by `dt` seconds (>= 0) and return the new time."""
        if dt < 0:
            raise ValueError(f"cannot advance a clock by a negative amount ({dt} s)")
        self._now += dt
        return self._now

    def set(self, t: float) -> float:
        """Jump to time `t`, which must not be before the current time; return it."""
        if t < self._now:
            raise ValueError(f"cannot set the clock back from {self._now} s to {t} s")
        self._now = float(t)
        return self._now


class WallClock:
    """Real time as seconds since the epoch, for live runs."""

    def now(self) -> float:
        return time.time()
