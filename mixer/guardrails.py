"""From a campaign snapshot to a safe plan: memory reconciliation, evaluation, guardrails.

Pure: the cycle hands in the snapshot, the mixer's memory, the history and *now*, and
gets back what to write, what to log and the memory to persist. ``plan_campaign`` is the
one function the daemon, ``once``, the simulator and ``amo-mixer test`` all call.

Order of business for each list:

1. reconcile memory — a list seen for the first time gets its baseline; a weight or pause
   that differs from what the mixer last wrote (or from the baseline, when the mixer never
   wrote) is a human's doing: adopted as the new baseline, held for ``manual_hold``;
2. evaluate the rules from the baseline (``mixer.engine.evaluate``);
3. guardrails — manual hold, only resume what the mixer paused (or a standby list),
   a list that ends paused keeps its weight, integral weights within bounds,
   ``max_step``, ``max_changes_per_day``;
4. campaign guard — a plan that leaves no unpaused reservable list, where there was one,
   is not applied, unless every list it pauses was paused by a rule that declares
   ``pauses_campaign: true`` (an intended campaign-wide pause, such as office hours).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from mixer.engine.evaluate import CampaignEvaluation, ListEvaluation, evaluate
from mixer.engine.facts import EngineSettings
from mixer.engine.memory import HistorySample, ListMemory
from mixer.engine.rules import CampaignRules
from mixer.snapshot import CampaignSnapshot, ListSnapshot, ListUpdate

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
class Decision:
    """One list whose desired state differs from its current state."""

    list: str
    before_weight: int
    before_paused: bool
    after_weight: int
    after_paused: bool
    rules: tuple[str, ...]
    reason: str
    facts: Mapping[str, object]
    limited_by: tuple[str, ...] = ()  # guardrails that trimmed the rules' wish


@dataclass(frozen=True, slots=True)
class Override:
    """A human changed a list: what the mixer expected and what it found."""

    list: str
    expected_weight: int
    expected_paused: bool
    found_weight: int
    found_paused: bool
    hold_until: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class GuardrailStop:
    """A plan that was not applied, and why."""

    guardrail: str
    lists: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class ListOutcome:
    """What the guardrails made of one list's evaluation (every list, changed or not)."""

    list: str
    weight: int
    paused: bool
    notes: tuple[str, ...]  # one sentence per guardrail that acted


@dataclass(frozen=True)
class CampaignPlan:
    """The safe plan for one campaign, and the memory to keep after it."""

    campaign: str
    now: datetime
    snapshot: CampaignSnapshot
    evaluation: CampaignEvaluation
    outcomes: Mapping[str, ListOutcome]
    decisions: tuple[Decision, ...]
    updates: tuple[ListUpdate, ...]
    overrides: tuple[Override, ...]
    stops: tuple[GuardrailStop, ...]
    memory: Mapping[str, ListMemory]  # reconciled + new rule timers, before any write
    local_date: str = field(default="")

    @property
    def stopped(self) -> bool:
        return bool(self.stops)

    def memory_after(self, applied: bool | Collection[str]) -> dict[str, ListMemory]:
        """The memory to persist: ``applied`` is True, False, or the names written."""
        if applied is True:
            written: Collection[str] = {u.name for u in self.updates}
        elif applied is False:
            written = ()
        else:
            written = applied
        result = dict(self.memory)
        for update in self.updates:
            if update.name not in written:
                continue
            before = self.snapshot.get(update.name)
            previous = result[update.name]
            result[update.name] = _after_write(previous, before, update, self.now, self.local_date)
        return result


def plan_campaign(
    rules: CampaignRules,
    snapshot: CampaignSnapshot,
    memory: Mapping[str, ListMemory],
    history: Mapping[str, Sequence[HistorySample]],
    now: datetime,
    settings: EngineSettings,
    limits: Limits,
) -> CampaignPlan:
    """Reconcile, evaluate and guard one campaign; no I/O."""
    reconciled, overrides = reconcile_memory(rules, snapshot, memory, now, limits)
    evaluation = evaluate(rules, snapshot, reconciled, history, now, settings)
    local_date = now.astimezone(settings.timezone).date().isoformat()

    outcomes: dict[str, ListOutcome] = {}
    decisions: list[Decision] = []
    timers: dict[str, ListMemory] = dict(reconciled)
    for item in snapshot.lists:
        mem = reconciled[item.name]
        evaluated = evaluation.lists[item.name]
        if evaluated.rule_memory != mem.rules:  # most cycles no timer moves: keep mem itself
            timers[item.name] = replace(mem, rules=dict(evaluated.rule_memory))
        outcome = guard_list(item, evaluated, mem, now, local_date, limits)
        outcomes[item.name] = outcome
        if (outcome.weight, outcome.paused) != (item.weight, item.paused):
            decisions.append(_decision(item, evaluated, outcome))

    stops = _campaign_stops(snapshot, outcomes, evaluation)
    updates: tuple[ListUpdate, ...] = ()
    if not stops:
        updates = tuple(
            ListUpdate(name=d.list, weight=d.after_weight, paused=d.after_paused) for d in decisions
        )
    return CampaignPlan(
        campaign=snapshot.campaign,
        now=now,
        snapshot=snapshot,
        evaluation=evaluation,
        outcomes=outcomes,
        decisions=tuple(decisions),
        updates=updates,
        overrides=tuple(overrides),
        stops=stops,
        memory=timers,
        local_date=local_date,
    )


