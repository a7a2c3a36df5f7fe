"""Facts: what rules can read about each list, computed once per list per cycle.

Pure: a snapshot, the mixer's memory, the counter history, the ``lists:`` metadata and
*now* go in; a flat ``fact name -> value`` mapping per list comes out. A fact that cannot
be known (no deadline, never pulled, not enough history) is ``None``; the evaluator
refuses to fire a rule that reads one, so rules never act on a guess.

Pacing facts all speak of *unpulled* numbers, the part the mixer steers: the weight
decides which list an agent pulls from next, not how fast a pulled number completes.
So ``required_rate_per_hour = unpulled / hours_to_deadline`` and ``behind_schedule`` is
``pull_rate_per_hour < required_rate_per_hour``; ``eta_hours`` is ``unpulled`` at the
current pull rate. A list whose deadline has passed with numbers left is ``overdue``: it has
no ``required_rate_per_hour`` and no ``deadline_rank`` (the rank orders the lists that can
still make their deadline), so pacing rules can step it back behind them. docs/rules.md
lists every fact with its unit and null condition.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from heapq import nlargest, nsmallest
from operator import itemgetter
from typing import cast
from zoneinfo import ZoneInfo

from mixer.deadline_tag import find_deadline_tag
from mixer.engine.expressions import ValueType
from mixer.engine.memory import HistorySample, ListMemory
from mixer.engine.metadata import ListMetadata
from mixer.engine.pool import (
    POOL_FACT_ORDER,
    POOL_FACT_TYPES,
    POOL_NEVER_NULL,
    add_lone_pool_facts,
)
from mixer.snapshot import CampaignSnapshot, ListSnapshot

# Below this many hours a deadline is treated as this close, so the required rate of an
# overdue list stays finite (everything unpulled within a minute) instead of infinite.
MIN_HOURS_TO_DEADLINE = 1 / 60


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
    "overdue": B,
    "deadline_rank": N,
    # Fresh numbers (speed to lead), from nNumbersAdded in the history window.
    "minutes_since_refill": N,
    "fresh_numbers": N,
    # The campaign as a whole.
    "campaign_open_lists": N,
    "campaign_reservable_lists": N,
    "campaign_deadline_lists": N,
    "campaign_overdue_lists": N,
    "campaign_unpulled": N,
    "campaign_pull_rate_per_hour": N,
    "campaign_required_rate_per_hour": N,
    "share_of_pulls": N,
    "deadline_share": N,
    # The other unpaused lists of the campaign (this list excluded), for relative rules.
    "campaign_max_base_weight": N,
    "campaign_max_weight": N,
    "campaign_min_weight": N,
    "campaign_total_weight": N,
    # The campaigns sharing agents with this one (mixer.engine.pool).
    **POOL_FACT_TYPES,
    # The mixer's memory.
    "base_weight": N,
    "paused_by_mixer": B,
    "base_paused": B,
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


# Built-in facts that always have a value (docs/rules.md: null "never"): the engine looks
# for null facts only among the others. tests/test_facts.py holds this to the facts built.
NEVER_NULL: frozenset[str] = frozenset(
    {
        "campaign",
        "list",
        "notes",
        "weight",
        "paused",
        "list_state",
        "dialer_state",
        "can_reserve",
        "completed_state",
        "added",
        "completed",
        "pulled",
        "remaining",
        "unpulled",
        "in_flight",
        "has_deadline",
        "overdue",
        "fresh_numbers",
        "campaign_open_lists",
        "campaign_reservable_lists",
        "campaign_deadline_lists",
        "campaign_overdue_lists",
        "campaign_unpulled",
        "campaign_total_weight",
        "base_weight",
        "paused_by_mixer",
        "base_paused",
        "manual_hold",
        "now",
        "hour",
        "minute",
        "weekday",
        "date",
        "tags",
        "standby",
    }
    | POOL_NEVER_NULL
)


_FACT_JSON_TYPES: Mapping[ValueType, dict[str, object]] = {
    ValueType.NUMBER: {"type": ["number", "null"]},
    ValueType.BOOL: {"type": ["boolean", "null"]},
    ValueType.STRING: {"type": ["string", "null"]},
    ValueType.STRINGS: {"type": "array", "items": {"type": "string"}},
    ValueType.DATETIME: {"type": ["string", "null"], "format": "date-time"},
    ValueType.DATE: {"type": ["string", "null"], "format": "date"},
}


def facts_json_schema() -> dict[str, object]:
    """The built-in facts a ``when`` or ``set.weight`` expression may read, with their
    types, for editors (docs/rules.md says what each one means)."""
    return {
        "description": "Built-in facts rule expressions can read (null: unknown this cycle).",
        "type": "object",
        "properties": {name: dict(_FACT_JSON_TYPES[kind]) for name, kind in FACT_TYPES.items()},
    }


@lru_cache(maxsize=4096)  # notes rarely change: every cycle asks again for every list
def parse_deadline_tag(notes: str, tz: ZoneInfo) -> datetime | None:
    """The ``deadline: YYYY-MM-DD[ HH:MM[:SS]]`` tag in list notes, in ``tz``; None if absent
    or not a real date. A date-only deadline is the end of that day (the next midnight)."""
    moment = find_deadline_tag(notes)
    return None if moment is None else localize(moment, tz)


def localize(moment: datetime, tz: ZoneInfo) -> datetime:
    """A naive local time in ``tz`` (an aware one is converted)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=tz)
    return moment.astimezone(tz)


