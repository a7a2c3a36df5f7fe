"""Evaluation semantics: level-triggered, match, null facts, errors, for, cooldown, stop."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mixer.engine.evaluate import NO_RULE_REASON, CampaignEvaluation, evaluate
from mixer.engine.facts import EngineSettings
from mixer.engine.memory import ListMemory
from mixer.engine.rules import CampaignRules
from mixer.rule_loading import load_rules
from mixer.snapshot import CampaignSnapshot, ListSnapshot
from tests.snapshots import item

SETTINGS = EngineSettings(timezone=ZoneInfo("Europe/Zurich"))
T0 = datetime(2024, 4, 29, 8, 0, tzinfo=UTC)  # Monday 10:00 local


def rules_from(tmp_path: Path, text: str) -> CampaignRules:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rules([path]).for_campaign("Sales")


def memory(base: int = 10, paused: bool = False, **kw: Any) -> ListMemory:
    return ListMemory(base_weight=base, human_paused=paused, first_seen=T0, **kw)


def run(
    rules: CampaignRules,
    *lists: ListSnapshot,
    mem: dict[str, ListMemory] | None = None,
    now: datetime = T0,
) -> CampaignEvaluation:
    lists = lists or (item(),)
    mem = mem if mem is not None else {i.name: memory(i.weight, i.paused) for i in lists}
    return evaluate(rules, CampaignSnapshot("Sales", lists, now), mem, {}, now, SETTINGS)


def test_level_triggered_no_compounding(tmp_path: Path) -> None:
    """A relative weight starts from base_weight every cycle, never from the last result."""
    rules = rules_from(tmp_path, "rules:\n  - {name: triple, set: {weight: 'base_weight * 3'}}\n")
    first = run(rules, item(weight=10)).lists["A"]
    assert first.weight == 30
    again = run(rules, item(weight=30), mem={"A": memory(10)}).lists["A"]
    assert again.weight == 30
    assert (again.baseline_weight, again.fired) == (10, ("triple",))


def test_no_rule_fired_keeps_baseline(tmp_path: Path) -> None:
    """Without a firing rule the wish is the baseline (weight and human pause)."""
    rules = rules_from(tmp_path, "rules:\n  - {name: r, when: unpulled > 1000, set: {weight: 1}}\n")
    result = run(rules, item(weight=40, list_state="paused"), mem={"A": memory(7, True)})
    evaluated = result.lists["A"]
    assert (evaluated.weight, evaluated.paused) == (7.0, True)
    assert evaluated.reason == NO_RULE_REASON
    assert evaluated.trace[0].note == "Condition false."


def test_rules_apply_top_to_bottom_last_wins(tmp_path: Path) -> None:
    """Later rules override earlier ones; the reason is the carried rules' descriptions and
    a rule whose every effect was set again is listed as overridden, not in the reason."""
    rules = rules_from(
        tmp_path,
        """
rules:
  - {name: a, description: "First thing.", set: {weight: 20}}
  - {name: b, description: "then {unpulled} left", set: {weight: 50, paused: true}}
""",
    )
    evaluated = run(rules).lists["A"]
    assert (evaluated.weight, evaluated.paused, evaluated.fired) == (50, True, ("a", "b"))
    assert evaluated.reason == "Then 60 left."
    assert (evaluated.carried, evaluated.overridden) == (("b",), ("a",))
    assert evaluated.facts == {"unpulled": 60}


def test_reason_joins_rules_whose_effects_both_survive(tmp_path: Path) -> None:
    """A weight rule and a later pause rule both carry effect: both are in the reason."""
    rules = rules_from(
        tmp_path,
        """
rules:
  - {name: a, description: "First thing.", set: {weight: 20}}
  - {name: b, description: "then {unpulled} left", set: {paused: true}}
