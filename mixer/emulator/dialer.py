"""The simulated dialer: agents on shifts reserve numbers from the lists the mixer tunes.

Event-driven, so a simulated week of 100 lists costs the work of its calls, not of its
seconds: one heap of timed events (shift starts and ends, calls ending, numbers becoming
valid, refills), processed up to the instant asked for. Idle agents are woken only by
something that can make a list reservable (a call ending, a validFrom reached, numbers
added, a list resumed or re-weighted through the API).

Choice of list, as QM's mixer does it: a weighted random draw (seeded ``random.Random``)
among the lists that are open (not paused), have a positive weight and can reserve now.
Policy ``"oracle"`` is the bound the simulator compares against: the reservable list with
the earliest deadline that a call started now can still meet (``now + shortest handling
time <= deadline``); lists past that point and lists without a deadline only when no list
can still be served on time. Policy ``"edf"`` is the older reference that keeps serving a
passed deadline first (ties go to the higher weight in both).

Why the oracle bounds the on-time ratio for equal-length calls: a number counts only if it
is final by its list's deadline. A call on a number that can no longer finish on time
earns nothing, so serving one while a number that can still finish on time waits is never
better. Among the numbers that can, serving the earliest deadline first is optimal by the
exchange argument behind Jackson's rule: swapping a later-deadline call ahead of an
earlier one never makes a late number on time and can make the earlier one late. With
random handling times and reschedules it is a strong reference, not an exact optimum.
"""

from __future__ import annotations

import heapq
import itertools
import math
import operator
import random
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import Any

from mixer.emulator.scenario import AgentShift, Scenario
from mixer.emulator.state import CallList, EmulatorState, Number

__all__ = ["POLICIES", "Dialer", "DialerMetrics", "ListKey"]

ListKey = tuple[str, str]  # (campaign, list name)
POLICIES = ("weighted", "oracle", "edf")

# A day counts towards starvation only when agents made at least this many reservation
# decisions in it, so one unlucky draw on a quiet day does not mark a list as starved.
STARVATION_MIN_DECISIONS = 20

_WEIGHT = operator.attrgetter("weight")
_SHIFT_START, _SHIFT_END, _CALL_DONE, _WAKE, _REFILL = range(5)


