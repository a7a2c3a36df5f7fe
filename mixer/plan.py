"""From a campaign snapshot to a safe plan: the one function every path calls.

Pure: the cycle hands in the snapshot, the mixer's memory, the history and *now*, and
gets back what to write, what to log and the memory to persist. ``plan_campaign`` is
what the daemon, ``once``, ``explain``, the simulator and ``amo-mixer test`` all call.

Order of business for each list:

1. reconcile memory (``mixer.reconcile``) — baselines for new lists, human overrides;
2. evaluate the rules from the baseline (``mixer.engine.evaluate``);
3. the per-list guardrails (``mixer.guardrails.guard_list``);
4. the campaign guard (``mixer.guardrails.campaign_stops``).

Each list's ``lists:`` metadata is merged once here and handed to steps 1 and 2.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from mixer.engine.evaluate import CampaignEvaluation, ListEvaluation, evaluate
from mixer.engine.facts import EngineSettings, compute_facts
from mixer.engine.memory import HistorySample, ListMemory
from mixer.engine.metadata import ListMetadata
from mixer.engine.rules import CampaignRules
from mixer.guardrails import GuardrailStop, Limits, ListOutcome, campaign_stops, guard_list
from mixer.identity import recreated_lists, unwritable_lists, without_history_of
from mixer.reconcile import Override, memory_after_write, reconcile_memory
from mixer.snapshot import CampaignSnapshot, ListSnapshot, ListUpdate


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
    overridden: tuple[str, ...] = ()  # fired, but a later rule set all they set again


@dataclass(frozen=True, slots=True)
class RuleError:
    """A rule that raised while evaluating for a list: that list is left as QM has it."""

    list: str
    rule: str
    message: str


@dataclass(frozen=True)
class CampaignPlan:
    """The safe plan for one campaign, and the memory to keep after it."""

    campaign: str
    now: datetime
    local_date: date  # in the QM time zone: the day max_changes_per_day counts
    snapshot: CampaignSnapshot
    evaluation: CampaignEvaluation
    outcomes: Mapping[str, ListOutcome]
    decisions: tuple[Decision, ...]
    updates: tuple[ListUpdate, ...]
    overrides: tuple[Override, ...]
    stops: tuple[GuardrailStop, ...]
    memory: Mapping[str, ListMemory]  # reconciled + new rule timers, before any write
    rule_errors: tuple[RuleError, ...] = ()
    # Lists never written this cycle, with why (``mixer.identity``), and lists taken for
    # new ones (deleted and re-created: their memory started fresh).
    skipped: Mapping[str, str] = field(default_factory=dict)
    recreated: frozenset[str] = frozenset()

    @property
    def stopped(self) -> bool:
        return bool(self.stops)

    @property
    def update_names(self) -> frozenset[str]:
        return frozenset(u.name for u in self.updates)

    def memory_after(self, written: Collection[str]) -> dict[str, ListMemory]:
        """The memory to persist once the lists named in ``written`` landed in QM."""
        result = dict(self.memory)
        for update in self.updates:
            if update.name not in written:
                continue
            before = self.snapshot.get(update.name)
            result[update.name] = memory_after_write(
                result[update.name],
                before.paused if before is not None else result[update.name].human_paused,
                update,
                self.now,
                self.local_date,
            )
        return result


def plan_campaign(
    rules: CampaignRules,
    snapshot: CampaignSnapshot,
    memory: Mapping[str, ListMemory],
    history: Mapping[str, Sequence[HistorySample]],
    now: datetime,
    settings: EngineSettings,
    limits: Limits,
    pool: Mapping[str, Mapping[str, object]] | None = None,
) -> CampaignPlan:
    """Reconcile, evaluate and guard one campaign; no I/O.

    ``pool``: each list's ``pool_*`` facts when the campaign shares agents with others
    (``mixer.engine.pool.pool_facts`` over ``campaign_facts`` of each); None: its own pool.
    """
    prepared = _prepare(rules, snapshot, memory, history, now, limits)
    skipped, recreated = prepared.skipped, prepared.recreated
    history, metadata = prepared.history, prepared.metadata
    reconciled, overrides = prepared.reconciled, prepared.overrides
    evaluation = evaluate(rules, snapshot, reconciled, history, now, settings, metadata, pool)
    local_date = now.astimezone(settings.timezone).date()

    outcomes: dict[str, ListOutcome] = {}
    decisions: list[Decision] = []
    rule_errors: list[RuleError] = []
    timers: dict[str, ListMemory] = dict(reconciled)
    for item in snapshot.lists:
        mem = reconciled[item.name]
        evaluated = evaluation.lists[item.name]
        if evaluated.errors:
            # Fail closed: a rule that raised may have meant to change this list, so the
            # list stays exactly as QM has it and its rule timers do not move.
            rule_errors.extend(RuleError(item.name, r, m) for r, m in evaluated.errors)
            outcomes[item.name] = _left_alone(item, evaluated.errors)
            continue
        if evaluated.rule_memory != mem.rules:  # most cycles no timer moves: keep mem itself
            timers[item.name] = replace(mem, rules=dict(evaluated.rule_memory))
        why_not = skipped.get(item.name)
        if why_not is not None:
            outcomes[item.name] = ListOutcome(item.name, item.weight, item.paused, (why_not,))
            continue
        outcome = guard_list(item, evaluated, mem, now, local_date, limits, settings.timezone)
        outcomes[item.name] = outcome
        if (outcome.weight, outcome.paused) != (item.weight, item.paused):
            decisions.append(_decision(item, evaluated, outcome))

    stops = campaign_stops(snapshot, outcomes, evaluation.lists)
    updates: tuple[ListUpdate, ...] = ()
    if not stops:
        updates = tuple(
            ListUpdate(name=d.list, weight=d.after_weight, paused=d.after_paused) for d in decisions
        )
    return CampaignPlan(
        campaign=snapshot.campaign,
        now=now,
        local_date=local_date,
        snapshot=snapshot,
        evaluation=evaluation,
        outcomes=outcomes,
        decisions=tuple(decisions),
        updates=updates,
        overrides=tuple(overrides),
        stops=stops,
        memory=timers,
        rule_errors=tuple(rule_errors),
        skipped=skipped,
        recreated=recreated,
    )


def campaign_facts(
    rules: CampaignRules,
    snapshot: CampaignSnapshot,
    memory: Mapping[str, ListMemory],
    history: Mapping[str, Sequence[HistorySample]],
    now: datetime,
    settings: EngineSettings,
    limits: Limits,
) -> dict[str, dict[str, object]]:
    """Every list's facts as ``plan_campaign`` would compute them from the same inputs
    (memory reconciled first): what ``pool_facts`` aggregates across a pool."""
    prepared = _prepare(rules, snapshot, memory, history, now, limits)
    return compute_facts(
        snapshot, prepared.reconciled, prepared.history, prepared.metadata, now, settings
    )


@dataclass(frozen=True, slots=True)
class _Prepared:
    """Step 1 of a plan: the lists left alone or re-created, metadata, reconciled memory."""

    skipped: Mapping[str, str]
    recreated: frozenset[str]
    history: Mapping[str, Sequence[HistorySample]]
    metadata: Mapping[str, ListMetadata]
    reconciled: Mapping[str, ListMemory]
    overrides: Sequence[Override]


def _prepare(
    rules: CampaignRules,
    snapshot: CampaignSnapshot,
    memory: Mapping[str, ListMemory],
    history: Mapping[str, Sequence[HistorySample]],
    now: datetime,
    limits: Limits,
) -> _Prepared:
    skipped = unwritable_lists(snapshot)
    recreated = recreated_lists(snapshot, history, now)
    if recreated:  # deleted and re-created under the same name: a new list
        memory = {name: m for name, m in memory.items() if name not in recreated}
        history = without_history_of(history, recreated, now)
    metadata = {item.name: rules.metadata_for(item.name) for item in snapshot.lists}
    reconciled, overrides = reconcile_memory(
        snapshot, memory, metadata, now, limits.manual_hold, skip=skipped.keys()
    )
    return _Prepared(skipped, recreated, history, metadata, reconciled, overrides)


def _left_alone(item: ListSnapshot, errors: Sequence[tuple[str, str]]) -> ListOutcome:
    failed = ", ".join(f"{rule!r} ({message})" for rule, message in errors)
    note = (
        f"left as it is: rule {failed} failed"
        if len(errors) == 1
        else (f"left as it is: rules {failed} failed")
    )
    return ListOutcome(item.name, item.weight, item.paused, (note,))


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
        rules=evaluated.carried,
        reason=reason,
        facts=dict(evaluated.facts),
        overridden=evaluated.overridden,
    )