""",
    )
    evaluated = run(rules).lists["A"]
    assert evaluated.reason == "First thing; then 60 left."
    assert (evaluated.carried, evaluated.overridden) == (("a", "b"), ())


@pytest.mark.parametrize(
    ("match", "fires_for"),
    [
        ('"B2B*"', {"B2B One"}),
        ('["B2B*", "Recall*"]', {"B2B One", "Recalls"}),
        ("{tags: [vip]}", {"Recalls"}),
        ('{names: ["B2B*"], tags: [vip]}', set()),
        ('{names: ["Rec*"], tags: [vip, other]}', {"Recalls"}),
    ],
)
def test_match_by_glob_and_tags(tmp_path: Path, match: str, fires_for: set[str]) -> None:
    """match takes a glob, globs, tags, or names and tags together (both must hold)."""
    rules = rules_from(
        tmp_path,
        f"lists:\n  - {{match: Recalls, tags: [vip]}}\n"
        f"rules:\n  - name: r\n    match: {match}\n    set: {{weight: 1}}\n",
    )
    result = run(rules, item("B2B One"), item("Recalls"), item("Plain"))
    fired = {name for name, e in result.lists.items() if e.fired}
    assert fired == fires_for
    assert result.lists["Plain"].trace[0].note == "Does not match this list."


def test_null_fact_does_not_fire_and_trace_names_it(tmp_path: Path) -> None:
    """A condition reading a null fact does not fire; the trace lists the null facts."""
    rules = rules_from(
        tmp_path,
        "rules:\n  - {name: r, when: hours_to_deadline < 48 and unpulled > 0, set: {weight: 5}}\n",
    )
    trace = run(rules).lists["A"].trace[0]
    assert (trace.fired, trace.condition, trace.null_facts) == (False, None, ("hours_to_deadline",))
    assert "hours_to_deadline is null" in trace.note


def test_null_fact_in_weight_does_not_fire(tmp_path: Path) -> None:
    """A weight expression reading a null fact cannot be computed: the rule does not fire."""
    rules = rules_from(tmp_path, "rules:\n  - {name: r, set: {weight: 'eta_hours * 2'}}\n")
    evaluated = run(rules).lists["A"]
    assert evaluated.fired == ()
    assert evaluated.trace[0].null_facts == ("eta_hours",)


def test_evaluation_error_does_not_fire(tmp_path: Path) -> None:
    """Division by zero is traced as an error and the rule does not fire."""
    rules = rules_from(
        tmp_path,
        "rules:\n  - {name: r, when: 'unpulled / (pulled - 40) > 1', set: {weight: 5}}\n",
    )
    trace = run(rules).lists["A"].trace[0]
    assert not trace.fired
    assert trace.error is not None
    assert "division by zero" in trace.error


def test_disabled_rule_is_skipped_and_traced(tmp_path: Path) -> None:
    """enabled: false skips the rule; the trace says so."""
    rules = rules_from(tmp_path, "rules:\n  - {name: r, enabled: false, set: {weight: 5}}\n")
    evaluated = run(rules).lists["A"]
    assert evaluated.fired == ()
    assert (evaluated.trace[0].enabled, evaluated.trace[0].fired) == (False, False)


def test_stop_ends_evaluation_for_that_list(tmp_path: Path) -> None:
    """stop: true on a fired rule leaves later rules unevaluated (and traced as such)."""
    rules = rules_from(
        tmp_path,
        """
rules:
  - {name: stopper, match: "B*", set: {paused: true}, stop: true}
  - {name: later, set: {weight: 99}}
