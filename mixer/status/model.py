"""What the status page, ``/status.json`` and ``amo-mixer status`` show: plain frozen
records, built from what a cycle already computed (or, offline, from the state store and
the decision log), never by reading QM.

Pure: no clock, no file, no network. The daemon builds one ``StatusSnapshot`` per cycle
and publishes it whole; readers only ever see a finished one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from mixer.engine.memory import ListMemory


@dataclass(frozen=True, slots=True)
class ListStatus:
    """One list as the last cycle saw it, and what the mixer made of it."""

    name: str
    weight: int
    paused: bool
    paused_by: str | None  # "mixer", "human" or None when not paused
    base_weight: int
    planned_weight: int
    planned_paused: bool
    progress: float | None
    unpulled: int
    pull_rate_per_hour: float | None
    hours_to_deadline: float | None
    eta_hours: float | None
    on_track: bool | None  # None: no deadline, or no rate known yet
    rules: tuple[str, ...]  # rules that fired this cycle
    note: str  # guardrails' say, a manual hold, …


@dataclass(frozen=True, slots=True)
class HoldStatus:
    """A manual override: the mixer leaves the list alone until ``until``."""

    list: str
    until: str  # ISO 8601, UTC


@dataclass(frozen=True, slots=True)
class TimerStatus:
    """A rule whose ``when`` holds but whose ``for:`` has not run out yet."""

    list: str
    rule: str
    since: str  # ISO 8601, UTC
    fires_at: str
    left_s: float


@dataclass(frozen=True, slots=True)
class DecisionStatus:
    """A change the mixer decided, with its reason."""

    ts: str
    list: str
    weight_before: int
    weight_after: int
    paused_before: bool
    paused_after: bool
    rules: tuple[str, ...]
    reason: str
    applied: bool


@dataclass(frozen=True, slots=True)
class CampaignStatus:
    """One campaign: its last cycle, its lists, holds, timers and recent decisions."""

    name: str
    last_cycle: str | None  # ISO 8601, UTC
    outcome: str | None  # ok | error | guardrail
    error: str | None
    lists_as_of: str | None  # when ``lists`` were read (older than last_cycle after an error)
    lists: tuple[ListStatus, ...] = ()
    holds: tuple[HoldStatus, ...] = ()
    timers: tuple[TimerStatus, ...] = ()
    decisions: tuple[DecisionStatus, ...] = ()  # newest first
    guardrail_stops: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    """Everything the status views show, as of one cycle."""

    generated_at: str | None
    mode: str | None
    rules_hash: str | None
    interval_s: float | None
    cycle_id: str | None
    campaigns: tuple[CampaignStatus, ...] = ()
    source: str = "daemon"  # "daemon" (in-memory) or "log" (amo-mixer status)
    notes: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        result: dict[str, Any] = _finite(asdict(self))
        return result

    def campaign(self, name: str) -> CampaignStatus | None:
        return next((c for c in self.campaigns if c.name == name), None)


EMPTY = StatusSnapshot(
    generated_at=None, mode=None, rules_hash=None, interval_s=None, cycle_id=None
)


def iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat(timespec="seconds")


def on_track(facts: Mapping[str, object]) -> bool | None:
    """Whether a deadline list will be done in time at its current pull rate.

    None when the list has no deadline or no rate is known yet; False once overdue.
    """
    hours = facts.get("hours_to_deadline")
    if not isinstance(hours, int | float):
        return None
    if facts.get("unpulled") == 0:
        return True
    if hours <= 0:
        return False
    behind = facts.get("behind_schedule")
    return None if behind is None else not behind


def active_holds(memory: Mapping[str, ListMemory], now: datetime) -> tuple[HoldStatus, ...]:
    """The lists under a manual hold at ``now``, soonest end first."""
    holds = [
        (mem.manual_hold_until, name)
        for name, mem in memory.items()
        if mem.manual_hold_until is not None and now < mem.manual_hold_until
    ]
    return tuple(HoldStatus(list=name, until=iso(until) or "") for until, name in sorted(holds))


def pending_timers(
    memory: Mapping[str, ListMemory], rules: Iterable[Any], now: datetime
) -> tuple[TimerStatus, ...]:
    """Rules whose condition holds for a list but whose ``for:`` is still running
    (``rules``: anything with ``name`` and ``for_``, as ``Rule`` has)."""
    timed = [(r.name, r.for_) for r in rules if getattr(r, "for_", None)]
    found = []
    for name, mem in memory.items():
        for rule, for_ in timed:
            rm = mem.rules.get(rule)
            if rm is None or rm.holding_since is None or rm.active:
                continue
            fires_at = rm.holding_since + for_
            left = (fires_at - now).total_seconds()
            if left > 0:
                found.append(
                    TimerStatus(
                        list=name,
                        rule=rule,
                        since=iso(rm.holding_since) or "",
                        fires_at=iso(fires_at) or "",
                        left_s=round(left, 1),
                    )
                )
    return tuple(sorted(found, key=lambda t: (t.left_s, t.list, t.rule)))


def decision_from_record(record: Mapping[str, Any]) -> DecisionStatus:
    """A ``decision`` event of the decision log as a ``DecisionStatus``."""
    before = record.get("before") or {}
    after = record.get("after") or {}
    return DecisionStatus(
        ts=str(record.get("ts", "")),
        list=str(record.get("list", "")),
        weight_before=int(before.get("weight") or 0),
        weight_after=int(after.get("weight") or 0),
        paused_before=bool(before.get("paused")),
        paused_after=bool(after.get("paused")),
        rules=tuple(str(r) for r in record.get("rules") or ()),
        reason=str(record.get("reason") or ""),
        applied=bool(record.get("applied")),
    )


def _finite(value: Any) -> Any:
    """NaN and infinities become null: JSON has no spelling for them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def newest_first(decisions: Sequence[DecisionStatus], keep: int) -> tuple[DecisionStatus, ...]:
    return tuple(sorted(decisions, key=lambda d: d.ts, reverse=True)[:keep])
