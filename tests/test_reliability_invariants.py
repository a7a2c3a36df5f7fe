"""Property-based invariants of the pure core ``plan_campaign``: random snapshots, random
valid rule files and random memory never make it write an unknown list, leave bounds,
resume a human's pause, flap, exceed its rate limits or strand a campaign.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixer.engine.facts import EngineSettings
from mixer.engine.memory import ListMemory
from mixer.engine.rules import CampaignRules
from mixer.guardrails import Limits, max_step_for
from mixer.plan import CampaignPlan, plan_campaign
from mixer.rule_loading import load_rules
from mixer.snapshot import CampaignSnapshot, ListSnapshot

ZURICH = ZoneInfo("Europe/Zurich")
ENGINE = EngineSettings(timezone=ZURICH)
START = datetime(2024, 4, 29, 6, 0, tzinfo=UTC)  # a Monday, 08:00 in Zurich
NAMES = ("Recalls", "Reserve", "Leads", "B2B Leads", "Promo", "Callbacks")
PROFILE = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Conditions over facts a write does not change (so re-planning after a write sees the
# same facts), and over facts it does, which the guardrails must keep safe anyway.
STABLE_CONDITIONS = (
    "unpulled > {n}",
    "unpulled == 0",
    "not can_reserve and unpulled == 0",
    "can_reserve",
    "progress > 0.{d}",
    "hour >= {h}",
    "hour < {h} or weekday >= 5",
    "added > {n}",
    "standby and campaign_reservable_lists == 0",
    "priority > {d}",
    "matches(list, 'R*')",
)
WEIGHTS = (
    "base_weight * {k}",
    "base_weight + {n}",
    "base_weight - {n}",
    "{n}",
    "max(base_weight / {k}, 1)",
    "clamp(base_weight * {k}, 1, 40)",
    "base_weight * 1.5",
    "-{n}",
)


@st.composite
def list_snapshots(draw: st.DrawFn) -> CampaignSnapshot:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True))
    lists = []
    for name in names:
        added = draw(st.integers(0, 200))
        pulled = draw(st.integers(0, added))
        completed = draw(st.integers(0, pulled))
        pull = draw(st.none() | st.integers(1, 600))
        lists.append(
            ListSnapshot(
                name=name,
                notes=draw(st.sampled_from(["", "deadline: 2024-04-30", "x"])),
                weight=draw(st.integers(0, 150)),
                list_state=draw(st.sampled_from(["open", "paused", "Paused", "weird"])).lower(),
                dialer_state=draw(st.sampled_from(["open", "completed", "other"])),
                can_reserve_state=draw(st.sampled_from(["open", "closed"])),
                added=added,
                completed=completed,
                pulled=pulled,
                last_pull=None if pull is None else START - timedelta(minutes=pull),
            )
        )
    return CampaignSnapshot("Sales", tuple(lists), START)


@st.composite
def rule_files(draw: st.DrawFn) -> str:
    """A valid rules file: `lists:` metadata and 0-5 rules with match/for/cooldown/stop."""
    fill = {
        "n": draw(st.integers(0, 60)),
        "d": draw(st.integers(1, 9)),
        "h": draw(st.integers(0, 23)),
        "k": draw(st.integers(2, 4)),
    }
    metadata = []
    for name in draw(st.lists(st.sampled_from(NAMES), max_size=3, unique=True)):
        entry: dict[str, Any] = {"match": name}
        if draw(st.booleans()):
            entry["standby"] = True
        if draw(st.booleans()):
            entry["priority"] = draw(st.integers(1, 9))
        if draw(st.booleans()):
            entry["tags"] = ["recall"]
        metadata.append(entry)
    rules = []
    for index in range(draw(st.integers(0, 5))):
        rule: dict[str, Any] = {
            "name": f"r{index}",
            "when": draw(st.sampled_from(STABLE_CONDITIONS)).format(**fill),
        }
        action = draw(st.sampled_from(["pause", "resume", "weight", "both"]))
        if action == "pause":
            rule["set"] = {"paused": True}
        elif action == "resume":
            rule["set"] = {"paused": False}
        else:
            rule["set"] = {"weight": draw(st.sampled_from(WEIGHTS)).format(**fill)}
            if action == "both":
                rule["set"]["paused"] = draw(st.booleans())
        match = draw(st.sampled_from([None, "R*", "*Leads", {"tags": ["recall"]}]))
        if match is not None:
            rule["match"] = match
        if draw(st.booleans()):
            rule["for"] = draw(st.sampled_from(["0m", "5m", "15m"]))
        if draw(st.booleans()):
            rule["cooldown"] = draw(st.sampled_from(["1m", "30m"]))
        if draw(st.integers(0, 4)) == 0:
            rule["stop"] = True
        rules.append(rule)
    return yaml.safe_dump({"lists": metadata, "rules": rules}, sort_keys=False)


def compile_rules(text: str) -> CampaignRules:
    return load_rules([], extra_texts=[("generated.yaml", text)]).for_campaign("Sales")


@st.composite
def memories(draw: st.DrawFn, snapshot: CampaignSnapshot, now: datetime) -> dict[str, ListMemory]:
    """Memory for some of the lists: written or not, held or not, changes counted today."""
    result = {}
    today = now.astimezone(ZURICH).date()
    for item in snapshot.lists:
        if not draw(st.booleans()):
            continue
        written = draw(st.sampled_from(["matches", "none", "other"]))
        if written == "matches":
            last_weight, last_paused = item.weight, item.paused
        elif written == "none":
            last_weight, last_paused = None, None
        else:
            last_weight, last_paused = draw(st.integers(1, 100)), draw(st.booleans())
        hold = draw(st.none() | st.integers(-90, 90))
        result[item.name] = ListMemory(
            base_weight=draw(st.integers(0, 120)),
            human_paused=draw(st.booleans()),
            first_seen=now - timedelta(days=1),
            last_written_weight=last_weight,
            last_written_paused=last_paused,
            paused_by_mixer=draw(st.booleans()),
            last_change_at=draw(st.none() | st.just(now - timedelta(minutes=30))),
            manual_hold_until=None if hold is None else now + timedelta(minutes=hold),
            changes_day=draw(st.sampled_from([None, today, date(2024, 4, 1)])),
            changes_today=draw(st.integers(0, 5)),
        )
    return result


@st.composite
def limit_sets(draw: st.DrawFn, *, stepped: bool = True) -> Limits:
    low = draw(st.integers(1, 5))
    return Limits(
        min_weight=low,
        max_weight=draw(st.integers(max(low, 20), 100)),
        manual_hold=timedelta(hours=1),
        max_step=draw(st.none() | st.integers(1, 20)) if stepped else None,
        max_step_percent=draw(st.none() | st.floats(5, 50)) if stepped else None,
        max_changes_per_day=draw(st.none() | st.integers(1, 4)),
    )


@st.composite
def cases(draw: st.DrawFn, *, stepped: bool = True) -> tuple[Any, ...]:
    snapshot = draw(list_snapshots())
    now = START + timedelta(minutes=draw(st.integers(0, 2 * 24 * 60)))
    snapshot = replace(snapshot, read_at=now)
    rules = compile_rules(draw(rule_files()))
    memory = draw(memories(snapshot, now))
    limits = draw(limit_sets(stepped=stepped))
    return snapshot, rules, memory, now, limits


def plan(case: tuple[Any, ...]) -> CampaignPlan:
    snapshot, rules, memory, now, limits = case
    return plan_campaign(rules, snapshot, memory, {}, now, ENGINE, limits)


def applied(snapshot: CampaignSnapshot, result: CampaignPlan) -> CampaignSnapshot:
    """The snapshot QM would show after taking every update of the plan."""
    updates = {u.name: u for u in result.updates}
    lists = []
    for item in snapshot.lists:
        update = updates.get(item.name)
        if update is not None:
            state = "paused" if update.paused else "open"
            item = replace(item, weight=update.weight, list_state=state)
        lists.append(item)
    return replace(snapshot, lists=tuple(lists))


def reservable(snapshot: CampaignSnapshot) -> list[str]:
    return [i.name for i in snapshot.lists if not i.paused and i.can_reserve]


@PROFILE
@given(cases())
def test_updates_only_for_lists_read(case: tuple[Any, ...]) -> None:
    """Every update and decision names a list of the snapshot, byte for byte."""
    result = plan(case)
    names = case[0].names
    assert {u.name for u in result.updates} <= names
    assert {d.list for d in result.decisions} <= names


@PROFILE
@given(cases())
def test_written_weights_are_integers_within_bounds(case: tuple[Any, ...]) -> None:
    """Every weight sent is an int in [min_weight, max_weight], whatever the rules computed."""
    limits: Limits = case[4]
    for update in plan(case).updates:
        assert type(update.weight) is int
        assert limits.min_weight <= update.weight <= limits.max_weight, update


@PROFILE
@given(cases())
def test_human_pauses_are_never_resumed(case: tuple[Any, ...]) -> None:
    """A paused list is resumed only if the mixer paused it or it is a standby list."""
    snapshot: CampaignSnapshot = case[0]
    result = plan(case)
    for update in result.updates:
        before = snapshot.get(update.name)
        assert before is not None
        if before.paused and not update.paused:
            mem = result.memory[update.name]
            assert mem.paused_by_mixer or result.evaluation.lists[update.name].standby, update


@PROFILE
@given(cases(stepped=False))
def test_planning_again_after_applying_changes_nothing(case: tuple[Any, ...]) -> None:
    """Idempotence: apply the updates, keep the memory after them, re-plan at the same now."""
    snapshot, rules, _memory, now, limits = case
    first = plan(case)
    after = applied(snapshot, first)
    second = plan_campaign(
        rules, after, first.memory_after(first.update_names), {}, now, ENGINE, limits
    )
    assert second.updates == ()
    assert second.overrides == ()


@PROFILE
@given(cases())
def test_rate_limits_hold(case: tuple[Any, ...]) -> None:
    """max_step bounds each weight move; a list at max_changes_per_day today is not changed."""
    _snapshot, _rules, _memory, now, limits = case
    result = plan(case)
    today = now.astimezone(ZURICH).date()
    for d in result.decisions:
        step = max_step_for(d.before_weight, limits)
        in_bounds = limits.min_weight <= d.before_weight <= limits.max_weight
        if step is not None and in_bounds:  # from outside the bounds, the bounds win
            assert abs(d.after_weight - d.before_weight) <= step, d
        mem = result.memory[d.list]
        if limits.max_changes_per_day and mem.changes_day == today:
            assert mem.changes_today < limits.max_changes_per_day, d


@PROFILE
@given(cases())
def test_a_campaign_keeps_a_reservable_list(case: tuple[Any, ...]) -> None:
    """A plan never leaves no unpaused reservable list when there was one before."""
    snapshot: CampaignSnapshot = case[0]
    result = plan(case)
    if reservable(snapshot):
        assert reservable(applied(snapshot, result))