""",
    )
    result = run(rules, item("B"), item("C"))
    b = result.lists["B"]
    assert (b.fired, b.paused, b.weight) == (("stopper",), True, 10)
    assert b.trace[0].stopped_here
    assert b.trace[1].note.startswith("Not evaluated")
    assert result.lists["C"].fired == ("later",)


def test_for_requires_condition_to_hold_continuously(tmp_path: Path) -> None:
    """for: 15m fires only after 15 minutes of holding; a false cycle resets the timer."""
    rules = rules_from(
        tmp_path, "rules:\n  - {name: r, when: not can_reserve, for: 15m, set: {paused: true}}\n"
    )
    closed = item(can_reserve_state="closed")
    mem = memory()

    def step(snapshot: ListSnapshot, minutes: int) -> Any:
        nonlocal mem
        evaluated = run(rules, snapshot, mem={"A": mem}, now=T0 + timedelta(minutes=minutes))
        result = evaluated.lists["A"]
        mem = replace(mem, rules=dict(result.rule_memory))
        return result

    first = step(closed, 0)
    assert first.fired == ()
    assert first.trace[0].pending_for == timedelta(minutes=15)
    assert step(closed, 10).trace[0].pending_for == timedelta(minutes=5)
    assert step(item(), 12).trace[0].pending_for is None  # interrupted: timer reset
    assert step(closed, 14).fired == ()
    assert step(closed, 28).fired == ()
    assert step(closed, 29).fired == ("r",)


def test_cooldown_keeps_previous_state(tmp_path: Path) -> None:
    """cooldown: a rule cannot flip in or out of effect more often than the cooldown."""
    rules = rules_from(
        tmp_path, "rules:\n  - {name: r, when: unpulled > 50, cooldown: 30m, set: {weight: 40}}\n"
    )
    mem = memory()

    def step(unpulled: int, minutes: int) -> Any:
        nonlocal mem
        snapshot = item(pulled=100 - unpulled)
        evaluated = run(rules, snapshot, mem={"A": mem}, now=T0 + timedelta(minutes=minutes))
        result = evaluated.lists["A"]
        mem = replace(mem, rules=dict(result.rule_memory))
        return result

    assert step(60, 0).weight == 40  # comes into effect
    held = step(10, 10)  # condition false, but flipped 10 min ago
    assert (held.weight, held.fired) == (40, ("r",))
    assert held.trace[0].cooldown_left == timedelta(minutes=20)
    assert "cooldown" in held.trace[0].note
    assert step(10, 30).weight == 10  # 30 min later it may go out of effect
    kept_out = step(60, 40)  # and cannot come back before another 30 min
    assert (kept_out.weight, kept_out.fired) == (10, ())
    assert step(60, 60).weight == 40


def test_rule_in_effect_keeps_its_memory_until_its_condition_fails(tmp_path: Path) -> None:
    """A rule in effect whose condition still holds fires again with the same memory
    object; an evaluation error takes it out of effect and is traced."""
    rules = rules_from(
        tmp_path,
        "rules:\n  - {name: r, when: 'unpulled / pulled > 1', for: 5m, set: {paused: true}}\n",
    )
    mem = memory()

    def step(pulled: int, minutes: int) -> Any:
        nonlocal mem
        evaluated = run(
            rules, item(pulled=pulled), mem={"A": mem}, now=T0 + timedelta(minutes=minutes)
        )
        result = evaluated.lists["A"]
        mem = replace(mem, rules=dict(result.rule_memory))
        return result

    assert step(10, 0).fired == ()  # for: 5m starts
    came = step(10, 5)
    assert (came.fired, came.paused) == (("r",), True)
    in_effect = mem.rules["r"]
    for minute in (6, 7, 30):
        again = step(10, minute)
        assert (again.fired, again.paused) == (("r",), True)
        assert again.rule_memory["r"] is in_effect
        assert dict(again.trace[0].effect) == {"paused": True}
        assert again.trace[0].note == "Fired: paused → True."
    broken = step(0, 31)  # unpulled / 0
    assert (broken.fired, broken.paused) == ((), False)
    assert broken.trace[0].error is not None
    assert "division by zero" in broken.trace[0].error
    assert broken.rule_memory["r"].active is False


def test_rules_reading_null_facts_name_exactly_the_null_facts(tmp_path: Path) -> None:
    """Lists missing the same facts get equal traces naming exactly the null facts read."""
    rules = rules_from(
        tmp_path,
        "rules:\n  - {name: r, when: 'hours_to_deadline < 5 or eta_hours > 2', set: {weight: 5}}\n",
    )
    result = run(rules, item("A"), item("B", notes="deadline: 2024-04-30"))
    a, b = result.lists["A"].trace[0], result.lists["B"].trace[0]
    assert a.null_facts == ("eta_hours", "hours_to_deadline")
    assert b.null_facts == ("eta_hours",)
    assert (a.fired, b.fired, a.condition, b.condition) == (False, False, None, None)


def test_trace_covers_every_rule_with_values(tmp_path: Path) -> None:
    """Every rule appears in the trace with its file, line and the facts it read."""
    rules = rules_from(
        tmp_path,
        "rules:\n  - {name: a, when: unpulled > 1, set: {weight: 2}}\n"
        "  - {name: b, match: 'Z*', set: {weight: 3}}\n",
    )
    trace = run(rules).lists["A"].trace
    assert [(t.rule, t.line, t.matched, t.fired) for t in trace] == [
        ("a", 2, True, True),
        ("b", 3, False, False),
    ]
    assert trace[0].values == {"unpulled": 60}
    assert trace[0].effect == {"weight": 2.0}


def test_standby_flag_and_missing_memory(tmp_path: Path) -> None:
    """Standby comes from metadata; a list without memory starts from its QM values."""
    rules = rules_from(tmp_path, "lists:\n  - {match: R, standby: true}\nrules: []\n")
    result = run(rules, item("R", weight=4, list_state="paused"), mem={})
    evaluated = result.lists["R"]
    assert evaluated.standby
    assert (evaluated.baseline_weight, evaluated.baseline_paused) == (4, True)
    assert result.facts["R"]["standby"] is True


def test_shipped_pacing_rule_prefers_earliest_deadline() -> None:
    """With the shipped rules, the earliest deadline gets full weight, no-deadline yields."""
    root = Path(__file__).resolve().parent.parent / "rules"
    rules = load_rules(sorted(root.glob("*.yaml"))).for_campaign("Sales")
    result = run(
        rules,
        item("Soon", notes="deadline: 2024-04-29 18:00"),
        item("Later", notes="deadline: 2024-05-03"),
        item("Backlog", weight=40),
    )
    weights = {name: e.weight for name, e in result.lists.items()}
    assert weights["Soon"] == 100
    assert weights["Backlog"] == 1
    assert 1 <= weights["Later"] <= 25


def test_rules_without_timers_keep_no_memory(tmp_path: Path) -> None:
    """A rule without ``for:``/``cooldown:`` leaves no rule memory, fired or not, and
    memory an older version kept for it is dropped; its outcome ignores that memory."""
    from mixer.engine.memory import RuleMemory

    rules = rules_from(
        tmp_path,
        "rules:\n  - {name: up, when: unpulled > 0, set: {weight: 5}}\n"
        "  - {name: down, when: unpulled < 0, set: {weight: 7}}\n",
    )
    stale = {"up": RuleMemory(T0, False, T0), "down": RuleMemory(T0, True, T0)}
    result = run(rules, mem={"A": memory(rules=stale)}).lists["A"]
    assert (result.fired, result.weight) == (("up",), 5)
    assert dict(result.rule_memory) == {}


def test_timed_rules_keep_memory_only_while_it_holds_something(tmp_path: Path) -> None:
    """A ``for:`` rule keeps memory while its timer runs or it is in effect, and none once
    it is idle again (idle is where a rule never seen starts)."""
    rules = rules_from(
        tmp_path, "rules:\n  - {name: r, when: unpulled > 0, for: 5m, set: {weight: 5}}\n"
    )
    mem = memory()
    holding = run(rules, mem={"A": mem}).lists["A"]
    assert holding.rule_memory["r"].holding_since == T0
    idle = run(rules, item(pulled=100), mem={"A": replace(mem, rules=dict(holding.rule_memory))})
    assert dict(idle.lists["A"].rule_memory) == {}


def test_rule_in_effect_waits_again_when_a_reload_lengthens_its_for(tmp_path: Path) -> None:
    """A rule in effect whose ``for:`` grew (a reloaded file) leaves effect until its
    condition has held for the new duration, as a rule coming into effect would."""
    short = rules_from(
        tmp_path, "rules:\n  - {name: r, when: unpulled > 0, for: 5m, set: {weight: 5}}\n"
    )
    mem = memory()
    for minute in (0, 5):
        result = run(short, mem={"A": mem}, now=T0 + timedelta(minutes=minute)).lists["A"]
        mem = replace(mem, rules=dict(result.rule_memory))
    assert result.fired == ("r",)
    longer = rules_from(
        tmp_path, "rules:\n  - {name: r, when: unpulled > 0, for: 30m, set: {weight: 5}}\n"
    )
    waiting = run(longer, mem={"A": mem}, now=T0 + timedelta(minutes=10)).lists["A"]
    assert waiting.fired == ()
    assert waiting.trace[0].pending_for == timedelta(minutes=20)
    later = run(longer, mem={"A": mem}, now=T0 + timedelta(minutes=30)).lists["A"]
    assert later.fired == ("r",)
