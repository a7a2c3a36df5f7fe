"""What the mixer remembers about each list between cycles.

The state store persists these; the engine and guardrails read them and return new
values. Keeping the type here (pure) lets the core be tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple


class HistorySample(NamedTuple):
    """Counters of one list at one instant, for rate facts (a tuple: one is made per list
    per cycle, and the store and a replay hold an hour of them)."""

    ts: datetime  # UTC
    pulled: int
    completed: int
    added: int


@dataclass(frozen=True, slots=True)
class RuleMemory:
    """Per (list, rule): timers for ``for:`` and ``cooldown:``."""

    # Since when the rule's `when` has held without interruption (None = not holding).
    holding_since: datetime | None = None
    # Whether the rule was in effect (fired) on the last evaluation.
    active: bool = False
    # When `active` last flipped; a rule with a cooldown cannot flip again before
    # `active_changed_at + cooldown`.
    active_changed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ListMemory:
    """The mixer's memory of one list of one campaign."""

    # The baseline: the weight and pause state a human set.
    base_weight: int
    human_paused: bool
    first_seen: datetime
    # The state the mixer expects to find: what it last wrote, or what it adopted (first
    # sight, a manual override). Anything else found in QM is a human's change.
    last_written_weight: int | None = None
    last_written_paused: bool | None = None
    # True when the list is paused because the mixer paused it (so it may resume it).
    paused_by_mixer: bool = False
    # When the mixer last changed this list (a write, or a planned change in dry-run).
    last_change_at: datetime | None = None
    # A human changed the list: leave it alone until then.
    manual_hold_until: datetime | None = None
    # Changes made on `changes_day` (QM local date), for max_changes_per_day.
    changes_day: date | None = None
    changes_today: int = 0
    rules: dict[str, RuleMemory] = field(default_factory=dict)

    @classmethod
    def first_sight(
        cls, weight: int, paused: bool, now: datetime, pinned_weight: int | None = None
    ) -> ListMemory:
        """A list seen for the first time: its baseline is what QM shows (or the weight
        pinned in ``lists:``), and that state counts as the mixer's own."""
        return cls(
            base_weight=pinned_weight if pinned_weight is not None else weight,
            human_paused=paused,
            first_seen=now,
            last_written_weight=weight,
            last_written_paused=paused,
        )

    def in_manual_hold(self, now: datetime) -> bool:
        return self.manual_hold_until is not None and now < self.manual_hold_until
