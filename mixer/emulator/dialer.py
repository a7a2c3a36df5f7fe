"""The simulated dialer: agents on shifts reserve numbers from the lists the mixer tunes.

Event-driven, so a simulated week of 100 lists costs the work of its calls, not of its
seconds: one heap of timed events (shift starts and ends, calls ending, numbers becoming
valid, refills), processed up to the instant asked for. Idle agents are woken only by
something that can make a list reservable (a call ending, a validFrom reached, numbers
added, a list resumed or re-weighted through the API).

Choice of list, as QM's mixer does it: a weighted random draw (seeded ``random.Random``)
among the lists that are open (not paused), have a positive weight and can reserve now.
Policy ``"edf"`` is the oracle the simulator compares against: always the reservable list
with the earliest deadline (lists without one come last; ties go to the higher weight).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from mixer.emulator.scenario import AgentShift, Scenario
from mixer.emulator.state import CallList, EmulatorState, Number

__all__ = ["POLICIES", "Dialer", "DialerMetrics", "ListKey"]

ListKey = tuple[str, str]  # (campaign, list name)
POLICIES = ("weighted", "edf")

# A day counts towards starvation only when agents made at least this many reservation
# decisions in it, so one unlucky draw on a quiet day does not mark a list as starved.
STARVATION_MIN_DECISIONS = 20

_SHIFT_START, _SHIFT_END, _CALL_DONE, _WAKE, _REFILL = range(5)


@dataclass(frozen=True, slots=True)
class DialerMetrics:
    """What the simulated dialer achieved; keys are ``(campaign, list)``.

    ``on_time_ratio``: numbers of lists with a deadline that reached a final status by
    their list's deadline, over all numbers of those lists (None: no list has a deadline).
    ``idle_agent_minutes``: agent-minutes on shift with nothing reservable.
    ``starved_lists``: lists that, on some complete simulated local day, were a candidate
    (open and reservable) at half or more of the reservation decisions of the agents
    serving their campaign (at least ``STARVATION_MIN_DECISIONS`` of them) and were never
    picked that day. The start day counts from the scenario start; a day is complete once
    the dialer has passed its local midnight.
    """

    completed: int
    completed_per_list: dict[ListKey, int]
    pulls_per_list: dict[ListKey, int]
    on_time_per_list: dict[ListKey, int]
    on_time_ratio: float | None
    idle_agent_minutes: float
    starved_lists: list[ListKey]
    reservations: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: per-list maps nested as ``{campaign: {list: n}}``."""

        def nest(values: dict[ListKey, int]) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for (campaign, name), value in sorted(values.items()):
                out.setdefault(campaign, {})[name] = value
            return out

        return {
            "completed": self.completed,
            "completed_per_list": nest(self.completed_per_list),
            "pulls_per_list": nest(self.pulls_per_list),
            "on_time_per_list": nest(self.on_time_per_list),
            "on_time_ratio": self.on_time_ratio,
            "idle_agent_minutes": round(self.idle_agent_minutes, 3),
            "starved_lists": [list(key) for key in self.starved_lists],
            "reservations": self.reservations,
        }


@dataclass(slots=True, eq=False)
class _Agent:
    shift: int
    campaigns: tuple[str, ...] | None  # None: every campaign
    shift_end: float | None = None  # None: off shift
    busy: bool = False
    idle_since: float | None = None


@dataclass(slots=True)
class _DayCounts:
    """Per local day: decisions per campaign, candidacies and pulls per list."""

    decisions: Counter[str] = field(default_factory=Counter)
    candidate: Counter[ListKey] = field(default_factory=Counter)
    pulled: set[ListKey] = field(default_factory=set)


