"""Facts: every fact of SPEC §3, its null conditions, time zones and deadline tags."""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixer.engine.facts import (
    FACT_TYPES,
    NEVER_NULL,
    EngineSettings,
    compute_facts,
    parse_deadline_tag,
)
from mixer.engine.memory import HistorySample, ListMemory
from mixer.engine.metadata import ListMetadata
from mixer.snapshot import CampaignSnapshot, ListSnapshot
from tests.snapshots import item

ZURICH = ZoneInfo("Europe/Zurich")
SETTINGS = EngineSettings(timezone=ZURICH)
NOW = datetime(2024, 4, 29, 8, 0, tzinfo=UTC)  # Monday 10:00 in Zurich (CEST)


def facts_of(
    *lists: ListSnapshot,
    memory: dict[str, ListMemory] | None = None,
    history: dict[str, list[HistorySample]] | None = None,
    metadata: dict[str, ListMetadata] | None = None,
    now: datetime = NOW,
    settings: EngineSettings = SETTINGS,
) -> dict[str, dict[str, object]]:
    snapshot = CampaignSnapshot("Sales", lists or (item(),), now)
    return compute_facts(snapshot, memory or {}, history or {}, metadata or {}, now, settings)


def test_every_fact_in_the_schema_is_computed() -> None:
    """compute_facts yields exactly the facts FACT_TYPES declares (no more, no fewer)."""
    assert set(facts_of()["A"]) == set(FACT_TYPES)


@pytest.mark.parametrize(
    ("fact", "expected"),
    [
        ("campaign", "Sales"),
        ("list", "A"),
        ("weight", 10),
        ("paused", False),
        ("can_reserve", True),
        ("completed_state", False),
        ("remaining", 70),
        ("unpulled", 60),
        ("in_flight", 10),
        ("progress", 0.3),
        ("idle_minutes", None),
        ("last_pull", None),
        ("pull_rate_per_hour", None),
        ("complete_rate_per_hour", None),
        ("eta_hours", None),
        ("deadline", None),
        ("has_deadline", False),
        ("hours_to_deadline", None),
        ("required_rate_per_hour", None),
        ("behind_schedule", None),
        ("deadline_rank", None),
        ("base_weight", 10),
        ("paused_by_mixer", False),
        ("minutes_since_change", None),
        ("manual_hold", False),
        ("hour", 10),
        ("minute", 0),
        ("weekday", 0),
        ("date", date(2024, 4, 29)),
        ("tags", ()),
        ("priority", None),
        ("standby", False),
        ("campaign_open_lists", 1),
        ("campaign_reservable_lists", 1),
        ("campaign_unpulled", 60),
        ("campaign_pull_rate_per_hour", None),
        ("share_of_pulls", None),
    ],
)
def test_fact_values_and_nulls_for_a_plain_list(fact: str, expected: object) -> None:
    """A list never pulled, without deadline or history: values, and nulls where unknown."""
    assert facts_of()["A"][fact] == expected


def test_unpulled_never_negative_and_progress_null_for_empty_list() -> None:
    """unpulled is clamped at 0; progress of a list with nothing added is null."""
    facts = facts_of(item("A", added=0, pulled=5, completed=0))["A"]
    assert facts["unpulled"] == 0
    assert facts["progress"] is None


def test_idle_minutes_from_last_pull_in_qm_time() -> None:
    """idle_minutes counts from lastPull (QM local time) to now."""
    last = datetime(2024, 4, 29, 9, 30, tzinfo=ZURICH)
    assert facts_of(item(last_pull=last))["A"]["idle_minutes"] == pytest.approx(30.0)


def samples(*points: tuple[int, int, int]) -> list[HistorySample]:
    """(minutes before NOW, pulled, completed) → samples."""
    return [
        HistorySample(ts=NOW - timedelta(minutes=m), pulled=p, completed=c, added=100)
        for m, p, c in points
    ]


