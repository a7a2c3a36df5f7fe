"""Noticing a stepped wall clock (an NTP correction, a VM resumed, an operator's ``date``).

APScheduler plans runs in wall time: after the clock steps back one hour it waits an hour
of real time for the next cycle. The daemon compares how far the wall clock moved with
how far the monotonic clock moved; a difference beyond ``TOLERANCE_S`` is a step, and the
daemon moves the next run by the same amount, so cycles keep their real-time cadence.
"""

from __future__ import annotations

import time
from collections.abc import Callable

TOLERANCE_S = 2.0
"""Drift below this between two checks is slewing or scheduling jitter, not a step."""


class StepDetector:
    """``check()`` returns the size of a wall-clock step since the last check (seconds,
    negative when the clock went back), or None when there was none."""

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        tolerance_s: float = TOLERANCE_S,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._tolerance_s = tolerance_s
        self._offset = wall() - monotonic()

    def check(self) -> float | None:
        offset = self._wall() - self._monotonic()
        step = offset - self._offset
        self._offset = offset
        return step if abs(step) > self._tolerance_s else None
