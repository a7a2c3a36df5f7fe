"""The pure guardrails: per-list limits, and the plan they shape."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mixer.engine.facts import EngineSettings
from mixer.engine.memory import ListMemory
from mixer.guardrails import Limits, clamp_weight, guard_list, max_step_for
from mixer.plan import plan_campaign
from mixer.rule_loading import load_rules
from mixer.snapshot import CampaignSnapshot, ListSnapshot

NOW = datetime(2024, 4, 29, 8, 0, tzinfo=UTC)
TODAY = date(2024, 4, 29)


def snap(
    name: str = "A", weight: int = 10, paused: bool = False, reserve: bool = True
) -> ListSnapshot:
    return ListSnapshot(
        name=name,
        notes="",
        weight=weight,
        list_state="paused" if paused else "open",
        dialer_state="open",
        can_reserve_state="open" if reserve else "closed",
        added=100,
        completed=10,
        pulled=20,
        last_pull=None,
    )


def wish(weight: float, paused: bool, standby: bool = False) -> Any:
    return SimpleNamespace(weight=weight, paused=paused, standby=standby)


def memory(**kw: Any) -> ListMemory:
    base: dict[str, Any] = {"base_weight": 10, "human_paused": False, "first_seen": NOW}
    base.update(kw)
    return ListMemory(**base)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10.0, 10),
        (10.5, 11),
        (10.49, 10),
        (0.2, 1),
        (-5, 1),
        (250, 100),
        (float("nan"), 1),
        (float("inf"), 100),
    ],
)
def test_clamp_weight_rounds_half_up_within_bounds(value: float, expected: int) -> None:
    """Weights become integers in [min_weight, max_weight], even from NaN or infinity."""
    assert clamp_weight(value, Limits()) == expected


@pytest.mark.parametrize(
    ("limits", "current", "expected"),
    [
        (Limits(), 10, None),
        (Limits(max_step=5), 10, 5),
        (Limits(max_step_percent=25), 10, 3),
        (Limits(max_step_percent=25), 2, 1),
        (Limits(max_step=2, max_step_percent=50), 10, 2),
    ],
)
def test_max_step_absolute_percent_and_both(
    limits: Limits, current: int, expected: int | None
) -> None:
    """max_step is absolute, a percent of the current weight (at least 1), or the smaller."""
    assert max_step_for(current, limits) == expected


def test_manual_hold_keeps_current_state() -> None:
    """During a manual hold the rules' wish is ignored."""
    mem = memory(manual_hold_until=NOW + timedelta(minutes=5))
    out = guard_list(snap("A", 10), wish(50, True), mem, NOW, TODAY, Limits())
    assert (out.weight, out.paused) == (10, False)
    assert "manual hold" in out.notes[0]


def test_human_paused_list_is_not_resumed() -> None:
    """A list a human paused stays paused whatever the rules say."""
    out = guard_list(
        snap("A", paused=True), wish(10, False), memory(human_paused=True), NOW, TODAY, Limits()
    )
    assert out.paused is True
    assert "not resumed" in out.notes[0]


@pytest.mark.parametrize(
    ("mem_kw", "standby"), [({"paused_by_mixer": True}, False), ({"human_paused": True}, True)]
)
def test_mixer_paused_or_standby_list_may_resume(mem_kw: dict[str, Any], standby: bool) -> None:
    """The mixer resumes lists it paused itself, and standby lists."""
    out = guard_list(
        snap("A", paused=True), wish(10, False, standby), memory(**mem_kw), NOW, TODAY, Limits()
    )
    assert out.paused is False


def test_max_step_limits_the_move() -> None:
    """A weight moves at most max_step per cycle, in the right direction."""
    up = guard_list(snap("A", 10), wish(40, False), memory(), NOW, TODAY, Limits(max_step=5))
    down = guard_list(snap("A", 10), wish(1, False), memory(), NOW, TODAY, Limits(max_step=5))
    assert (up.weight, down.weight) == (15, 5)


def test_max_changes_per_day_freezes_the_list() -> None:
    """After max_changes_per_day changes on this local day, the list is left as it is."""
    mem = memory(changes_day=datetime(2024, 4, 29).date(), changes_today=3)
    out = guard_list(snap("A", 10), wish(20, False), mem, NOW, TODAY, Limits(max_changes_per_day=3))
    assert (out.weight, out.paused) == (10, False)
    fresh = guard_list(
        snap("A", 10), wish(20, False), mem, NOW, "2024-04-30", Limits(max_changes_per_day=3)
    )
    assert fresh.weight == 20


@pytest.mark.parametrize("current_paused", [True, False])
def test_list_that_ends_paused_keeps_its_weight(current_paused: bool) -> None:
    """Pausing, or staying paused, never rewrites the weight: it matters only on resume."""
    mem = memory(paused_by_mixer=current_paused)
    out = guard_list(snap("A", 10, paused=current_paused), wish(1, True), mem, NOW, TODAY, Limits())
    assert (out.weight, out.paused) == (10, True)


def test_resume_writes_the_wished_weight() -> None:
    """A list the mixer resumes gets the rules' weight in the same write."""
    out = guard_list(
        snap("A", 10, paused=True),
        wish(40, False),
        memory(paused_by_mixer=True),
        NOW,
        TODAY,
        Limits(),
    )
    assert (out.weight, out.paused) == (40, False)


def test_plan_keeps_a_lists_memory_object_when_no_rule_timer_moved() -> None:
    """plan_campaign passes memory through unchanged, and replaces it when a timer moves."""
    text = "rules:\n  - name: low\n    when: weight < 5\n    for: 10m\n    set: {weight: 8}\n"
    rules = load_rules([], extra_texts=[("t.yaml", text)]).for_campaign("Sales")
    settings = EngineSettings(timezone=ZoneInfo("UTC"))
    quiet = CampaignSnapshot("Sales", (snap("A", 10),), NOW)
    first = plan_campaign(rules, quiet, {}, {}, NOW, settings, Limits())
    kept = first.memory_after(first.update_names)
    again = plan_campaign(rules, quiet, kept, {}, NOW, settings, Limits())
    assert again.memory["A"] is kept["A"]
    low = CampaignSnapshot("Sales", (snap("A", 3),), NOW)
    held = {"A": memory(base_weight=3, last_written_weight=3, last_written_paused=False)}
    moved = plan_campaign(rules, low, held, {}, NOW, settings, Limits())
    assert moved.memory["A"].rules["low"].holding_since == NOW


def test_a_human_weight_outside_the_limits_is_kept_unless_the_list_is_written() -> None:
    """No rule moves weight 0: it stays 0 and is not written; resumed by the mixer, the
    list is written, so the weight it carries is brought within the limits."""
    kept = guard_list(snap("A", 0), wish(0, False), memory(base_weight=0), NOW, TODAY, Limits())
    assert (kept.weight, kept.paused) == (0, False)
    resumed = guard_list(
        snap("A", 0, paused=True),
        wish(0, False),
        memory(base_weight=0, paused_by_mixer=True),
        NOW,
        TODAY,
        Limits(),
    )
    assert (resumed.weight, resumed.paused) == (1, False)