@pytest.mark.parametrize(
    ("history", "pull_rate", "complete_rate"),
    [
        ([], None, None),
        ([(10, 30, 25)], None, None),  # spans 10 min < min_history 15 min
        ([(15, 30, 25)], 40.0, 20.0),  # 10 pulled, 5 completed in 15 min
        ([(30, 20, 10)], 40.0, 40.0),
        ([(90, 0, 0), (30, 20, 10)], 40.0, 40.0),  # the 90-min sample is out of the window
        # oldest first, as the store gives them: the first in the window and the snapshot
        ([(90, 0, 0), (45, 10, 0), (30, 20, 10), (-5, 99, 99)], 40.0, 40.0),
        ([(30, 20, 10), (0, 30, 20)], 20.0, 20.0),  # a sample at now stands for the snapshot
    ],
)
def test_rates_need_min_history_within_the_window(
    history: list[tuple[int, int, int]], pull_rate: float | None, complete_rate: float | None
) -> None:
    """Rates are null until samples span min_history; only the window counts."""
    facts = facts_of(item(), history={"A": samples(*history)})["A"]
    assert facts["pull_rate_per_hour"] == pull_rate
    assert facts["complete_rate_per_hour"] == complete_rate


def test_eta_null_when_rate_is_zero_else_unpulled_over_rate() -> None:
    """eta_hours is unpulled / pull rate, and null when nothing is being pulled."""
    still = facts_of(item(), history={"A": samples((30, 40, 30))})["A"]
    assert still["pull_rate_per_hour"] == 0.0
    assert still["eta_hours"] is None
    moving = facts_of(item(), history={"A": samples((30, 20, 30))})["A"]
    assert moving["eta_hours"] == pytest.approx(60 / 40)


@pytest.mark.parametrize(
    ("notes", "expected"),
    [
        ("deadline: 2024-04-30 18:00", datetime(2024, 4, 30, 18, 0, tzinfo=ZURICH)),
        ("Call them. Deadline=2024-04-30T18:30!", datetime(2024, 4, 30, 18, 30, tzinfo=ZURICH)),
        ("deadline: 2024-04-30", datetime(2024, 5, 1, 0, 0, tzinfo=ZURICH)),  # end of day
        ("deadline: 2024-04-30 18:00:30", datetime(2024, 4, 30, 18, 0, 30, tzinfo=ZURICH)),
        ("deadline: 2024-02-30", None),  # not a date
        ("deadline: 2024-04-30 25:00", None),
        ("no tag here", None),
        ("", None),
    ],
)
def test_deadline_tag_parsing(notes: str, expected: datetime | None) -> None:
    """The notes tag: date-only is the end of that day; impossible dates are ignored."""
    assert parse_deadline_tag(notes, ZURICH) == expected


def test_metadata_deadline_wins_over_notes_tag() -> None:
    """A deadline from `lists:` metadata overrides the one in listNotes."""
    meta = ListMetadata(deadline=datetime(2024, 4, 29, 20, 0))
    facts = facts_of(item(notes="deadline: 2024-05-10"), metadata={"A": meta})["A"]
    assert facts["deadline"] == datetime(2024, 4, 29, 20, 0, tzinfo=ZURICH)
    assert facts["hours_to_deadline"] == pytest.approx(10.0)


def test_deadline_facts_pacing() -> None:
    """required rate = unpulled / hours left; behind when the pull rate is lower."""
    lst = item(notes="deadline: 2024-04-29 16:00", pulled=40)
    facts = facts_of(lst, history={"A": samples((30, 35, 30))})["A"]
    assert facts["hours_to_deadline"] == pytest.approx(6.0)
    assert facts["required_rate_per_hour"] == pytest.approx(10.0)
    assert facts["pull_rate_per_hour"] == pytest.approx(10.0)
    assert facts["behind_schedule"] is False
    slow = facts_of(lst, history={"A": samples((30, 38, 30))})["A"]
    assert slow["behind_schedule"] is True


def test_passed_deadline_with_numbers_left_is_overdue_without_required_rate() -> None:
    """Past the deadline with numbers left: overdue, hours negative, no required rate."""
    facts = facts_of(item(notes="deadline: 2024-04-29 09:00"))["A"]
    assert facts["hours_to_deadline"] == pytest.approx(-1.0)
    assert facts["overdue"] is True
    assert facts["required_rate_per_hour"] is None
    assert facts["behind_schedule"] is True


def test_a_list_done_before_its_passed_deadline_is_not_overdue() -> None:
    """Every number final: a passed deadline does not make the list overdue."""
    done = item(notes="deadline: 2024-04-29 09:00", pulled=100, completed=100)
    facts = facts_of(done)["A"]
    assert facts["overdue"] is False
    assert facts["required_rate_per_hour"] == 0


