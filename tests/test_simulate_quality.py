"""Decision quality gate: on every shipped scenario with deadlines, the shipped rules get
close to the earliest-deadline-first oracle, well above static weights, and starve no list.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mixer.emulator.scenario import load_scenario, shipped_scenarios
from mixer.shipped import shipped_rule_files
from mixer.simulate import backtest

ORACLE_SHARE = 0.95
STATIC_FACTOR = 1.5


def _has_deadlines(name: str) -> bool:
    scenario = load_scenario(name)
    return any(item.deadline for spec in scenario.campaigns.values() for item in spec.lists)


DEADLINE_SCENARIOS = [name for name in shipped_scenarios() if _has_deadlines(name)]


def test_there_are_scenarios_to_gate() -> None:
    """The gate covers the deadline scenarios the docs promise, not an empty set."""
    assert "deadline-crunch" in DEADLINE_SCENARIOS


@pytest.mark.slow
@pytest.mark.parametrize("name", DEADLINE_SCENARIOS)
def test_shipped_rules_meet_the_quality_gate(name: str, tmp_path: Path) -> None:
    """Rules reach 95% of the oracle's on-time ratio and 1.5x static's, starving no list."""
    result = backtest(load_scenario(name), shipped_rule_files(), workdir=tmp_path)
    rules = result.strategies["rules"].on_time_ratio
    oracle = result.strategies["oracle"].on_time_ratio
    static = result.strategies["static"].on_time_ratio
    assert rules is not None
    assert oracle is not None
    assert static is not None
    table = result.to_json()
    assert rules >= ORACLE_SHARE * oracle, table
    assert rules >= STATIC_FACTOR * static, table
    assert result.strategies["rules"].starved_lists == [], table
