"""What the mixer read from QM in one cycle, and what it may write back.

Plain frozen dataclasses: the pure core (facts, rules, guardrails) works on these and
never sees HTTP. The QM client is the only producer of ``CampaignSnapshot``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

# The listState words QM documents; any other is unknown: never written, never reservable.
KNOWN_LIST_STATES = frozenset({"open", "paused"})


@dataclass(frozen=True, slots=True)
class ListSnapshot:
    """One call list as QM reported it. State words are lower-cased; unknown ones kept."""

    name: str
    notes: str
    weight: int
    list_state: str  # "open" | "paused" | anything else = unknown
    dialer_state: str  # "open" | "completed" | unknown
    can_reserve_state: str  # dialerCanReserve: "open" | "closed" | unknown
    added: int
    completed: int
    pulled: int
    last_pull: datetime | None  # timezone-aware, in the QM time zone; None = never pulled

    @property
    def paused(self) -> bool:
        return self.list_state == "paused"

    @property
    def can_reserve(self) -> bool:
        return self.can_reserve_state == "open"

    @property
    def state_known(self) -> bool:
        """``listState`` is one QM documents (else the pause flag cannot be trusted)."""
        return self.list_state in KNOWN_LIST_STATES

    @property
    def completed_state(self) -> bool:
        return self.dialer_state == "completed"


@dataclass(frozen=True, slots=True)
class CampaignSnapshot:
    """Every list of one campaign, read at ``read_at`` (UTC, from the cycle's clock)."""

    campaign: str
    lists: tuple[ListSnapshot, ...]
    read_at: datetime

    def __iter__(self) -> Iterator[ListSnapshot]:
        return iter(self.lists)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(item.name for item in self.lists)

    def get(self, name: str) -> ListSnapshot | None:
        for item in self.lists:
            if item.name == name:
                return item
        return None


@dataclass(frozen=True, slots=True)
class ListUpdate:
    """One entry of ``listUpdates``. ``weight`` and ``paused`` are always sent."""

    name: str
    weight: int
    paused: bool
    notes: str | None = field(default=None)  # None = leave notes unchanged (omitted)