def test_deadline_rank_counts_only_lists_that_can_still_make_their_deadline() -> None:
    """An overdue list has no rank; the earliest deadline still ahead ranks 1."""
    facts = facts_of(
        item("Late", notes="deadline: 2024-04-29 09:00"),
        item("Next", notes="deadline: 2024-04-29 12:00"),
        item("Later", notes="deadline: 2024-04-29 15:00"),
    )
    assert facts["Late"]["deadline_rank"] is None
    assert facts["Next"]["deadline_rank"] == 1
    assert facts["Later"]["deadline_rank"] == 2
    assert facts["Next"]["campaign_deadline_lists"] == 2
    assert facts["Next"]["campaign_overdue_lists"] == 1
    assert facts["Next"]["campaign_required_rate_per_hour"] == pytest.approx(60 / 2 + 60 / 5)


def test_campaign_weight_aggregates_exclude_the_list_itself_and_paused_lists() -> None:
    """max/min/total weight and max base weight read the *other* unpaused lists."""
    facts = facts_of(
        item("VIP", weight=30),
        item("B", weight=10),
        item("C", weight=5),
        item("Parked", weight=90, list_state="paused"),
        memory={"B": ListMemory(base_weight=40, human_paused=False, first_seen=NOW)},
    )
    vip, b = facts["VIP"], facts["B"]
    assert vip["campaign_max_weight"] == 10
    assert vip["campaign_min_weight"] == 5
    assert vip["campaign_total_weight"] == 15
    assert vip["campaign_max_base_weight"] == 40
    assert b["campaign_max_weight"] == 30
    assert b["campaign_max_base_weight"] == 30
    assert facts["Parked"]["campaign_total_weight"] == 45


def test_campaign_weight_aggregates_are_null_without_other_lists() -> None:
    """A list alone in its campaign has no others to compare with: null, and total 0."""
    facts = facts_of(item("Only"))["Only"]
    assert facts["campaign_max_weight"] is None
    assert facts["campaign_max_base_weight"] is None
    assert facts["campaign_total_weight"] == 0


def test_fresh_numbers_and_minutes_since_refill_follow_added_in_history() -> None:
    """A rise of nNumbersAdded 20 minutes ago: refill 20 min ago, its numbers fresh."""
    history = [
        HistorySample(ts=NOW - timedelta(minutes=40), pulled=40, completed=30, added=70),
        HistorySample(ts=NOW - timedelta(minutes=20), pulled=40, completed=30, added=100),
        HistorySample(ts=NOW - timedelta(minutes=10), pulled=40, completed=30, added=100),
    ]
    facts = facts_of(item(), history={"A": history})["A"]
    assert facts["minutes_since_refill"] == pytest.approx(20)
    assert facts["fresh_numbers"] == 30


def test_a_refill_seen_first_in_this_cycle_is_zero_minutes_old() -> None:
    """The snapshot itself shows the rise: the refill is now; without history, null."""
    history = [HistorySample(ts=NOW - timedelta(minutes=5), pulled=40, completed=30, added=90)]
    facts = facts_of(item(), history={"A": history})["A"]
    assert facts["minutes_since_refill"] == 0
    assert facts["fresh_numbers"] == 10
    alone = facts_of(item())["A"]
    assert alone["minutes_since_refill"] is None
    assert alone["fresh_numbers"] == 0


def test_dst_day_hours_to_deadline_counts_real_hours() -> None:
    """Across the spring-forward night, hours_to_deadline counts the 23-hour day right."""
    now = datetime(2024, 3, 30, 23, 0, tzinfo=UTC)  # Sunday 00:00 CET
    facts = facts_of(item(notes="deadline: 2024-03-31"), now=now)["A"]
    assert facts["hours_to_deadline"] == pytest.approx(23.0)
    assert facts["hour"] == 0
    assert facts["weekday"] == 6


def test_clock_facts_follow_the_qm_time_zone() -> None:
    """hour/weekday/date are local to the QM time zone, not UTC."""
    now = datetime(2024, 4, 28, 22, 30, tzinfo=UTC)  # Monday 00:30 in Zurich
    facts = facts_of(now=now)["A"]
    assert (facts["hour"], facts["weekday"], facts["date"]) == (0, 0, date(2024, 4, 29))
    tokyo = facts_of(now=now, settings=EngineSettings(timezone=ZoneInfo("Asia/Tokyo")))["A"]
    assert tokyo["hour"] == 7