@dataclass(frozen=True, slots=True)
class DialerMetrics:
    """What the simulated dialer achieved; keys are ``(campaign, list)``.

    ``on_time_ratio``: numbers of lists with a deadline that reached a final status by
    their list's deadline (those already final at the start included), over all numbers
    of those lists (None: no list has a deadline). ``completed_per_list`` counts only
    what the dialer completed.
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
    first_call_waits: tuple[float, ...] = ()
    max_list_gap_hours: float = 0.0
    max_gap_list: ListKey | None = None

    @property
    def wait_to_first_call_minutes(self) -> dict[str, float] | None:
        """Mean and 90th percentile of the minutes from a number's arrival (a refill during
        the run) to its first call; numbers never called count until the end of the run.
        None when no number arrived during the run."""
        waits = sorted(self.first_call_waits)
        if not waits:
            return None
        p90 = waits[max(math.ceil(0.9 * len(waits)) - 1, 0)]
        return {"mean": sum(waits) / len(waits) / 60.0, "p90": p90 / 60.0}

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
            "wait_to_first_call_minutes": self.wait_to_first_call_minutes,
            "max_list_gap_hours": self.max_list_gap_hours,
            "max_gap_list": None if self.max_gap_list is None else list(self.max_gap_list),
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
        self._wake_times: set[tuple[float, ListKey]] = set()
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
        self._day = -1
        # Lists open and reservable now, per campaign, in state order; rebuilt when dirty.
        self._reservable: dict[str, list[CallList]] = {}
        self._dirty = True
        # Candidacy is counted in intervals, not per decision: cumulative decisions per
        # campaign, the value when each candidate list entered, and at the day's start.
        self._decisions: Counter[str] = Counter()
        self._since: dict[ListKey, int] = {}
        self._day_start_decisions: Counter[str] = Counter()
        # Speed to lead: arrival time of each number a refill added, until its first call.
        self._arrivals: dict[int, float] = {}
        self._first_call_waits: list[float] = []
        # List gaps: working seconds each candidate list has waited since its last pick,
        # the campaign's decision count when it was last a candidate, the last decision.
        self._waited: dict[ListKey, float] = {}
        self._candidate_at: dict[ListKey, int] = {}
        self._last_decision: dict[str, float] = {}
        self._max_gap: tuple[float, ListKey | None] = (0.0, None)

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
        for call_list in state.lists():  # numbers final before the start are on time
            if call_list.completed and self.now <= call_list.deadline_ts:
                self.on_time[call_list.key] = call_list.completed
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
                self._wake_times.discard((when, payload.key))
                self._admit(payload)
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
                    self._refill(call_list, count)
        self.now = max(self.now, limit)

    def _refill(self, call_list: CallList, count: int) -> None:
        """Numbers arrive: remember when, for the speed-to-lead figure."""
        before = set(call_list.numbers) if call_list.numbers else set()
        self.state.add_blank_numbers(call_list, count)
        for number_id in call_list.numbers:
            if number_id not in before:
                self._arrivals[number_id] = self.now

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

    def _roll_day(self) -> _DayCounts:
        """The counts of the local day at ``now``; closes the previous day when it ended."""
        now = self.now
        low, high = self._day_range
        if not low <= now < high:
            self._close_day()
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

    def _close_day(self) -> None:
        counts = self._days.get(self._day)
        if counts is None:
            return
        for key, since in self._since.items():
            counts.candidate[key] += self._decisions[key[0]] - since
            self._since[key] = self._decisions[key[0]]
        for campaign, total in self._decisions.items():
            counts.decisions[campaign] = total - self._day_start_decisions[campaign]
        self._day_start_decisions = Counter(self._decisions)

    def _leave(self, call_list: CallList) -> None:
        since = self._since.pop(call_list.key, None)
        if since is not None:
            counts = self._roll_day()
            counts.candidate[call_list.key] += self._decisions[call_list.campaign] - since

    def _refresh(self) -> None:
        """Rebuild the reservable lists after something changed (state, time, wake)."""
        now = self.now
        reservable: dict[str, list[CallList]] = {}
        for campaign, lists in self.state.campaigns.items():
            current = reservable[campaign] = []
            for call_list in lists.values():
                if not call_list.paused and call_list.weight > 0 and call_list.can_reserve(now):
                    current.append(call_list)
                    if call_list.key not in self._since:
                        self._since[call_list.key] = self._decisions[campaign]
                elif call_list.key in self._since:
                    self._leave(call_list)
        self._reservable = reservable
        self._dirty = False

    def _admit(self, call_list: CallList) -> None:
        """One list may have become reservable (a validFrom reached): no full rebuild."""
        if self._dirty or call_list.key in self._since:
            return
        if not call_list.paused and call_list.weight > 0 and call_list.can_reserve(self.now):
            self._reservable.setdefault(call_list.campaign, []).append(call_list)
            self._since[call_list.key] = self._decisions[call_list.campaign]

    def _try_reserve(self, agent: _Agent) -> None:
        now = self.now
        if agent.shift_end is None or now >= agent.shift_end:
            agent.shift_end = None
            return
        counts = self._roll_day()
        if self._dirty:
            self._refresh()
        reservable = self._reservable
        campaigns = agent.campaigns if agent.campaigns is not None else tuple(reservable)
        if len(campaigns) == 1:
            candidates = reservable.get(campaigns[0], [])
        else:
            candidates = [c for name in campaigns for c in reservable.get(name, ())]
        if not candidates:
            agent.idle_since = now
            self._idle[id(agent)] = agent
            return
        chosen = self._pick(candidates)
        self._note_gaps(campaigns, candidates, chosen)
        for campaign in campaigns:
            self._decisions[campaign] += 1
        number = chosen.reserve(now)
        if number.attempts == 1 and number.id in self._arrivals:
            self._first_call_waits.append(now - self._arrivals.pop(number.id))
        if not chosen.can_reserve(now):
            self._reservable[chosen.campaign].remove(chosen)
            self._leave(chosen)
            head = chosen.next_valid_from()
            if head is not None:
                self._wake_at(head, chosen)  # its next number becomes callable later
        counts.pulled.add(chosen.key)
        self.reservations += 1
        self.pulls[chosen.key] += 1
        agent.busy = True
        low, high = self._handling
        handling = low if low == high else self.rng.uniform(low, high)
        self._push(now + handling, _CALL_DONE, (agent, chosen, number))

    def _note_gaps(
        self, campaigns: tuple[str, ...], candidates: list[CallList], chosen: CallList
    ) -> None:
        """Credit every candidate list with the working time since the campaign's previous
        decision, if it was a candidate then too; the chosen list's wait ends here.

        While a list can be picked and an agent is on shift, some agent decides at least
        once per longest handling time (each call ends in a decision): a longer spacing
        means nobody was working (or nothing was reservable), which is not a gap.
        """
        now = self.now
        limit = self._handling[1] + 1.0
        credit: dict[str, float] = {}
        for campaign in campaigns:
            since = now - self._last_decision.get(campaign, -math.inf)
            credit[campaign] = since if since <= limit else 0.0
            self._last_decision[campaign] = now
        waited, marks, decisions = self._waited, self._candidate_at, self._decisions
        for call_list in candidates:
            key = call_list.key
            count = decisions[key[0]]
            if marks.get(key) == count:
                waited[key] = waited.get(key, 0.0) + credit[key[0]]
            marks[key] = count + 1
        gap = waited.pop(chosen.key, 0.0)
        if gap > self._max_gap[0]:
            self._max_gap = (gap, chosen.key)

    def _pick(self, candidates: list[CallList]) -> CallList:
        if self.policy == "oracle":
            reachable = self.now + self._handling[0]
            return min(
                candidates,
                key=lambda c: (
                    c.deadline_ts < reachable,
                    c.deadline_ts,
                    -c.weight,
                    c.name,
                ),
            )
        if self.policy == "edf":
            return min(candidates, key=lambda c: (c.deadline_ts, -c.weight, c.name))
        cumulative = list(accumulate(map(_WEIGHT, candidates)))
        index = bisect_right(cumulative, self.rng.random() * cumulative[-1])
        return candidates[min(index, len(candidates) - 1)]

    def _call_done(self, agent: _Agent, call_list: CallList, number: Number) -> None:
        draw = self.rng.random()
        if (
            self._p_success <= draw < self._p_reschedule
            and number.attempts < self.scenario.max_attempts
        ):
            when = self.now + self._reschedule_after
            call_list.reschedule(number, when)
            self._wake_at(when, call_list)
        else:
            call_list.finalize(number)
            self.completions[call_list.key] += 1
            if call_list.deadline is not None and self.now <= call_list.deadline_ts:
                self.on_time[call_list.key] += 1
        agent.busy = False
        self._try_reserve(agent)

    def _wake_at(self, when: float, call_list: CallList) -> None:
        if (when, call_list.key) not in self._wake_times:
            self._wake_times.add((when, call_list.key))
            self._push(when, _WAKE, call_list)

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
        self._dirty = True
        now = self.now
        for call_list in self.state.lists():
            head = call_list.next_valid_from()
            if head is not None and head > now:
                self._wake_at(head, call_list)
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
        self._roll_day()  # closes the last day if the dialer has passed its midnight
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
        gap, gap_list = self._max_gap
        for key, waited in self._waited.items():  # still waiting at the end
            if waited > gap:
                gap, gap_list = waited, key
        waits = self._first_call_waits + [self.now - t for t in self._arrivals.values()]
        return DialerMetrics(
            first_call_waits=tuple(waits),
            max_list_gap_hours=gap / 3600.0,
            max_gap_list=gap_list,
            completed=sum(self.completions.values()),
            completed_per_list=dict(self.completions),
            pulls_per_list=dict(self.pulls),
            on_time_per_list=dict(self.on_time),
            on_time_ratio=None if not deadline_lists else (on_time / total if total else 1.0),
            idle_agent_minutes=idle / 60.0,
            starved_lists=sorted(starved),
            reservations=self.reservations,
        )
