"""The wall-clock step detector: a step is the wall clock moving other than the monotonic
clock, by more than the tolerance; its sign says which way."""

from __future__ import annotations

from mixer.clock_steps import StepDetector


class Clocks:
    def __init__(self) -> None:
        self.wall = 1_700_000_000.0
        self.mono = 100.0

    def tick(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def test_steps_back_and_forward_are_reported_once_with_their_size() -> None:
    """Normal passage of time is no step; -3600 and +600 are reported once each."""
    clocks = Clocks()
    detector = StepDetector(lambda: clocks.wall, lambda: clocks.mono)
    clocks.tick(60)
    assert detector.check() is None
    clocks.wall -= 3600
    assert detector.check() == -3600
    assert detector.check() is None
    clocks.tick(5)
    clocks.wall += 600
    assert detector.check() == 600


def test_drift_within_the_tolerance_is_no_step() -> None:
    """NTP slewing (a second over a check period) is not a step."""
    clocks = Clocks()
    detector = StepDetector(lambda: clocks.wall, lambda: clocks.mono, tolerance_s=2.0)
    clocks.tick(5)
    clocks.wall += 1.5
    assert detector.check() is None
