"""Facts: what rules can read about each list, computed once per list per cycle.

Pure: a snapshot, the mixer's memory, the counter history, the ``lists:`` metadata and
*now* go in; a flat ``fact name -> value`` mapping per list comes out. A fact that cannot
be known (no deadline, never pulled, not enough history) is ``None``; the evaluator
refuses to fire a rule that reads one, so rules never act on a guess.

Pacing facts all speak of *unpulled* numbers, the part the mixer steers: the weight
decides which list an agent pulls from next, not how fast a pulled number completes.
So ``required_rate_per_hour = unpulled / hours_to_deadline`` and ``behind_schedule`` is
``pull_rate_per_hour < required_rate_per_hour``; ``eta_hours`` is ``unpulled`` at the
current pull rate. docs/rules.md lists every fact with its unit and null condition.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from mixer.engine.expressions import ValueType
from mixer.engine.memory import HistorySample, ListMemory
from mixer.engine.metadata import ListMetadata
from mixer.snapshot import CampaignSnapshot, ListSnapshot

# Below this many hours a deadline is treated as this close, so the required rate of an
# overdue list stays finite (everything unpulled within a minute) instead of infinite.
MIN_HOURS_TO_DEADLINE = 1 / 60

_DEADLINE_TAG = re.compile(
    r"\bdeadline\s*[:=]\s*(\d{4}-\d{2}-\d{2})(?:[ T](\d{1,2}:\d{2}(?::\d{2})?))?",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """What the engine needs from the config: the QM time zone and the rate window."""

    timezone: ZoneInfo
    history_window: timedelta = timedelta(minutes=60)
    min_history: timedelta = timedelta(minutes=15)


N, B, S, L = ValueType.NUMBER, ValueType.BOOL, ValueType.STRING, ValueType.STRINGS
DT, D = ValueType.DATETIME, ValueType.DATE

FACT_TYPES: Mapping[str, ValueType] = {
    # From the API.
    "campaign": S,
    "list": S,
    "notes": S,
    "weight": N,
    "paused": B,
    "list_state": S,
    "dialer_state": S,
    "can_reserve": B,
    "completed_state": B,
    "added": N,
    "completed": N,
    "pulled": N,
    "last_pull": DT,
    # Derived from one snapshot.
    "remaining": N,
    "unpulled": N,
    "in_flight": N,
    "progress": N,
    "idle_minutes": N,
    # From the history of counters.
    "pull_rate_per_hour": N,
    "complete_rate_per_hour": N,
    "eta_hours": N,
    # Deadlines.
    "deadline": DT,
    "has_deadline": B,
    "hours_to_deadline": N,
    "required_rate_per_hour": N,
    "behind_schedule": B,
    "deadline_rank": N,
    # The campaign as a whole.
    "campaign_open_lists": N,
    "campaign_reservable_lists": N,
    "campaign_deadline_lists": N,
    "campaign_unpulled": N,
    "campaign_pull_rate_per_hour": N,
    "campaign_required_rate_per_hour": N,
    "share_of_pulls": N,
    # The mixer's memory.
    "base_weight": N,
    "paused_by_mixer": B,
    "minutes_since_change": N,
    "manual_hold": B,
    # The clock, in the QM time zone.
    "now": DT,
    "hour": N,
    "minute": N,
    "weekday": N,
    "date": D,
    # Metadata from `lists:`.
    "tags": L,
    "priority": N,
    "standby": B,
}


@lru_cache(maxsize=4096)  # notes rarely change: every cycle asks again for every list
def parse_deadline_tag(notes: str, tz: ZoneInfo) -> datetime | None:
    """The ``deadline: YYYY-MM-DD[ HH:MM[:SS]]`` tag in list notes, in ``tz``; None if absent
    or not a real date. A date-only deadline is the end of that day (the next midnight)."""
    found = _DEADLINE_TAG.search(notes)
    if found is None:
        return None
    day_text, clock_text = found.group(1), found.group(2)
    try:
        day = date.fromisoformat(day_text)
        if clock_text is None:
            return localize(datetime.combine(day + timedelta(days=1), time()), tz)
        hour, minute, *rest = (int(p) for p in clock_text.split(":"))
        moment = datetime.combine(day, time(hour, minute, rest[0] if rest else 0))
    except ValueError:
        return None
    return localize(moment, tz)


def localize(moment: datetime, tz: ZoneInfo) -> datetime:
    """A naive local time in ``tz`` (an aware one is converted)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=tz)
    return moment.astimezone(tz)