def reconcile_memory(
    rules: CampaignRules,
    snapshot: CampaignSnapshot,
    memory: Mapping[str, ListMemory],
    now: datetime,
    limits: Limits,
) -> tuple[dict[str, ListMemory], list[Override]]:
    """Give new lists a baseline; detect and adopt human changes.

    Lists in memory that are missing from the snapshot keep their memory, so a list that
    vanishes for a cycle does not lose its baseline.
    """
    result = dict(memory)
    overrides: list[Override] = []
    for item in snapshot.lists:
        pinned = rules.metadata_for(item.name).weight
        known = memory.get(item.name)
        if known is None:
            result[item.name] = ListMemory(
                base_weight=pinned if pinned is not None else item.weight,
                human_paused=item.paused,
                first_seen=now,
                last_written_weight=item.weight,
                last_written_paused=item.paused,
            )
            continue
        if known.last_written_weight is not None and known.last_written_paused is not None:
            expected = (known.last_written_weight, known.last_written_paused)
        else:
            expected = (known.base_weight, known.human_paused or known.paused_by_mixer)
        found = (item.weight, item.paused)
        if found == expected:
            if pinned is not None and pinned != known.base_weight:
                result[item.name] = replace(known, base_weight=pinned)
            continue
        hold_until = now + limits.manual_hold
        result[item.name] = replace(
            known,
            base_weight=pinned if pinned is not None else item.weight,
            human_paused=item.paused,
            paused_by_mixer=False,
            last_written_weight=item.weight,
            last_written_paused=item.paused,
            manual_hold_until=hold_until,
        )
        overrides.append(
            Override(
                list=item.name,
                expected_weight=expected[0],
                expected_paused=expected[1],
                found_weight=item.weight,
                found_paused=item.paused,
                hold_until=hold_until,
                reason=_override_reason(expected, found, limits.manual_hold),
            )
        )
    return result, overrides


def guard_list(
    item: ListSnapshot,
    evaluated: ListEvaluation,
    mem: ListMemory,
    now: datetime,
    local_date: str,
    limits: Limits,
) -> ListOutcome:
    """Apply the per-list guardrails to the rules' wish for one list."""
    current_weight, current_paused = item.weight, item.paused
    if mem.in_manual_hold(now):
        assert mem.manual_hold_until is not None
        until = mem.manual_hold_until.isoformat(timespec="minutes")
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
        today = (
            mem.changes_today
            if mem.changes_day and mem.changes_day.isoformat() == local_date
            else 0
        )
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


def _campaign_stops(
    snapshot: CampaignSnapshot, outcomes: Mapping[str, ListOutcome], evaluation: CampaignEvaluation
) -> tuple[GuardrailStop, ...]:
    before = [i.name for i in snapshot.lists if not i.paused and i.can_reserve]
    after = [i.name for i in snapshot.lists if not outcomes[i.name].paused and i.can_reserve]
    if before and not after and not _intended_campaign_pause(before, evaluation):
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


def _intended_campaign_pause(paused: Sequence[str], evaluation: CampaignEvaluation) -> bool:
    """Every list the plan pauses was paused by a rule that declares ``pauses_campaign``
    (office hours on a campaign of office-hours lists): the whole campaign closing is the
    operator's intent, not an accident the guardrail must catch."""
    for name in paused:
        evaluated = evaluation.lists.get(name)
        if evaluated is None or not any(
            rule.pauses_campaign and rule.paused for rule in evaluated.fired_rules
        ):
            return False
    return True


def _decision(item: ListSnapshot, evaluated: ListEvaluation, outcome: ListOutcome) -> Decision:
    reason = evaluated.reason
    if outcome.notes:
        reason = f"{reason} Guardrails: {'; '.join(outcome.notes)}."
    return Decision(
        list=item.name,
        before_weight=item.weight,
        before_paused=item.paused,
        after_weight=outcome.weight,
        after_paused=outcome.paused,
        rules=evaluated.fired,
        reason=reason,
        facts=dict(evaluated.facts),
        limited_by=outcome.notes,
    )


def _after_write(
    previous: ListMemory,
    before: ListSnapshot | None,
    update: ListUpdate,
    now: datetime,
    local_date: str,
) -> ListMemory:
    was_paused = before.paused if before is not None else previous.human_paused
    if update.paused and not was_paused:
        paused_by_mixer = True
    elif not update.paused:
        paused_by_mixer = False
    else:
        paused_by_mixer = previous.paused_by_mixer
    same_day = previous.changes_day is not None and previous.changes_day.isoformat() == local_date
    return replace(
        previous,
        last_written_weight=update.weight,
        last_written_paused=update.paused,
        paused_by_mixer=paused_by_mixer,
        last_change_at=now,
        changes_day=datetime.fromisoformat(local_date).date(),
        changes_today=(previous.changes_today if same_day else 0) + 1,
    )


def _override_reason(expected: tuple[int, bool], found: tuple[int, bool], hold: timedelta) -> str:
    parts = []
    if expected[0] != found[0]:
        parts.append(f"weight {expected[0]} → {found[0]}")
    if expected[1] != found[1]:
        parts.append("paused" if found[1] else "resumed")
    minutes = int(hold.total_seconds() // 60)
    return (
        f"Changed outside the mixer ({', '.join(parts)}): adopted as the new baseline, "
        f"left alone for {minutes} min."
    )
