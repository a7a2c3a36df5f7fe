"""What the emulated QM server holds: campaigns, call lists and their numbers.

Built for speed, because the simulator reads 100 lists every simulated minute for a week:
times are float epoch seconds inside, each list keeps its unpulled numbers in a heap keyed
by ``validFrom`` (stale heap entries are skipped lazily), and the counters QM reports are
kept incrementally instead of being recounted.

Counter semantics (documented in docs/emulator.md): ``nNumbersAdded`` counts the list's
numbers; ``nNumbersPulled`` counts numbers that are in a call or final (a rescheduled number
goes back to the list and counts as pulled again when it is reserved again);
``nNumbersCompleted`` counts numbers with a final status. So completed <= pulled <= added.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from zoneinfo import ZoneInfo

from mixer.deadline_tag import find_deadline_tag
from mixer.emulator.scenario import Scenario, parse_local_time

__all__ = ["CallList", "EmulatorState", "Number", "NumberStatus"]

_IMMEDIATELY = -math.inf


class NumberStatus(Enum):
    PENDING = "pending"  # waiting in the list (maybe not valid yet)
    RESERVED = "reserved"  # an agent is on it
    FINAL = "final"  # success or final failure


@dataclass(slots=True)
class Number:
    id: int
    number: str
    valid_from: float  # epoch seconds; -inf = blank (callable at once)
    valid_from_text: str  # as QM echoes it: "" or "YYYY-MM-DD HH:MM:SS"
    attrs: dict[str, str] = field(default_factory=dict)
    status: NumberStatus = NumberStatus.PENDING
    attempts: int = 0
    version: int = 0

    def to_wire(self) -> dict[str, object]:
        return {
            "numberId": str(self.id),
            "number": self.number,
            "validFrom": self.valid_from_text,
            "attrs": dict(self.attrs),
        }


class CallList:
    """One AMO call list: mixer settings, counters and the queue of unpulled numbers."""

    def __init__(
        self,
        campaign: str,
        name: str,
        *,
        tz: ZoneInfo,
        notes: str = "",
        weight: int = 1,
        paused: bool = False,
        deadline: datetime | None = None,
        tags: tuple[str, ...] = (),
        standby: bool = False,
    ) -> None:
        self.campaign = campaign
        self.name = name
        self.tz = tz
        self.weight = weight
        self.paused = paused
        self.tags = tags
        self.standby = standby
        self._fixed_deadline = deadline
        self.deadline: datetime | None = deadline
        self.notes = ""
        self.set_notes(notes)
        self.numbers: dict[int, Number] = {}
        self.added = 0
        self.pulled = 0
        self.completed = 0
        self.last_pull: float | None = None
        self._last_pull_text = ""
        self._queue: list[tuple[float, int, int, int]] = []  # (validFrom, seq, id, version)
        self._seq = itertools.count()

    @property
    def key(self) -> tuple[str, str]:
        return (self.campaign, self.name)

    @property
    def deadline_ts(self) -> float:
        return math.inf if self.deadline is None else self.deadline.timestamp()

    def set_notes(self, notes: str) -> None:
        """Notes change; a ``deadline: ...`` tag in them counts unless the scenario set one."""
        self.notes = notes
        if self._fixed_deadline is not None:
            return
        moment = find_deadline_tag(notes)
        self.deadline = None if moment is None else moment.replace(tzinfo=self.tz)

    # --- the numbers queue --------------------------------------------------------------

    def _enqueue(self, number: Number) -> None:
        number.version += 1
        heapq.heappush(self._queue, (number.valid_from, next(self._seq), number.id, number.version))

    def _head(self) -> tuple[float, int, int, int] | None:
        queue = self._queue
        while queue:
            _, _, number_id, version = queue[0]
            number = self.numbers.get(number_id)
            if (
                number is not None
                and number.version == version
                and number.status is NumberStatus.PENDING
            ):
                return queue[0]
            heapq.heappop(queue)
        return None

    def can_reserve(self, now: float) -> bool:
        """Some number is unpulled and valid at ``now`` (QM's ``dialerCanReserve``)."""
        head = self._head()
        return head is not None and head[0] <= now

    def next_valid_from(self) -> float | None:
        """When the earliest unpulled number becomes callable (None: nothing unpulled)."""
        head = self._head()
        return None if head is None else head[0]

    def reserve(self, now: float) -> Number:
        """Take the next callable number (FIFO by validFrom). Call only if can_reserve."""
        head = self._head()
        assert head is not None
        assert head[0] <= now
        heapq.heappop(self._queue)
        number = self.numbers[head[2]]
        number.status = NumberStatus.RESERVED
        number.attempts += 1
        self.pulled += 1
        self.last_pull = now
        self._last_pull_text = ""
        return number

    def reschedule(self, number: Number, valid_from: float) -> None:
        """Back to the list, callable again from ``valid_from``: no longer pulled."""
        number.status = NumberStatus.PENDING
        number.valid_from = valid_from
        number.valid_from_text = self.format_time(valid_from)
        self.pulled -= 1
        self._enqueue(number)

    def finalize(self, number: Number) -> None:
        number.status = NumberStatus.FINAL
        self.completed += 1

    def add_number(self, number: Number, *, final: bool = False) -> None:
        self.numbers[number.id] = number
        self.added += 1
        if final:
            number.status = NumberStatus.FINAL
            number.attempts = 1
            self.pulled += 1
            self.completed += 1
        else:
            self._enqueue(number)

    def update_number(
        self,
        number: Number,
        *,
        phone: str | None,
        valid_from: tuple[float, str] | None,
        attrs: dict[str, str] | None,
    ) -> None:
        """An API edit of a known number; a new validFrom re-queues it if it is unpulled."""
        if phone is not None:
            number.number = phone
        if attrs is not None:
            number.attrs = attrs
        if valid_from is not None:
            number.valid_from, number.valid_from_text = valid_from
            if number.status is NumberStatus.PENDING:
                self._enqueue(number)

    # --- what QM reports ----------------------------------------------------------------

    def format_time(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.tz).strftime("%Y-%m-%d %H:%M:%S")

    @property
    def dialer_state(self) -> str:
        return "completed" if self.completed >= self.added else "open"

    def to_wire(self, now: float) -> dict[str, object]:
        if self.last_pull is not None and not self._last_pull_text:
            self._last_pull_text = self.format_time(self.last_pull)
        return {
            "listName": self.name,
            "listNotes": self.notes,
            "weight": self.weight,
            "listState": "paused" if self.paused else "open",
            "dialerState": self.dialer_state,
            "dialerCanReserve": "open" if self.can_reserve(now) else "closed",
            "nNumbersAdded": self.added,
            "nNumbersCompleted": self.completed,
            "nNumbersPulled": self.pulled,
            "lastPull": self._last_pull_text,
        }


class EmulatorState:
    """Every campaign and list of the emulated server. Not thread-safe: the app locks."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.campaigns: dict[str, dict[str, CallList]] = {}
        self._next_id = 1
        self._used_ids: set[int] = set()
        self.on_change: Callable[[], None] = lambda: None  # the dialer wakes idle agents

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> EmulatorState:
        """Lists and numbers as the scenario describes them at its start."""
        state = cls(scenario.tz)
        start_ts = scenario.start.timestamp()
        explicit: dict[tuple[str, str], int] = {}
        for campaign, spec in scenario.campaigns.items():
            for item in spec.lists:
                if item.first_number_id is not None:
                    explicit[(campaign, item.name)] = item.first_number_id
                    state._used_ids.update(
                        range(item.first_number_id, item.first_number_id + item.numbers)
                    )
        for campaign, spec in scenario.campaigns.items():
            state.campaigns[campaign] = {}
            for item in spec.lists:
                deadline = item.deadline_local()
                call_list = CallList(
                    campaign,
                    item.name,
                    tz=state.tz,
                    notes=item.notes_with_deadline(),
                    weight=item.weight,
                    paused=item.paused,
                    deadline=None if deadline is None else scenario.local(deadline),
                    tags=tuple(item.tags),
                    standby=item.standby,
                )
                first = explicit.get((campaign, item.name))
                for index in range(item.numbers):
                    number_id = first + index if first is not None else state.allocate_id()
                    call_list.add_number(
                        Number(number_id, f"0{number_id:09d}", _IMMEDIATELY, ""),
                        final=index < item.completed,
                    )
                if item.completed:
                    call_list.last_pull = start_ts
                state.campaigns[campaign][item.name] = call_list
        state._next_id = max([*state._used_ids, 0]) + 1
        return state

    def allocate_id(self) -> int:
        while self._next_id in self._used_ids:
            self._next_id += 1
        number_id = self._next_id
        self._used_ids.add(number_id)
        self._next_id += 1
        return number_id

    def lists(self) -> Iterator[CallList]:
        for lists in self.campaigns.values():
            yield from lists.values()

    def find_list(self, campaign: str, name: str) -> CallList | None:
        return self.campaigns.get(campaign, {}).get(name)

    def create_list(self, campaign: str, name: str) -> CallList:
        """What QM does for an update naming an unknown list: a new, empty list."""
        call_list = CallList(campaign, name, tz=self.tz)
        self.campaigns[campaign][name] = call_list
        return call_list

    def parse_valid_from(self, text: str) -> tuple[float, str]:
        """``""`` = at once; else QM local ``YYYY-MM-DD HH:MM:SS`` (ValueError if not)."""
        if not text.strip():
            return (_IMMEDIATELY, "")
        moment = parse_local_time(text).replace(tzinfo=self.tz)
        return (moment.timestamp(), moment.strftime("%Y-%m-%d %H:%M:%S"))

    def new_number(
        self, call_list: CallList, phone: str, valid_from: tuple[float, str], attrs: dict[str, str]
    ) -> Number:
        number = Number(self.allocate_id(), phone, valid_from[0], valid_from[1], attrs)
        call_list.add_number(number)
        return number

    def add_blank_numbers(self, call_list: CallList, count: int) -> None:
        """A scenario refill: ``count`` new numbers callable at once."""
        for _ in range(count):
            number_id = self.allocate_id()
            call_list.add_number(Number(number_id, f"0{number_id:09d}", _IMMEDIATELY, ""))
        self.on_change()