# The built-in facts in the order a list's facts hold them: its own, the campaign's, the
# clock's, then the weights of the others and the pool's (extra `lists:` facts follow).
_OWN_FACTS = (
    "list",
    "notes",
    "weight",
    "paused",
    "list_state",
    "dialer_state",
    "can_reserve",
    "completed_state",
    "added",
    "completed",
    "pulled",
    "last_pull",
    "remaining",
    "unpulled",
    "in_flight",
    "progress",
    "idle_minutes",
    "pull_rate_per_hour",
    "complete_rate_per_hour",
    "eta_hours",
    "deadline",
    "has_deadline",
    "hours_to_deadline",
    "required_rate_per_hour",
    "behind_schedule",
    "overdue",
    "minutes_since_refill",
    "fresh_numbers",
    "base_weight",
    "paused_by_mixer",
    "base_paused",
    "minutes_since_change",
    "manual_hold",
    "tags",
    "priority",
    "standby",
    "campaign",
)
_CAMPAIGN_FACTS = (
    "campaign_open_lists",
    "campaign_reservable_lists",
    "campaign_deadline_lists",
    "campaign_overdue_lists",
    "campaign_unpulled",
    "campaign_pull_rate_per_hour",
    "campaign_required_rate_per_hour",
    "share_of_pulls",
    "deadline_share",
    "deadline_rank",
    "now",
    "hour",
    "minute",
    "weekday",
    "date",
    "campaign_max_base_weight",
    "campaign_max_weight",
    "campaign_min_weight",
    "campaign_total_weight",
)
_SHAPE: dict[str, object] = dict.fromkeys((*_OWN_FACTS, *_CAMPAIGN_FACTS, *POOL_FACT_ORDER))


def compute_facts(
    snapshot: CampaignSnapshot,
    memory: Mapping[str, ListMemory],
    history: Mapping[str, Sequence[HistorySample]],
    metadata: Mapping[str, ListMetadata],
    now: datetime,
    settings: EngineSettings,
    pool: Mapping[str, Mapping[str, object]] | None = None,
) -> dict[str, dict[str, object]]:
    """Every fact of every list of the campaign: ``list name -> fact name -> value``.

    ``history`` holds each list's samples oldest first (as ``StateStore.history()`` gives
    them); rates read the first and last sample of the window and do not sort.
    ``pool``: each list's ``pool_*`` facts when the campaign shares agents with others
    (``mixer.engine.pool.pool_facts``); None: the campaign is its own pool.
    """
    tz = settings.timezone
    local_now = now.astimezone(tz)
    utc_now = local_now.astimezone(UTC)
    empty = ListMetadata()
    per_list: dict[str, dict[str, object]] = {}
    for item in snapshot.lists:
        per_list[item.name] = _list_facts(
            item,
            history.get(item.name, ()),
            metadata.get(item.name, empty),
            memory.get(item.name),
            snapshot.campaign,
            utc_now,
            settings,
        )
    clock = {
        "now": local_now,
        "hour": local_now.hour,
        "minute": local_now.minute,
        "weekday": local_now.weekday(),
        "date": local_now.date(),
    }
    _add_campaign_facts(snapshot, per_list, clock)
    if pool is None or any(name not in pool for name in per_list):
        add_lone_pool_facts(per_list)
    else:
        for name, facts in per_list.items():
            facts.update(pool[name])
    return per_list


