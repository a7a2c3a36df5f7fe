"""The simulated dialer's quality figures: the oracle that skips passed deadlines, speed to
lead, the longest gap a reservable list waits, and flaps counted by the emulator."""

from __future__ import annotations

from datetime import timedelta

from mixer.emulator.app import EmulatorStats
from tests.test_emulator_dialer import dialer_of, make_scenario, run


def test_oracle_serves_a_reachable_deadline_before_a_passed_one() -> None:
    """A passed deadline waits while a later one can still be met; the old edf does not."""
    lists = [
        {"name": "Missed", "numbers": 50, "weight": 1, "deadline": "2024-04-22 07:00"},
        {"name": "Next", "numbers": 20, "weight": 1, "deadline": "2024-04-22 12:00"},
    ]
    scenario = make_scenario(lists)
    oracle = dialer_of(run(scenario, timedelta(minutes=30), policy="oracle")[0]).metrics()
    assert oracle.pulls_per_list[("C", "Next")] == 20
    assert oracle.pulls_per_list[("C", "Missed")] == 2  # 22 calls by 08:30: then the rest
    edf = dialer_of(run(scenario, timedelta(minutes=30), policy="edf")[0]).metrics()
    assert ("C", "Next") not in edf.pulls_per_list
    assert oracle.on_time_per_list[("C", "Next")] == 20
    assert oracle.on_time_ratio is not None
    assert edf.on_time_ratio is not None
    assert oracle.on_time_ratio > edf.on_time_ratio


def test_oracle_skips_a_deadline_no_call_started_now_can_meet() -> None:
    """Three minutes of handling: a deadline two minutes away is already out of reach."""
    lists = [
        {"name": "Closing", "numbers": 10, "weight": 9, "deadline": "2024-04-22 08:02"},
        {"name": "Open", "numbers": 10, "weight": 1},
    ]
    metrics = dialer_of(run(make_scenario(lists), timedelta(minutes=1), policy="oracle")[0])
    assert metrics.metrics().pulls_per_list == {("C", "Open"): 2}


def test_wait_to_first_call_measures_refilled_numbers_only() -> None:
    """Numbers there at the start do not count; a refill's numbers wait until called."""
    lists = [
        {"name": "Base", "numbers": 1000, "weight": 1},
        {"name": "Web", "numbers": 0, "weight": 1, "add": [{"at": "2h", "numbers": 4}]},
    ]
    idle = make_scenario(lists)
    assert dialer_of(run(idle, timedelta(hours=1))[0]).metrics().wait_to_first_call_minutes is None
    # Web paused: its four numbers are never called and count until the end of the run.
    paused = make_scenario([lists[0], {**lists[1], "paused": True}])
    waits = dialer_of(run(paused, timedelta(hours=3))[0]).metrics().wait_to_first_call_minutes
    assert waits == {"mean": 60.0, "p90": 60.0}
    busy = make_scenario(lists, agents=[{"from": "08:00", "to": "18:00", "count": 20}])
    waits = dialer_of(run(busy, timedelta(hours=3))[0]).metrics().wait_to_first_call_minutes
    assert waits is not None
    assert waits["p90"] < 10


def test_max_list_gap_counts_working_time_only() -> None:
    """A list at 1 % of the weight waits hours of working time between calls; the night
    between two shifts is not counted as a gap, and an even split has short gaps."""
    lists = [
        {"name": "Big", "numbers": 10_000, "weight": 100},
        {"name": "Tiny", "numbers": 10_000, "weight": 1},
    ]
    scenario = make_scenario(lists, seed=2, agents=[{"from": "08:00", "to": "10:00", "count": 1}])
    metrics = dialer_of(run(scenario, timedelta(days=1, hours=2))[0]).metrics()
    assert metrics.max_gap_list == ("C", "Tiny")
    assert 1.0 <= metrics.max_list_gap_hours <= 4.0
    even = make_scenario([{**lists[0], "weight": 1}, lists[1]])
    assert dialer_of(run(even, timedelta(hours=8))[0]).metrics().max_list_gap_hours < 0.5


def test_flaps_count_a_reversal_within_ten_minutes() -> None:
    """Resumed then paused 2 min later is a flap; paused again after 20 min is not; a
    weight flaps when it returns to its value before the previous change."""
    stats = EmulatorStats()
    key = ("C", "Standby")
    stats.note_change(key, (10, True), (10, False), 0.0)
    stats.note_change(key, (10, False), (10, True), 120.0)
    assert stats.flaps[key] == 1
    stats.note_change(key, (10, True), (10, False), 2000.0)
    stats.note_change(key, (10, False), (10, True), 3200.0)
    assert stats.flaps[key] == 1
    stats.note_change(key, (10, True), (20, True), 4000.0)
    stats.note_change(key, (20, True), (30, True), 4100.0)  # same direction: no flap
    stats.note_change(key, (30, True), (25, True), 4200.0)  # back, but not to 20: no flap
    assert stats.flaps[key] == 1
    stats.note_change(key, (25, True), (30, True), 4300.0)  # back to 30 within 10 min
    assert stats.flaps[key] == 2