def test_campaign_facts_and_standby_excluded_from_reservable() -> None:
    """campaign_reservable_lists counts unpaused reservable non-standby lists only."""
    lists = (
        item("A"),
        item("B", list_state="paused"),
        item("C", can_reserve_state="closed"),
        item("R"),  # standby, unpaused: still not counted
    )
    facts = facts_of(*lists, metadata={"R": ListMetadata(standby=True)})
    assert facts["A"]["campaign_reservable_lists"] == 1  # A only
    assert facts["A"]["campaign_open_lists"] == 3
    assert facts["A"]["campaign_unpulled"] == 240


def test_share_of_pulls_and_campaign_rate() -> None:
    """share_of_pulls is the list's part of the campaign pull rate."""
    history = {
        "A": samples((30, 10, 0)),
        "B": [HistorySample(NOW - timedelta(minutes=30), 10, 0, 100)],
    }
    facts = facts_of(item("A", pulled=40), item("B", pulled=20), history=history)
    assert facts["A"]["campaign_pull_rate_per_hour"] == pytest.approx(80.0)
    assert facts["A"]["share_of_pulls"] == pytest.approx(0.75)
    assert facts["B"]["share_of_pulls"] == pytest.approx(0.25)


def test_deadline_rank_orders_unfinished_lists_by_deadline() -> None:
    """Rank 1 is the earliest deadline among lists with numbers not yet final, not paused
    by a human; ties share a rank and the next deadline is the next rank (dense)."""
    lists = (
        item("Late", notes="deadline: 2024-05-03"),
        item("Soon", notes="deadline: 2024-04-29 18:00"),
        item("Same", notes="deadline: 2024-04-29 18:00"),
        item(
            "Done",
            notes="deadline: 2024-04-29 09:00",
            pulled=100,
            completed=100,
            dialer_state="completed",
        ),
        item("Human", notes="deadline: 2024-04-29 10:00", list_state="paused"),
        item("None"),
    )
    facts = facts_of(*lists)
    ranks = {name: f["deadline_rank"] for name, f in facts.items()}
    assert ranks == {
        "Late": 2,
        "Soon": 1,
        "Same": 1,
        "Done": None,
        "Human": None,
        "None": None,
    }
    assert facts["None"]["campaign_deadline_lists"] == 3


@pytest.mark.parametrize(
    "blink",
    [
        {"can_reserve_state": "closed"},  # the rest wait for their reschedule time
        {"pulled": 100, "can_reserve_state": "closed"},  # the last numbers are in calls
    ],
)
def test_deadline_rank_does_not_blink_with_reservability(blink: dict[str, Any]) -> None:
    """A list whose last numbers are in calls or rescheduled keeps its rank, so pacing
    rules do not flap minute by minute."""
    facts = facts_of(
        item("Urgent", notes="deadline: 2024-04-29 11:00", **blink),
        item("Later", notes="deadline: 2024-05-03"),
    )
    assert facts["Urgent"]["deadline_rank"] == 1
    assert facts["Later"]["deadline_rank"] == 2


def test_list_paused_by_mixer_still_competes_for_rank() -> None:
    """A list the mixer paused keeps its deadline rank (the mixer may resume it)."""
    mem = ListMemory(base_weight=10, human_paused=False, first_seen=NOW, paused_by_mixer=True)
    lst = item("A", notes="deadline: 2024-04-30", list_state="paused")
    assert facts_of(lst, memory={"A": mem})["A"]["deadline_rank"] == 1


def test_memory_facts() -> None:
    """base_weight, paused_by_mixer, minutes_since_change and manual_hold come from memory."""
    mem = ListMemory(
        base_weight=7,
        human_paused=False,
        first_seen=NOW,
        paused_by_mixer=True,
        last_change_at=NOW - timedelta(minutes=12),
        manual_hold_until=NOW + timedelta(minutes=5),
    )
    facts = facts_of(memory={"A": mem})["A"]
    assert facts["base_weight"] == 7
    assert facts["paused_by_mixer"] is True
    assert facts["minutes_since_change"] == pytest.approx(12.0)
    assert facts["manual_hold"] is True