def _list_facts(
    item: ListSnapshot,
    samples: Sequence[HistorySample],
    meta: ListMetadata,
    mem: ListMemory | None,
    campaign: str,
    utc_now: datetime,
    settings: EngineSettings,
) -> dict[str, object]:
    """One list's own facts (the campaign and clock facts are added after), built as one
    mapping: a cycle computes them for every list."""
    tz = settings.timezone
    added, pulled, completed = item.added, item.pulled, item.completed
    unpulled = max(added - pulled, 0)
    last_pull = item.last_pull
    idle = None
    if last_pull is not None:
        if last_pull.tzinfo is None:
            last_pull = last_pull.replace(tzinfo=tz)
        # Before the conversion to local time: a UTC time subtracts without a zone lookup.
        idle = max((utc_now - last_pull).total_seconds() / 60, 0.0)
        last_pull = last_pull.astimezone(tz)
    pull_rate, complete_rate = _rates(item, samples, utc_now, settings)
    eta = unpulled / pull_rate if pull_rate is not None and pull_rate > 0 else None
    deadline = (
        localize(meta.deadline, tz)
        if meta.deadline is not None
        else parse_deadline_tag(item.notes, tz)
    )
    hours = required = behind = None
    overdue = False
    if deadline is not None:
        # In UTC: aware datetimes sharing one tzinfo subtract as wall times (wrong on DST days).
        hours = (deadline.astimezone(UTC) - utc_now).total_seconds() / 3600
        overdue = hours <= 0 and added > completed and not item.completed_state
        if not overdue:
            required = unpulled / max(hours, MIN_HOURS_TO_DEADLINE)
        if unpulled == 0:
            behind = False
        elif overdue:
            behind = True
        elif pull_rate is not None and required is not None:
            behind = pull_rate < required
    refill_minutes, fresh = _fresh(item, samples, utc_now, unpulled)
    since_change = None
    if mem is None:
        base_weight, paused_by_mixer, base_paused, hold = item.weight, False, item.paused, False
    else:
        base_weight, paused_by_mixer, base_paused = (
            mem.base_weight,
            mem.paused_by_mixer,
            mem.human_paused,
        )
        hold = mem.manual_hold_until is not None and utc_now < mem.manual_hold_until
        if mem.last_change_at is not None:
            since_change = max((utc_now - mem.last_change_at).total_seconds() / 60, 0.0)
    # Every built-in fact has its place from the start (``_SHAPE``, in the order they are
    # added): a copy and one store per value cost less than a literal that later grows.
    facts = _SHAPE.copy()
    facts["list"] = item.name
    facts["notes"] = item.notes
    facts["weight"] = item.weight
    facts["paused"] = item.paused
    facts["list_state"] = item.list_state
    facts["dialer_state"] = item.dialer_state
    facts["can_reserve"] = item.can_reserve
    facts["completed_state"] = item.completed_state
    facts["added"] = added
    facts["completed"] = completed
    facts["pulled"] = pulled
    facts["last_pull"] = last_pull
    facts["remaining"] = added - completed
    facts["unpulled"] = unpulled
    facts["in_flight"] = pulled - completed
    facts["progress"] = None if added <= 0 else min(max(completed / added, 0.0), 1.0)
    facts["idle_minutes"] = idle
    facts["pull_rate_per_hour"] = pull_rate
    facts["complete_rate_per_hour"] = complete_rate
    facts["eta_hours"] = eta
    facts["deadline"] = deadline
    facts["has_deadline"] = deadline is not None
    facts["hours_to_deadline"] = hours
    facts["required_rate_per_hour"] = required
    facts["behind_schedule"] = behind
    facts["overdue"] = overdue
    facts["minutes_since_refill"] = refill_minutes
    facts["fresh_numbers"] = fresh
    facts["base_weight"] = base_weight
    facts["paused_by_mixer"] = paused_by_mixer
    facts["base_paused"] = base_paused
    facts["minutes_since_change"] = since_change
    facts["manual_hold"] = hold
    facts["tags"] = tuple(meta.tags)
    facts["priority"] = meta.priority
    facts["standby"] = meta.standby
    facts["campaign"] = campaign
    if meta.extra:
        facts.update(meta.extra)
    return facts


