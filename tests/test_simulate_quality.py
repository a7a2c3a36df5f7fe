"""Decision quality gate (issue 15): on every shipped scenario with deadlines, one set of
shipped rules gets close to the oracle (the earliest deadline that can still be met), well
above static weights where those fall short, starves no list, writes little, never flaps
and is no slower to call fresh numbers than static weights.

Each scenario runs up to its first two days, or up to its first deadline if that comes
later (an on-time figure means little before any deadline has passed); docs/benchmarks.md
has the full-length figures (``bench/decision_quality.py``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from mixer.emulator.scenario import Scenario, load_scenario, shipped_scenarios
from mixer.shipped import shipped_rule_files
from mixer.simulate.backtest import backtest, run_strategy
from mixer.simulate.gate import gate_failures

GATE_SPAN = timedelta(days=2)


def _has_deadlines(name: str) -> bool:
    scenario = load_scenario(name)
    return any(item.deadline for spec in scenario.campaigns.values() for item in spec.lists)


def gate_span(scenario: Scenario) -> timedelta:
    """Two days, or up to the first deadline (plus an hour) if it comes later."""
    first = min(
        (
            scenario.local(deadline)
            for spec in scenario.campaigns.values()
            for item in spec.lists
            if (deadline := item.deadline_local()) is not None
        ),
        default=scenario.start,
    )
    return min(scenario.duration, max(GATE_SPAN, first - scenario.start + timedelta(hours=1)))


DEADLINE_SCENARIOS = [name for name in shipped_scenarios() if _has_deadlines(name)]


def test_there_are_scenarios_to_gate() -> None:
    """The gate covers the deadline scenarios the docs promise, not an empty set."""
    assert {
        "deadline-crunch",
        "overload-callbacks",
        "fresh-leads",
        "all-office-hours",
        "short-staffed-week",
    } <= set(DEADLINE_SCENARIOS)


@pytest.mark.slow
@pytest.mark.parametrize("name", DEADLINE_SCENARIOS)
def test_shipped_rules_meet_the_quality_gate(name: str, tmp_path: Path) -> None:
    """Rules >= 0.95 x oracle, >= 1.5 x (or >=) static, no starved list, <= 80 writes per
    campaign-day, no flap, speed to lead within 1.5 x static's."""
    scenario = load_scenario(name)
    result = backtest(
        scenario, shipped_rule_files(), workdir=tmp_path, duration=gate_span(scenario)
    )
    assert gate_failures(result) == [], result.to_json()


@pytest.mark.slow
def test_standby_reserve_does_not_flap_between_refills(tmp_path: Path) -> None:
    """No deadlines, refills and a standby reserve: the reserve covers the dry spells
    without one flap, writes stay few, and agents are hardly ever idle."""
    scenario = load_scenario("standby-refills")
    rules = run_strategy(
        scenario, "rules", rules=shipped_rule_files(), workdir=tmp_path, duration=timedelta(days=1)
    )
    static = run_strategy(
        scenario, "static", rules=(), workdir=tmp_path, duration=timedelta(days=1)
    )
    assert ["Sales", "Standby Reserve"] not in rules.flapped_lists
    assert rules.writes_per_campaign_day <= 40
    assert rules.idle_agent_minutes < 0.05 * static.idle_agent_minutes


@pytest.mark.slow
def test_an_all_office_hours_campaign_closes_at_night(tmp_path: Path) -> None:
    """Every list of the B2B campaign is paused at 17:00 and resumed at 09:00 New York
    time: the guardrail lets the declared campaign-wide pause through."""
    scenario = load_scenario("all-office-hours")
    run_strategy(
        scenario,
        "rules",
        rules=shipped_rule_files(),
        workdir=tmp_path,
        duration=timedelta(hours=12),
    )
    records = [
        json.loads(line)
        for line in (tmp_path / "state" / "decisions.jsonl").read_text().splitlines()
    ]
    assert not [r for r in records if r.get("event") == "guardrail"]
    pauses = {
        r["list"]: r["ts"]
        for r in records
        if r.get("event") == "decision" and r["after"]["paused"] and r["applied"]
    }
    assert sorted(pauses) == ["B2B East", "B2B Renewals", "B2B West"]
    assert set(pauses.values()) == {"2024-11-01T21:00:00+00:00"}  # 17:00 EDT