def compute_facts(
    snapshot: CampaignSnapshot,
    memory: Mapping[str, ListMemory],
    history: Mapping[str, Sequence[HistorySample]],
    metadata: Mapping[str, ListMetadata],
    now: datetime,
    settings: EngineSettings,
) -> dict[str, dict[str, object]]:
    """Every fact of every list of the campaign: ``list name -> fact name -> value``.

    ``history`` holds each list's samples oldest first (as ``StateStore.history()`` gives
    them); rates read the first and last sample of the window and do not sort.
    """
    tz = settings.timezone
    local_now = now.astimezone(tz)
    utc_now = local_now.astimezone(UTC)
    empty = ListMetadata()
    per_list: dict[str, dict[str, object]] = {}
    for item in snapshot.lists:
        meta = metadata.get(item.name, empty)
        facts = _list_facts(item, utc_now, tz)
        facts.update(_rate_facts(item, history.get(item.name, ()), now, settings))
        facts.update(_deadline_facts(item, meta, facts, local_now, tz))
        facts.update(_memory_facts(item, memory.get(item.name), now))
        facts.update(_metadata_facts(meta))
        facts["campaign"] = snapshot.campaign
        per_list[item.name] = facts
    _add_campaign_facts(snapshot, per_list)
    clock = {
        "now": local_now,
        "hour": local_now.hour,
        "minute": local_now.minute,
        "weekday": local_now.weekday(),
        "date": local_now.date(),
    }
    for facts in per_list.values():
        facts.update(clock)
    return per_list


def _list_facts(item: ListSnapshot, utc_now: datetime, tz: ZoneInfo) -> dict[str, object]:
    last_pull = None if item.last_pull is None else localize(item.last_pull, tz)
    idle = None
    if last_pull is not None:
        elapsed = utc_now - last_pull.astimezone(UTC)
        idle = max(elapsed.total_seconds() / 60, 0.0)
    return {
        "list": item.name,
        "notes": item.notes,
        "weight": item.weight,
        "paused": item.paused,
        "list_state": item.list_state,
        "dialer_state": item.dialer_state,
        "can_reserve": item.can_reserve,
        "completed_state": item.completed_state,
        "added": item.added,
        "completed": item.completed,
        "pulled": item.pulled,
        "last_pull": last_pull,
        "remaining": item.added - item.completed,
        "unpulled": max(item.added - item.pulled, 0),
        "in_flight": item.pulled - item.completed,
        "progress": None if item.added <= 0 else min(max(item.completed / item.added, 0.0), 1.0),
        "idle_minutes": idle,
    }


def _rate_facts(
    item: ListSnapshot,
    samples: Sequence[HistorySample],
    now: datetime,
    settings: EngineSettings,
) -> dict[str, object]:
    """Rates over the window: null until the samples in it span ``min_history``.

    ``samples`` must be oldest first, as ``StateStore.history()`` returns them: only the
    first and last samples of the window count, found by bisection (no sort per list per
    cycle). The snapshot itself is the last sample when none is at ``now``.
    """
    start = bisect_left(samples, now - settings.history_window, key=_sample_ts)
    end = bisect_right(samples, now, lo=start, key=_sample_ts)
    last = samples[end - 1] if start < end else None
    if last is None or last.ts < now:
        last = HistorySample(ts=now, pulled=item.pulled, completed=item.completed, added=item.added)
    first = samples[start] if start < end else last
    span = last.ts - first.ts
    pull_rate: float | None = None
    complete_rate: float | None = None
    if span > timedelta(0) and span >= settings.min_history:
        hours = span.total_seconds() / 3600
        pull_rate = max(last.pulled - first.pulled, 0) / hours
        complete_rate = max(last.completed - first.completed, 0) / hours
    unpulled = max(item.added - item.pulled, 0)
    eta = None
    if pull_rate is not None and pull_rate > 0:
        eta = unpulled / pull_rate
    return {
        "pull_rate_per_hour": pull_rate,
        "complete_rate_per_hour": complete_rate,
        "eta_hours": eta,
    }


def _sample_ts(sample: HistorySample) -> datetime:
    return sample.ts