def _rates(
    item: ListSnapshot,
    samples: Sequence[HistorySample],
    now: datetime,
    settings: EngineSettings,
) -> tuple[float | None, float | None]:
    """Pull and completion rates per hour over the window: None until the samples in it
    span ``min_history``.

    ``samples`` must be oldest first, as ``StateStore.history()`` returns them: only the
    first and last samples of the window count, found by bisection (no sort per list per
    cycle). The snapshot itself is the last sample when none is at ``now``.
    """
    size = len(samples)
    if not size:
        return None, None  # the snapshot alone spans no time
    cut = now - settings.history_window
    # The store hands over the window already cut, ending at now: check the ends before
    # bisecting (same indices either way).
    start = 0 if samples[0].ts >= cut else bisect_left(samples, cut, key=_sample_ts)
    end = size if samples[-1].ts <= now else bisect_right(samples, now, lo=start, key=_sample_ts)
    if start >= end:
        return None, None  # the snapshot alone spans no time
    first, last = samples[start], samples[end - 1]
    if last.ts < now:
        last = HistorySample(ts=now, pulled=item.pulled, completed=item.completed, added=item.added)
    span = last.ts - first.ts
    if span <= _NO_TIME or span < settings.min_history:
        return None, None
    hours = span.total_seconds() / 3600
    return (
        max(last.pulled - first.pulled, 0) / hours,
        max(last.completed - first.completed, 0) / hours,
    )


def _fresh(
    item: ListSnapshot, samples: Sequence[HistorySample], now: datetime, unpulled: int
) -> tuple[float | None, int]:
    """Speed-to-lead facts from ``nNumbersAdded`` in the history window (oldest first).

    ``minutes_since_refill``: since the latest sample where ``added`` went up (the current
    snapshot counts as a sample at ``now``); null when ``added`` did not grow inside the
    window. ``fresh_numbers``: numbers added inside the window, at most ``unpulled`` (the
    fresh ones are the last to be pulled only if the list is FIFO; this is an upper
    bound); 0 without history.
    """
    if not samples:
        return None, 0
    first = samples[0].added
    if item.added == first:  # the common case: nothing added in the window, no walk
        return None, 0
    refill: datetime | None = None
    later_added, later_ts = item.added, now  # walking back from now: the first rise found
    for sample in reversed(samples):  # is the latest
        if sample.ts > now:
            continue
        if sample.added < later_added:
            refill = later_ts
            break
        later_added, later_ts = sample.added, sample.ts
    fresh = min(max(item.added - first, 0), unpulled)
    minutes = None if refill is None else max((now - refill).total_seconds() / 60, 0.0)
    return minutes, fresh


_NO_TIME = timedelta(0)


def _sample_ts(sample: HistorySample) -> datetime:
    return sample.ts


def _add_campaign_facts(
    snapshot: CampaignSnapshot,
    per_list: dict[str, dict[str, object]],
    clock: Mapping[str, object],
) -> None:
    """Facts about the whole campaign, the same on every list (``share_of_pulls`` and
    ``deadline_rank`` are the list's place in it), then the ``clock`` facts.

    One pass gathers the campaign's figures and a second hands them to every list; sums
    add in list order, as ``sum()`` over the lists would.
    """
    open_lists = reservable = competing = overdue = 0
    weights = _OtherWeights()
    unpulled: float = 0  # an int 0 when the campaign has no list, as sum() gives
    campaign_rate: float | None = None
    campaign_required: float | None = None
    deadlines: set[float] = set()
    rows: list[tuple[dict[str, object], object, float | None]] = []
    for item in snapshot.lists:
        facts = per_list[item.name]
        paused = item.paused
        completed_state = item.completed_state
        if not paused and not completed_state:
            open_lists += 1
        if not paused and item.can_reserve and not facts.get("standby", False):
            reservable += 1
        unpulled += float(cast(int, facts["unpulled"]))  # an int from _list_facts
        rate = facts["pull_rate_per_hour"]
        if isinstance(rate, int | float):
            campaign_rate = (0 if campaign_rate is None else campaign_rate) + float(rate)
        required = facts["required_rate_per_hour"]
        if required is not None and not completed_state:
            campaign_required = (0 if campaign_required is None else campaign_required) + _number(
                required
            )
        key = None
        if facts["deadline"] is not None and _competes_on_deadline(item, facts):
            if facts["overdue"] is True:
                overdue += 1
            else:
                competing += 1
                key = _deadline_key(facts)
                deadlines.add(key)
        if not paused:
            weights.add(item.name, item.weight, _number(facts["base_weight"]))
        rows.append((facts, rate, key))
    ranked = sorted(deadlines)
    common = {
        "campaign_open_lists": open_lists,
        "campaign_reservable_lists": reservable,
        "campaign_deadline_lists": competing,
        "campaign_overdue_lists": overdue,
        "campaign_unpulled": unpulled,
        "campaign_pull_rate_per_hour": campaign_rate,
        "campaign_required_rate_per_hour": campaign_required,
    }
    # The same for every list, in the facts' order; share and rank are set per list.
    tail = {
        **common,
        "share_of_pulls": None,
        "deadline_share": None,
        "deadline_rank": None,
        **clock,
    }
    needs = _capped_needs(rows, campaign_rate)
    total_need = sum(needs.values())
    shares = campaign_rate is not None and campaign_rate > 0
    for facts, rate, key in rows:
        facts.update(tail)
        weights.fill(facts, cast(str, facts["list"]))
        if shares and isinstance(rate, int | float):
            facts["share_of_pulls"] = rate / campaign_rate  # type: ignore[operator]
        if key is not None:
            facts["deadline_rank"] = 1 + bisect_left(ranked, key)  # 1 + earlier deadlines
        need = needs.get(id(facts))
        if need is not None and total_need > 0:
            facts["deadline_share"] = need / total_need