class Dialer:
    """Agents reserving and completing numbers of an ``EmulatorState``, in simulated time."""

    def __init__(self, state: EmulatorState, scenario: Scenario, *, policy: str = "weighted"):
        if policy not in POLICIES:
            raise ValueError(f"unknown dialer policy {policy!r}: use one of {POLICIES}")
        self.state = state
        self.scenario = scenario
        self.policy = policy
        self.rng = random.Random(scenario.seed)
        self.now = scenario.start.timestamp()
        self._start = self.now
        self._events: list[tuple[float, int, int, Any]] = []
        self._seq = itertools.count()
        self._wake_times: set[float] = set()
        self._idle: dict[int, _Agent] = {}
        self._agents: list[list[_Agent]] = []
        handling = scenario.handling_time
        self._handling = (handling.min.total_seconds(), handling.max.total_seconds())
        out = scenario.outcomes
        total = out.success + out.reschedule + out.fail
        self._p_success = out.success / total
        self._p_reschedule = (out.success + out.reschedule) / total
        self._reschedule_after = scenario.reschedule_after.total_seconds()
        # metrics
        self.reservations = 0
        self.pulls: Counter[ListKey] = Counter()
        self.completions: Counter[ListKey] = Counter()
        self.on_time: Counter[ListKey] = Counter()
        self._idle_seconds = 0.0
        self._days: dict[int, _DayCounts] = {}
        self._day_range = (math.inf, -math.inf)
        self._day = 0

        for index, shift in enumerate(scenario.agents):
            campaigns = None if shift.campaign is None else (shift.campaign,)
            self._agents.append([_Agent(index, campaigns) for _ in range(shift.count)])
            if shift.count and shift.weekdays:
                self._schedule_shift(index, scenario.start.astimezone(scenario.tz).date())
        start_local = scenario.start.astimezone(scenario.tz).replace(tzinfo=None)
        for campaign, spec in scenario.campaigns.items():
            for item in spec.lists:
                for batch in item.add:
                    when = scenario.local(batch.when(start_local)).timestamp()
                    self._push(max(when, self.now), _REFILL, (campaign, item.name, batch.numbers))
        state.on_change = self._state_changed

    # --- the event loop -------------------------------------------------------------------

    def _push(self, when: float, kind: int, payload: Any) -> None:
        heapq.heappush(self._events, (when, next(self._seq), kind, payload))

    def advance(self, until: datetime) -> None:
        """Process every event up to ``until``; time never goes backwards."""
        limit = until.timestamp()
        events = self._events
        while events and events[0][0] <= limit:
            when, _, kind, payload = heapq.heappop(events)
            self.now = max(self.now, when)
            if kind == _CALL_DONE:
                self._call_done(*payload)
            elif kind == _WAKE:
                self._wake_times.discard(when)
                if self._idle:
                    self._wake_idle()
            elif kind == _SHIFT_START:
                self._shift_start(*payload)
            elif kind == _SHIFT_END:
                self._shift_end(payload)
            else:
                campaign, name, count = payload
                call_list = self.state.find_list(campaign, name)
                if call_list is not None:
                    self.state.add_blank_numbers(call_list, count)
        self.now = max(self.now, limit)

    # --- shifts ---------------------------------------------------------------------------

    def _shift_window(self, shift: AgentShift, day: date) -> tuple[float, float]:
        midnight = datetime(day.year, day.month, day.day)
        start = self.scenario.local(midnight + shift.start_offset()).timestamp()
        end = self.scenario.local(midnight + shift.end_offset()).timestamp()
        return start, end

    def _schedule_shift(self, index: int, first_day: date) -> None:
        shift = self.scenario.agents[index]
        for offset in range(8):
            day = first_day + timedelta(days=offset)
            if day.weekday() not in shift.weekdays:
                continue
            start, end = self._shift_window(shift, day)
            if end > self.now:
                self._push(max(start, self.now), _SHIFT_START, (index, end, day))
                return

    def _shift_start(self, index: int, end: float, day: date) -> None:
        for agent in self._agents[index]:
            agent.shift_end = end
            if not agent.busy and agent.idle_since is None:
                self._try_reserve(agent)
        self._push(end, _SHIFT_END, index)
        self._schedule_shift(index, day + timedelta(days=1))

    def _shift_end(self, index: int) -> None:
        for agent in self._agents[index]:
            if agent.idle_since is not None:
                self._idle_seconds += self.now - agent.idle_since
                agent.idle_since = None
                self._idle.pop(id(agent), None)
            agent.shift_end = None

    # --- reserving and calling ------------------------------------------------------------

    def _lists_for(self, agent: _Agent) -> list[CallList]:
        campaigns = self.state.campaigns
        names = agent.campaigns if agent.campaigns is not None else tuple(campaigns)
        out: list[CallList] = []
        for name in names:
            out.extend(campaigns.get(name, {}).values())
        return out

    def _day_counts(self) -> _DayCounts:
        now = self.now
        low, high = self._day_range
        if not low <= now < high:
            local = datetime.fromtimestamp(now, self.scenario.tz)
            midnight = datetime(local.year, local.month, local.day)
            self._day = midnight.toordinal()
            self._day_range = (
                self.scenario.local(midnight).timestamp(),
                self.scenario.local(midnight + timedelta(days=1)).timestamp(),
            )
        counts = self._days.get(self._day)
        if counts is None:
            counts = self._days[self._day] = _DayCounts()
        return counts

    def _pick(self, candidates: list[CallList]) -> CallList:
        if self.policy == "edf":
            return min(candidates, key=lambda c: (c.deadline_ts, -c.weight, c.name))
        total = sum(c.weight for c in candidates)
        point = self.rng.random() * total
        for candidate in candidates:
            point -= candidate.weight
            if point < 0:
                return candidate
        return candidates[-1]

    def _try_reserve(self, agent: _Agent) -> None:
        now = self.now
        if agent.shift_end is None or now >= agent.shift_end:
            agent.shift_end = None
            return
        served = self._lists_for(agent)
        candidates = [c for c in served if not c.paused and c.weight > 0 and c.can_reserve(now)]
        if not candidates:
            agent.idle_since = now
            self._idle[id(agent)] = agent
            return
        counts = self._day_counts()
        for campaign in {c.campaign for c in served}:
            counts.decisions[campaign] += 1
        for candidate in candidates:
            counts.candidate[candidate.key] += 1
        chosen = self._pick(candidates)
        number = chosen.reserve(now)
        counts.pulled.add(chosen.key)
        self.reservations += 1
        self.pulls[chosen.key] += 1
        agent.busy = True
        low, high = self._handling
        handling = low if low == high else self.rng.uniform(low, high)
        self._push(now + handling, _CALL_DONE, (agent, chosen, number))

    def _call_done(self, agent: _Agent, call_list: CallList, number: Number) -> None:
        draw = self.rng.random()
        if (
            self._p_success <= draw < self._p_reschedule
            and number.attempts < self.scenario.max_attempts
        ):
            when = self.now + self._reschedule_after
            call_list.reschedule(number, when)
            self._wake_at(when)
        else:
            call_list.finalize(number)
            self.completions[call_list.key] += 1
            if call_list.deadline is not None and self.now <= call_list.deadline_ts:
                self.on_time[call_list.key] += 1
        agent.busy = False
        self._try_reserve(agent)

    def _wake_at(self, when: float) -> None:
        if when not in self._wake_times:
            self._wake_times.add(when)
            self._push(when, _WAKE, None)

    def _wake_idle(self) -> None:
        agents = list(self._idle.values())
        self._idle.clear()
        for agent in agents:
            if agent.idle_since is not None:
                self._idle_seconds += self.now - agent.idle_since
                agent.idle_since = None
            self._try_reserve(agent)

    def _state_changed(self) -> None:
        """Lists or numbers changed (API or refill): idle agents look again."""
        now = self.now
        for call_list in self.state.lists():
            head = call_list.next_valid_from()
            if head is not None and head > now:
                self._wake_at(head)
        if self._idle:
            self._wake_idle()

    # --- results --------------------------------------------------------------------------

    def metrics(self) -> DialerMetrics:
        """The dialer's results up to its current time."""
        deadline_lists = [c for c in self.state.lists() if c.deadline is not None]
        total = sum(c.added for c in deadline_lists)
        on_time = sum(self.on_time[c.key] for c in deadline_lists)
        idle = self._idle_seconds + sum(
            self.now - a.idle_since for a in self._idle.values() if a.idle_since is not None
        )
        self._day_counts()  # make sure the current day's bounds are known
        starved: set[ListKey] = set()
        for day, counts in self._days.items():
            if day >= self._day:  # not complete yet
                continue
            for key, seen in counts.candidate.items():
                decisions = counts.decisions[key[0]]
                if (
                    decisions >= STARVATION_MIN_DECISIONS
                    and seen * 2 >= decisions
                    and key not in counts.pulled
                ):
                    starved.add(key)
        return DialerMetrics(
            completed=sum(self.completions.values()),
            completed_per_list=dict(self.completions),
            pulls_per_list=dict(self.pulls),
            on_time_per_list=dict(self.on_time),
            on_time_ratio=None if not deadline_lists else (on_time / total if total else 1.0),
            idle_agent_minutes=idle / 60.0,
            starved_lists=sorted(starved),
            reservations=self.reservations,
        )