def _deadline_facts(
    item: ListSnapshot,
    meta: ListMetadata,
    facts: Mapping[str, object],
    local_now: datetime,
    tz: ZoneInfo,
) -> dict[str, object]:
    if meta.deadline is not None:
        deadline: datetime | None = localize(meta.deadline, tz)
    else:
        deadline = parse_deadline_tag(item.notes, tz)
    if deadline is None:
        return {
            "deadline": None,
            "has_deadline": False,
            "hours_to_deadline": None,
            "required_rate_per_hour": None,
            "behind_schedule": None,
        }
    # In UTC: aware datetimes sharing one tzinfo subtract as wall times (wrong on DST days).
    hours = (deadline.astimezone(UTC) - local_now.astimezone(UTC)).total_seconds() / 3600
    unpulled = max(item.added - item.pulled, 0)
    required = unpulled / max(hours, MIN_HOURS_TO_DEADLINE)
    pull_rate = facts.get("pull_rate_per_hour")
    behind = None
    if unpulled == 0:
        behind = False
    elif isinstance(pull_rate, float | int):
        behind = pull_rate < required
    return {
        "deadline": deadline,
        "has_deadline": True,
        "hours_to_deadline": hours,
        "required_rate_per_hour": required,
        "behind_schedule": behind,
    }


def _memory_facts(item: ListSnapshot, mem: ListMemory | None, now: datetime) -> dict[str, object]:
    if mem is None:
        return {
            "base_weight": item.weight,
            "paused_by_mixer": False,
            "minutes_since_change": None,
            "manual_hold": False,
        }
    since = None
    if mem.last_change_at is not None:
        since = max((now - mem.last_change_at).total_seconds() / 60, 0.0)
    return {
        "base_weight": mem.base_weight,
        "paused_by_mixer": mem.paused_by_mixer,
        "minutes_since_change": since,
        "manual_hold": mem.in_manual_hold(now),
    }


def _metadata_facts(meta: ListMetadata) -> dict[str, object]:
    facts: dict[str, object] = {
        "tags": tuple(meta.tags),
        "priority": meta.priority,
        "standby": meta.standby,
    }
    facts.update(meta.extra)
    return facts


def _add_campaign_facts(snapshot: CampaignSnapshot, per_list: dict[str, dict[str, object]]) -> None:
    """Facts about the whole campaign, the same on every list (``share_of_pulls`` and
    ``deadline_rank`` are the list's place in it)."""
    items = snapshot.lists
    open_lists = sum(1 for i in items if not i.paused and not i.completed_state)
    reservable = sum(
        1
        for i in items
        if not i.paused and i.can_reserve and not per_list[i.name].get("standby", False)
    )
    unpulled = sum(_number(per_list[i.name]["unpulled"]) for i in items)
    rates = [per_list[i.name]["pull_rate_per_hour"] for i in items]
    known_rates = [float(r) for r in rates if isinstance(r, int | float)]
    campaign_rate = sum(known_rates) if known_rates else None
    required = [
        _number(per_list[i.name]["required_rate_per_hour"])
        for i in items
        if per_list[i.name]["required_rate_per_hour"] is not None and not i.completed_state
    ]
    campaign_required = sum(required) if required else None

    competes = [_competes_on_deadline(i, per_list[i.name]) for i in items]
    ranked = sorted(
        {_deadline_key(per_list[i.name]) for i, c in zip(items, competes, strict=True) if c}
    )
    competing = sum(competes)
    common = {
        "campaign_open_lists": open_lists,
        "campaign_reservable_lists": reservable,
        "campaign_deadline_lists": competing,
        "campaign_unpulled": unpulled,
        "campaign_pull_rate_per_hour": campaign_rate,
        "campaign_required_rate_per_hour": campaign_required,
    }
    for item, item_competes in zip(items, competes, strict=True):
        facts = per_list[item.name]
        rate = facts["pull_rate_per_hour"]
        share = None
        if campaign_rate is not None and campaign_rate > 0 and isinstance(rate, int | float):
            share = rate / campaign_rate
        rank = None
        if item_competes:
            rank = 1 + bisect_left(ranked, _deadline_key(facts))  # 1 + earlier deadlines
        facts.update(common)
        facts["share_of_pulls"] = share
        facts["deadline_rank"] = rank


def _competes_on_deadline(item: ListSnapshot, facts: Mapping[str, object]) -> bool:
    """A list EDF would consider: a deadline, numbers without a final status, and not held
    back by a human (a list the mixer paused still competes: the mixer may resume it).

    Deliberately not "can reserve now": a list whose last numbers are in a call or wait
    for their reschedule time blinks in and out of reservability minute by minute, and
    a rank that followed it would make every pacing rule flap. QM only picks among
    reservable lists anyway, so a high weight on a list that cannot give a number costs
    nothing.
    """
    return (
        facts["deadline"] is not None
        and not item.completed_state
        and _number(facts["remaining"]) > 0
        and (not item.paused or facts["paused_by_mixer"] is True)
    )


def _deadline_key(facts: Mapping[str, object]) -> float:
    deadline = facts["deadline"]
    assert isinstance(deadline, datetime)
    return deadline.timestamp()


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if not math.isnan(float(value)) else 0.0