def test_metadata_facts_and_extras() -> None:
    """tags, priority, standby and extra scalar fields become facts."""
    meta = ListMetadata(tags=("recall",), priority=2, standby=True, extra={"region": "north"})
    facts = facts_of(metadata={"A": meta})["A"]
    assert facts["tags"] == ("recall",)
    assert (facts["priority"], facts["standby"], facts["region"]) == (2, True, "north")


def test_campaign_weight_aggregates_match_a_pass_over_the_other_lists() -> None:
    """Seeded random campaigns: each list's aggregates equal max/min/sum over the others."""
    rng = random.Random(15)
    for _ in range(300):
        weights = [rng.choice([1, 5, 10, 10, 100]) for _ in range(rng.randint(2, 6))]
        lists = [item(f"L{i}", weight=w) for i, w in enumerate(weights)]
        facts = facts_of(*lists)
        for index, weight in enumerate(weights):
            others = weights[:index] + weights[index + 1 :]
            got = facts[f"L{index}"]
            assert got["campaign_max_weight"] == max(others)
            assert got["campaign_min_weight"] == min(others)
            assert got["campaign_total_weight"] == sum(others)
            assert got["weight"] == weight


def test_the_facts_said_never_null_are_those_the_docs_say() -> None:
    """The engine skips the null check for NEVER_NULL facts: the set is exactly the facts
    docs/rules.md's table says are null "never"."""
    docs = (Path(__file__).parent.parent / "docs" / "rules.md").read_text(encoding="utf-8")
    never: set[str] = set()
    for row in re.findall(r"^\| (`[a-z_`, ]+`) \|.*\| ([^|]*) \|$", docs, re.MULTILINE):
        names = re.findall(r"`([a-z_]+)`", row[0])
        # "never", or "never (0 ...)"; not "never pulled" (null when never pulled)
        said_never = re.fullmatch(r"never( \(.*\))?", row[1].strip()) is not None
        if said_never and all(n in FACT_TYPES for n in names):
            never.update(names)
    assert never == set(NEVER_NULL)


@settings(max_examples=150, deadline=None)
@given(
    lists=st.lists(
        st.fixed_dictionaries(
            {
                "weight": st.integers(0, 200),
                "list_state": st.sampled_from(["open", "paused", "weird"]),
                "dialer_state": st.sampled_from(["open", "completed", "other"]),
                "can_reserve_state": st.sampled_from(["open", "closed", "x"]),
                "added": st.integers(0, 50),
                "pulled": st.integers(0, 50),
                "completed": st.integers(0, 50),
                "notes": st.sampled_from(
                    ["", "deadline: 2024-04-29 12:00", "deadline: 2024-04-28"]
                ),
                "pulled_ago": st.one_of(st.none(), st.integers(0, 600)),
                "remembered": st.booleans(),
                "history": st.lists(st.integers(0, 50), max_size=4),
            }
        ),
        min_size=1,
        max_size=5,
    ),
    minutes=st.integers(0, 60 * 24 * 3),
)
def test_facts_said_never_null_have_a_value_for_any_list(
    lists: list[dict[str, Any]], minutes: int
) -> None:
    """Random lists, with or without memory, history, deadlines or pulls: no NEVER_NULL
    fact is ever None (a null there would reach a rule's expression unchecked)."""
    now = NOW + timedelta(minutes=minutes)
    snapshots, memory, history = [], {}, {}
    for n, spec in enumerate(lists):
        name = f"L{n}"
        ago = spec["pulled_ago"]
        snapshots.append(
            item(
                name,
                weight=spec["weight"],
                list_state=spec["list_state"],
                dialer_state=spec["dialer_state"],
                can_reserve_state=spec["can_reserve_state"],
                added=spec["added"],
                pulled=spec["pulled"],
                completed=spec["completed"],
                notes=spec["notes"],
                last_pull=None if ago is None else now - timedelta(minutes=ago),
            )
        )
        if spec["remembered"]:
            memory[name] = ListMemory(5, False, now - timedelta(days=1))
        history[name] = [
            HistorySample(now - timedelta(minutes=10 * (k + 1)), v, v, spec["added"])
            for k, v in enumerate(spec["history"])
        ][::-1]
    facts = facts_of(*snapshots, memory=memory, history=history, now=now)
    for name, values in facts.items():
        nulls = sorted(f for f in NEVER_NULL if values.get(f) is None)
        assert not nulls, f"{name}: {nulls}"