class _OtherWeights:
    """Weights of a campaign's unpaused lists, answered for "every list but this one".

    Keeps the total and, once every list is in, the two largest and two smallest entries
    (ties: the earlier list first), so each list's aggregates over the *others* cost O(1)
    instead of a pass over the campaign.
    """

    __slots__ = ("base", "entries", "high", "low", "own", "total")

    def __init__(self) -> None:
        self.entries: list[tuple[float, float, str]] = []  # weight, base weight, name
        self.high: list[tuple[float, float, str]] | None = None  # two largest weights
        self.low: list[tuple[float, float, str]] = []  # two smallest weights
        self.base: list[tuple[float, float, str]] = []  # two largest base weights
        self.own: dict[str, float] = {}
        self.total = 0.0

    def add(self, name: str, weight: float, base: float) -> None:
        self.total += weight
        self.own[name] = weight
        self.entries.append((weight, base, name))

    def fill(self, facts: dict[str, object], name: str) -> None:
        """Set the aggregates over the unpaused lists other than ``name`` in ``facts``: max
        and min null and the total 0 when there is none. Inline, as it runs for every list
        of every cycle."""
        own = self.own.get(name)
        if len(self.own) - (own is not None) <= 0:
            facts.update(_NO_OTHERS)
            return
        high = self.high
        if high is None:  # the first list asking: every list is in
            entries = self.entries
            high = self.high = nlargest(2, entries, key=_WEIGHT)
            self.low = nsmallest(2, entries, key=_WEIGHT)
            self.base = nlargest(2, entries, key=_BASE)
        low, base = self.low, self.base
        facts["campaign_max_base_weight"] = base[0][1] if base[0][2] != name else base[1][1]
        facts["campaign_max_weight"] = high[0][0] if high[0][2] != name else high[1][0]
        facts["campaign_min_weight"] = low[0][0] if low[0][2] != name else low[1][0]
        facts["campaign_total_weight"] = self.total - (own or 0.0)


_WEIGHT = itemgetter(0)
_BASE = itemgetter(1)
_NO_OTHERS: Mapping[str, object] = {
    "campaign_max_base_weight": None,
    "campaign_max_weight": None,
    "campaign_min_weight": None,
    "campaign_total_weight": 0.0,
}


def _capped_needs(
    rows: Sequence[tuple[dict[str, object], object, float | None]], campaign_rate: float | None
) -> dict[int, float]:
    """Each uncompleted list's required pull rate, capped at the campaign's pull rate (no
    list can be pulled faster than the whole campaign is): a deadline minutes away asks
    for thousands of pulls an hour, and uncapped it would swamp every other list's share
    just before it passes. Keyed by ``id`` of the list's facts."""
    cap = campaign_rate if campaign_rate is not None and campaign_rate > 0 else math.inf
    needs: dict[int, float] = {}
    for facts, _rate, _key in rows:
        required = facts["required_rate_per_hour"]
        if required is not None and facts["completed_state"] is not True:
            needs[id(facts)] = min(_number(required), cap)
    return needs


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
