"""The guardrails: what the rules may not do, whatever they say.

Pure. Per list (``guard_list``): a manual hold leaves the list alone; only lists the
mixer paused (or standby lists) are resumed; a list that ends paused keeps its weight;
weights are integers within bounds; ``max_step`` and ``max_changes_per_day`` hold.
Per campaign (``campaign_stops``): a plan that leaves no unpaused reservable list, where
there was one, is not applied, unless every list it pauses was paused by a rule that
declares ``pauses_campaign: true`` (an intended campaign-wide pause, such as office hours).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, NamedTuple

from mixer.engine.memory import ListMemory
from mixer.snapshot import CampaignSnapshot, ListSnapshot

if TYPE_CHECKING:  # the limits are built before the first QM read; evaluation after it
    from mixer.engine.evaluate import ListEvaluation

NO_RESERVABLE_LIST = "no-reservable-list"


@dataclass(frozen=True, slots=True)
class Limits:
    """The guardrail settings the pure core needs (built from the config by the cycle)."""

    min_weight: int = 1
    max_weight: int = 100
    manual_hold: timedelta = timedelta(hours=1)
    max_step: int | None = None
    max_step_percent: float | None = None
    max_changes_per_day: int | None = None


@dataclass(frozen=True, slots=True)
class GuardrailStop:
    """A plan that was not applied, and why."""

    guardrail: str
    lists: tuple[str, ...]
    reason: str


class ListOutcome(NamedTuple):
    """What the guardrails made of one list's evaluation (every list, changed or not; a
    tuple: one is made per list per cycle)."""

    list: str
    weight: int
    paused: bool
    notes: tuple[str, ...]  # one sentence per guardrail that acted


def guard_list(
    item: ListSnapshot,
    evaluated: ListEvaluation,
    mem: ListMemory,
    now: datetime,
    local_date: date,
    limits: Limits,
    zone: tzinfo = UTC,
) -> ListOutcome:
    """Apply the per-list guardrails to the rules' wish for one list (``zone``: the QM
    time zone, the one notes for people speak in)."""
    current_weight, current_paused = item.weight, item.paused
    if mem.in_manual_hold(now):
        assert mem.manual_hold_until is not None
        until = f"{mem.manual_hold_until.astimezone(zone):%Y-%m-%d %H:%M} {zone}"
        return ListOutcome(
            item.name, current_weight, current_paused, (f"manual hold until {until}",)
        )

    notes: list[str] = []
    paused = evaluated.paused
    if current_paused and not paused and not (mem.paused_by_mixer or evaluated.standby):
        paused = True
        notes.append("not resumed: a human paused it and it is not a standby list")
    if paused:
        # Out of the mix, a list's weight matters only once it resumes, and the resume
        # writes it: changing it now would be a write and a decision for nothing. A pause
        # is written with the current weight, brought within bounds (every write is).
        weight = current_weight if current_paused else clamp_weight(current_weight, limits)
    elif evaluated.weight == current_weight and paused == current_paused:
        # No rule moved it: the limits bound what rules produce, not what a human set
        # (a weight 0 or 500 stays as it is). A resume is a write: its weight is bounded.
        weight = current_weight
    else:
        weight = clamp_weight(evaluated.weight, limits)
        if weight != evaluated.weight:
            notes.append(
                f"weight {evaluated.weight:g} kept to an integer in [{limits.min_weight}, "
                f"{limits.max_weight}]: {weight}"
            )

    step = max_step_for(current_weight, limits)
    if not paused and step is not None and abs(weight - current_weight) > step:
        weight = current_weight + step if weight > current_weight else current_weight - step
        # A current weight outside the bounds (set by a human) comes back within them at once.
        weight = max(limits.min_weight, min(limits.max_weight, weight))
        notes.append(f"max_step: weight moves by at most {step} per cycle")

    if (weight, paused) != (current_weight, current_paused) and limits.max_changes_per_day:
        today = mem.changes_today if mem.changes_day == local_date else 0
        if today >= limits.max_changes_per_day:
            notes.append(f"max_changes_per_day: {today} changes already today")
            return ListOutcome(item.name, current_weight, current_paused, tuple(notes))
    return ListOutcome(item.name, weight, paused, tuple(notes))


def clamp_weight(value: float, limits: Limits) -> int:
    """Round half up, then keep within ``[min_weight, max_weight]``; NaN → min_weight."""
    if math.isnan(value):
        return limits.min_weight
    if math.isinf(value):
        return limits.max_weight if value > 0 else limits.min_weight
    rounded = math.floor(value + 0.5)
    return max(limits.min_weight, min(limits.max_weight, rounded))


def max_step_for(current_weight: int, limits: Limits) -> int | None:
    """The largest weight move allowed this cycle, or None for no limit."""
    if limits.max_step is None and limits.max_step_percent is None:
        return None  # the default: asked for every list every cycle
    steps: list[int] = []
    if limits.max_step is not None:
        steps.append(limits.max_step)
    if limits.max_step_percent is not None:
        steps.append(max(1, math.ceil(current_weight * limits.max_step_percent / 100)))
    return min(steps) if steps else None


def campaign_stops(
    snapshot: CampaignSnapshot,
    outcomes: Mapping[str, ListOutcome],
    evaluated: Mapping[str, ListEvaluation] | None = None,
) -> tuple[GuardrailStop, ...]:
    # A list whose listState is not understood is never counted as reservable.
    known = [i for i in snapshot.lists if i.state_known and i.can_reserve]
    before = [i.name for i in known if not i.paused]
    after = [i.name for i in known if not outcomes[i.name].paused]
    if before and not after and not _intended_campaign_pause(before, evaluated or {}):
        return (
            GuardrailStop(
                guardrail=NO_RESERVABLE_LIST,
                lists=tuple(before),
                reason=(
                    "The plan would pause every reservable list ("
                    + ", ".join(before)
                    + "), leaving agents nothing to call: not applied."
                ),
            ),
        )
    return ()


def _intended_campaign_pause(
    paused: Sequence[str], evaluated: Mapping[str, ListEvaluation]
) -> bool:
    """Every list the plan pauses was paused by a rule that declares ``pauses_campaign``
    (office hours on a campaign of office-hours lists): the whole campaign closing is the
    operator's intent, not an accident the guardrail must catch."""
    for name in paused:
        evaluation = evaluated.get(name)
        if evaluation is None or not any(
            rule.pauses_campaign and rule.paused for rule in evaluation.fired_rules
        ):
            return False
    return True
