"""Fit an emulator scenario to the cycles a centre's decision log recorded.

Pure apart from its input stream: recorded cycles (``mixer.recorded``) go in, a scenario
document (the mapping a scenario YAML file holds) and the figures it was fitted from come
out. What the counters of a ``cycle`` event can and cannot tell is the whole method, so
it is spelled out here and written as comments into every fitted file:

* Lists: name, numbers and completed at first sight, weight and pause at first sight,
  deadline from a ``deadline:`` tag in the notes; every rise of ``added`` is a refill
  (rises within ``REFILL_MERGE`` of each other are one batch). A list first seen after
  the start begins empty and gets its numbers as a refill when it appeared.
* Agents: ``pulled - completed`` is the number of calls in progress (QM's dialer counts
  a number as pulled while it is in a call; a rescheduled number goes back to unpulled),
  so its sum over a campaign's lists is the number of busy agents at that instant. While
  some list of the campaign can reserve a number, no agent of a dialer idles, so busy
  agents are the agents on shift. Per hour of the week, the capacity is the mean number
  of busy agents over the cycles in that hour when something was reservable (rounded);
  an hour with no such cycle gets the most agents seen busy in it (a lower bound: idle
  agents leave no trace in the counters). Agents are fitted per campaign.
* Handling time: Little's law, busy agent-minutes over numbers completed. The counters
  do not separate success, failure and reschedule (all final outcomes count as completed,
  a reschedule undoes a pull), so the fit's calls all end final at the first attempt and
  the time agents spent on attempts that were rescheduled is folded into the handling
  time of the numbers that completed. The range is the mean ±``HANDLING_SPREAD``: the
  counters give the mean only.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from mixer.engine.facts import parse_deadline_tag
from mixer.recorded import RecordedCycle, RecordedList

Progress = Callable[[str, float], None]

REFILL_MERGE = timedelta(minutes=10)
HANDLING_SPREAD = 0.2
# Cycles further apart than this (the daemon was down) count no time and no rates.
MAX_GAP = timedelta(minutes=5)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class _ListFit:
    first: RecordedList
    first_seen: datetime
    last_added: int
    refills: list[tuple[datetime, int]] = field(default_factory=list)


@dataclass
class _HourBin:
    """One hour of the week of one campaign: busy agents over the cycles in it."""

    busy_open: float = 0.0  # sum of busy agents over cycles with something reservable
    cycles_open: int = 0
    busy_max: int = 0


@dataclass
class _CampaignFit:
    lists: dict[str, _ListFit] = field(default_factory=dict)
    hours: dict[tuple[int, int], _HourBin] = field(default_factory=dict)
    previous: RecordedCycle | None = None
    busy_minutes: float = 0.0
    completed: int = 0
    pulled: int = 0
    pulls_by_hour: list[int] = field(default_factory=lambda: [0] * 24)
    completed_by_day: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class FitResult:
    """The fitted scenario document and what it was fitted from."""

    document: dict[str, Any]
    comments: list[str]
    cycles: int
    handling_minutes: float | None
    agents: dict[str, dict[tuple[int, int], int]]  # campaign -> (weekday, hour) -> agents
    completed_by_day: dict[str, int]  # local date -> numbers completed (all campaigns)
    pulls_by_hour: list[int]  # local hour of day -> numbers pulled (net of reschedules)


def fit_scenario(
    cycles: Iterable[RecordedCycle],
    *,
    tz: ZoneInfo,
    since: datetime,
    until: datetime,
    progress: Progress | None = None,
) -> FitResult:
    """Fit a scenario to ``cycles`` (oldest first) between ``since`` and ``until``."""
    campaigns: dict[str, _CampaignFit] = {}
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    count = 0
    span = max((until - since).total_seconds(), 1.0)
    shown = 0.0
    for cycle in cycles:
        if cycle.ts < since:
            continue
        if cycle.ts >= until:
            break
        count += 1
        first_ts = first_ts or cycle.ts
        last_ts = cycle.ts
        fit = campaigns.get(cycle.campaign)
        if fit is None:
            fit = campaigns[cycle.campaign] = _CampaignFit()
        _take(fit, cycle, tz)
        if progress is not None:
            fraction = (cycle.ts - since).total_seconds() / span
            if fraction - shown >= 0.01:
                shown = fraction
                progress("fit", fraction)
    if progress is not None:
        progress("fit", 1.0)
    if first_ts is None or last_ts is None or count < 2:
        raise ValueError("fewer than two recorded cycles with lists in this range")
    return _build(campaigns, tz, first_ts, last_ts, count)


def _take(fit: _CampaignFit, cycle: RecordedCycle, tz: ZoneInfo) -> None:
    local = cycle.ts.astimezone(tz)
    busy = 0
    reservable = False
    for rec in cycle.lists:
        busy += max(rec.pulled - rec.completed, 0)
        if rec.can_reserve and not rec.paused and rec.weight > 0:
            reservable = True
        known = fit.lists.get(rec.name)
        if known is None:
            fit.lists[rec.name] = _ListFit(rec, cycle.ts, rec.added)
        elif rec.added > known.last_added:
            known.refills.append((cycle.ts, rec.added - known.last_added))
            known.last_added = rec.added
    hour = fit.hours.get((local.weekday(), local.hour))
    if hour is None:
        hour = fit.hours[(local.weekday(), local.hour)] = _HourBin()
    if reservable:
        hour.busy_open += busy
        hour.cycles_open += 1
    hour.busy_max = max(hour.busy_max, busy)
    previous = fit.previous
    fit.previous = cycle
    if previous is None or cycle.ts - previous.ts > MAX_GAP:
        return
    minutes = (cycle.ts - previous.ts).total_seconds() / 60
    before = {rec.name: rec for rec in previous.lists}
    prior_busy = sum(max(r.pulled - r.completed, 0) for r in previous.lists)
    fit.busy_minutes += prior_busy * minutes
    done_total = pulled_total = 0
    for rec in cycle.lists:
        old = before.get(rec.name)
        if old is None:
            continue
        done_total += max(rec.completed - old.completed, 0)
        pulled_total += rec.pulled - old.pulled  # signed: a reschedule gives a pull back
    fit.completed += done_total
    fit.pulled += pulled_total
    fit.pulls_by_hour[local.hour] += pulled_total
    fit.completed_by_day[local.date().isoformat()] += done_total


def _build(
    campaigns: dict[str, _CampaignFit],
    tz: ZoneInfo,
    first_ts: datetime,
    last_ts: datetime,
    cycles: int,
) -> FitResult:
    busy_minutes = sum(f.busy_minutes for f in campaigns.values())
    completed = sum(f.completed for f in campaigns.values())
    handling = busy_minutes / completed if completed else None
    start_local = first_ts.astimezone(tz).replace(second=0, microsecond=0)
    duration = last_ts - first_ts
    document: dict[str, Any] = {
        "description": (
            f"Fitted to {cycles} recorded cycles from {_local(first_ts, tz)} to "
            f"{_local(last_ts, tz)} ({tz.key})."
        ),
        "start": start_local.strftime("%Y-%m-%d %H:%M"),
        "duration": _span_text(duration),
        "timezone": tz.key,
        "seed": 1,
        "campaigns": {},
        "agents": [],
    }
    agents: dict[str, dict[tuple[int, int], int]] = {}
    for name, fit in campaigns.items():
        document["campaigns"][name] = {
            "lists": [_list_spec(item, tz, first_ts) for item in fit.lists.values()]
        }
        capacity = {key: _capacity(hour) for key, hour in fit.hours.items()}
        agents[name] = capacity
        document["agents"].extend(_shifts(name, capacity))
    if handling is not None and handling > 0:
        low = max(handling * (1 - HANDLING_SPREAD), 1 / 60)
        high = max(handling * (1 + HANDLING_SPREAD), low)
        document["handling_time"] = {"min": _seconds(low), "max": _seconds(high)}
    document["outcomes"] = {"success": 1.0, "reschedule": 0.0, "fail": 0.0}
    by_day: dict[str, int] = defaultdict(int)
    for fit in campaigns.values():
        for day, done in fit.completed_by_day.items():
            by_day[day] += done
    profile = [max(sum(f.pulls_by_hour[h] for f in campaigns.values()), 0) for h in range(24)]
    comments = _comments(campaigns, handling, cycles, duration, dict(by_day), profile)
    return FitResult(document, comments, cycles, handling, agents, dict(by_day), profile)


def _capacity(hour: _HourBin) -> int:
    if hour.cycles_open:
        return math.floor(hour.busy_open / hour.cycles_open + 0.5)
    return hour.busy_max


def _shifts(campaign: str, capacity: dict[tuple[int, int], int]) -> list[dict[str, Any]]:
    """Hourly capacities as shifts: runs of equal counts within a day, days with the same
    run merged into one shift with several weekdays. Shifts of a campaign add up."""
    runs: dict[tuple[int, int, int], list[int]] = defaultdict(list)
    for day in range(7):
        hour = 0
        while hour < 24:
            count = capacity.get((day, hour), 0)
            end = hour + 1
            while end < 24 and capacity.get((day, end), 0) == count:
                end += 1
            if count > 0:
                runs[(hour, end, count)].append(day)
            hour = end
    return [
        {
            "campaign": campaign,
            "from": f"{start:02d}:00",
            "to": f"{end:02d}:00",
            "count": count,
            "weekdays": days,
        }
        for (start, end, count), days in sorted(runs.items(), key=lambda r: (r[1], r[0]))
    ]


def _list_spec(item: _ListFit, tz: ZoneInfo, first_ts: datetime) -> dict[str, Any]:
    rec = item.first
    late = item.first_seen > first_ts
    spec: dict[str, Any] = {
        "name": rec.name,
        "numbers": 0 if late else rec.added,
        "weight": max(rec.weight, 0),
    }
    if rec.paused:
        spec["paused"] = True
    if rec.notes:
        spec["notes"] = rec.notes
    deadline = parse_deadline_tag(rec.notes, tz) if rec.notes else None
    if deadline is not None:
        spec["deadline"] = deadline.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    if rec.completed and not late:
        spec["completed"] = min(rec.completed, rec.added)
    batches: list[tuple[datetime, int]] = []
    if late and rec.added:
        batches.append((item.first_seen, rec.added))
    for when, numbers in item.refills:
        if batches and when - batches[-1][0] < REFILL_MERGE:
            batches[-1] = (batches[-1][0], batches[-1][1] + numbers)
        else:
            batches.append((when, numbers))
    if batches:
        spec["add"] = [{"at": _local(when, tz), "numbers": n} for when, n in batches]
    return spec


def _comments(
    campaigns: dict[str, _CampaignFit],
    handling: float | None,
    cycles: int,
    duration: timedelta,
    by_day: dict[str, int],
    profile: list[int],
) -> list[str]:
    completed = sum(f.completed for f in campaigns.values())
    pulled = sum(f.pulled for f in campaigns.values())
    days = ", ".join(f"{day} {done}" for day, done in sorted(by_day.items()))
    lines = [
        "Fitted by `amo-mixer scenario fit` from the decision log's cycle events.",
        "",
        "Method (docs/scenarios.md, 'Fitted scenarios'):",
        "- lists: numbers, completed, weight, pause and notes as first seen; deadline from",
        "  the notes' 'deadline:' tag; each rise of numbers added is a refill ('add').",
        "- agents per campaign and hour of the week: the mean of sum(pulled - completed)",
        "  (calls in progress) over the cycles of that hour when a list could reserve;",
        "  hours when none could show only the agents seen busy (a lower bound).",
        "- handling time: Little's law, busy agent-minutes / numbers completed, +-20%.",
        "",
        "Limits:",
        "- the counters do not separate success, failure and reschedule: every call here",
        "  ends final at its first attempt, and time spent on rescheduled attempts is in",
        "  the handling time; answer rates by hour are not modelled.",
        "- idle agents leave no trace: capacity is a lower bound where lists ran dry.",
        "- agents are fitted per campaign; shared agents are split as they were busy.",
        "- hour resolution: a shift starting at half past shows as a rounded mean.",
        "",
        f"Observed: {cycles} cycles over {duration.total_seconds() / 86400:.2f} days;",
        f"  completed {completed}, pulled {pulled} (net of reschedules);",
        f"  completed per local day: {days or 'none'};",
        "  handling time "
        + ("unknown (nothing completed)" if handling is None else f"{handling:.2f} min")
        + ";",
        "  pulls per hour of day (local): " + " ".join(str(n) for n in profile) + ".",
    ]
    return lines


def render_yaml(result: FitResult) -> str:
    """The scenario file: the method and limits as comments, then the document."""
    import yaml

    header = "".join(f"# {line}".rstrip() + "\n" for line in result.comments)
    body = yaml.safe_dump(result.document, sort_keys=False, allow_unicode=True, width=100)
    return header + body


def _local(when: datetime, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _span_text(span: timedelta) -> str:
    minutes = max(int(span.total_seconds() // 60), 1)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    parts += [f"{hours}h"] if hours else []
    parts += [f"{minutes}m"] if minutes or not parts else []
    return " ".join(parts)


def _seconds(minutes: float) -> str:
    return f"{max(round(minutes * 60), 1)}s"
