"""Evaluation: from the baseline, through the rules, to each list's desired state.

Level-triggered, like a reconciler: every cycle each list starts again from its baseline
(the weight and pause state a human set) and the matching rules apply top to bottom, so
``base_weight * 3`` never compounds from one cycle to the next. Every rule leaves a
trace — matched or not, null facts, errors, pending timers — which is what ``explain``
shows (the decision log keeps the fired rules and the facts they read). A cycle keeps it
compact and builds the ``RuleTrace`` records on first access (``mixer.engine.trace``).
Each rule has one evaluation path, compiled once per loaded rule set into what it needs:
a condition, an effect, and timers only for ``for:``/``cooldown:`` (and a pausing rule's
in-effect state) — any other rule keeps no memory between cycles. Pure: *now* comes in
as an argument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from types import MappingProxyType

from mixer.engine.compiled import EMPTY, IDLE, CompiledRules, Fired, Timers, compile_rules
from mixer.engine.facts import EngineSettings, compute_facts
from mixer.engine.memory import HistorySample, ListMemory, RuleMemory
from mixer.engine.metadata import ListMetadata
from mixer.engine.rules import CampaignRules, Rule
from mixer.engine.trace import (
    NO_RULE_REASON,
    RuleOutcomes,
    RuleTrace,
    reason_sentence,
)
from mixer.snapshot import CampaignSnapshot

__all__ = [
    "NO_RULE_REASON",
    "CampaignEvaluation",
    "ListEvaluation",
    "RuleOutcomes",
    "RuleTrace",
    "evaluate",
]


@dataclass(frozen=True, init=False)
class ListEvaluation:
    """The rules' wish for one list, before guardrails.

    Immutable; made for every list of every cycle, so its constructor fills the fields in
    one step instead of the generated frozen ``__init__``'s one ``object.__setattr__``
    per field (a third of the cost; the cached properties below live in the same dict).
    """

    name: str
    baseline_weight: int
    baseline_paused: bool
    weight: float
    paused: bool
    fired: tuple[str, ...]
    rule_memory: Mapping[str, RuleMemory]
    standby: bool
    outcomes: RuleOutcomes = field(repr=False)
    # What follows from which rules fired alone (shared by the lists with the same ones).
    summary: Fired = field(repr=False, compare=False)
    # The rule memory the evaluation started from: which rules were in effect before.
    previous_rules: Mapping[str, RuleMemory] = field(default_factory=dict, repr=False)
    # (rule, message) for every rule that raised on this list: the plan leaves it alone.
    errors: tuple[tuple[str, str], ...] = ()

    def __init__(
        self,
        *,
        name: str,
        baseline_weight: int,
        baseline_paused: bool,
        weight: float,
        paused: bool,
        fired: tuple[str, ...],
        rule_memory: Mapping[str, RuleMemory],
        standby: bool,
        outcomes: RuleOutcomes,
        summary: Fired,
        previous_rules: Mapping[str, RuleMemory] | None = None,
        errors: tuple[tuple[str, str], ...] = (),
    ) -> None:
        object.__setattr__(
            self,
            "__dict__",
            {
                "name": name,
                "baseline_weight": baseline_weight,
                "baseline_paused": baseline_paused,
                "weight": weight,
                "paused": paused,
                "fired": fired,
                "rule_memory": rule_memory,
                "standby": standby,
                "outcomes": outcomes,
                "summary": summary,
                "previous_rules": {} if previous_rules is None else previous_rules,
                "errors": errors,
            },
        )

    # Most lists have a rule fired every cycle, but only the lists that change (and
    # ``explain``) are asked why: the sentence and the facts it cites are built on demand.

    @cached_property
    def reason(self) -> str:
        """One sentence from the descriptions of the rules whose effect the list carries;
        led by the pausing rules that stopped applying when that is why it resumes."""
        carried = self.summary.carried
        reason = reason_sentence(carried, self.outcomes.facts)
        if not self.released:
            return reason
        names = ", ".join(self.released)
        verb = "applies" if len(self.released) == 1 else "apply"
        why = f"Resumed: {names}, which paused it, no longer {verb}"
        return f"{why}." if not carried else f"{why}; {reason[:1].lower()}{reason[1:]}"

    @property
    def carried(self) -> tuple[str, ...]:
        """The fired rules whose effect the result carries (each sets something no later
        fired rule sets again), in rule order."""
        return self.summary.carried_names

    @property
    def overridden(self) -> tuple[str, ...]:
        """The fired rules every part of whose effect a later fired rule set again."""
        return self.summary.overridden_names

    @property
    def fired_rules(self) -> tuple[Rule, ...]:
        """The rules that fired, in rule order."""
        return self.summary.rules

    @cached_property
    def released(self) -> tuple[str, ...]:
        """Rules that paused the list until now and no longer apply, when it resumes."""
        if self.paused or not self.previous_rules:
            return ()
        return tuple(
            [
                rule.name
                for rule in self.summary.unfired_pausing
                if self.previous_rules.get(rule.name, IDLE).active
                and not self.rule_memory.get(rule.name, IDLE).active
            ]
        )

    @cached_property
    def facts(self) -> Mapping[str, object]:
        """The facts the fired rules read, in rule order."""
        if not self.fired_rules:
            return EMPTY
        facts = self.outcomes.facts
        return MappingProxyType({fact: facts.get(fact) for fact in self.summary.reads})

    @cached_property
    def trace(self) -> tuple[RuleTrace, ...]:
        """One record per rule, in rule order (built on first access)."""
        return self.outcomes.trace()


@dataclass(frozen=True)
class CampaignEvaluation:
    """Every list's evaluation, and every list's facts."""

    campaign: str
    now: datetime
    lists: Mapping[str, ListEvaluation]
    facts: Mapping[str, Mapping[str, object]] = field(default_factory=dict)


def evaluate(
    rules: CampaignRules,
    snapshot: CampaignSnapshot,
    memory: Mapping[str, ListMemory],
    history: Mapping[str, Sequence[HistorySample]],
    now: datetime,
    settings: EngineSettings,
    metadata: Mapping[str, ListMetadata] | None = None,
    pool: Mapping[str, Mapping[str, object]] | None = None,
) -> CampaignEvaluation:
    """Evaluate every rule for every list of the campaign.

    ``metadata``: each list's merged ``lists:`` entries, when the caller already has
    them; a list without memory is evaluated as on first sight. ``pool``: each list's
    ``pool_*`` facts when the campaign shares agents (None: its own pool).
    """
    if metadata is None:
        metadata = {item.name: rules.metadata_for(item.name) for item in snapshot.lists}
    memory = {
        item.name: memory.get(item.name)
        or ListMemory.first_sight(item.weight, item.paused, now, metadata[item.name].weight)
        for item in snapshot.lists
    }
    facts = compute_facts(snapshot, memory, history, metadata, now, settings, pool)
    compiled = compile_rules(rules.rules)
    shared: dict[Timers, RuleMemory] = {}
    lists = {
        item.name: _evaluate_list(
            compiled, item.name, facts[item.name], memory[item.name], now, shared
        )
        for item in snapshot.lists
    }
    frozen = {name: MappingProxyType(values) for name, values in facts.items()}
    return CampaignEvaluation(
        campaign=snapshot.campaign,
        now=now,
        lists=MappingProxyType(lists),
        facts=MappingProxyType(frozen),
    )


# -- one list -----------------------------------------------------------------------


def _evaluate_list(
    compiled: CompiledRules,
    name: str,
    facts: Mapping[str, object],
    mem: ListMemory,
    now: datetime,
    shared: dict[Timers, RuleMemory],
) -> ListEvaluation:
    tags = facts.get("tags") or ()
    assert isinstance(tags, tuple)
    remembered = mem.rules
    nulls = compiled.nulls(facts)
    rows, weight, paused, mask, timers, errors = compiled.run(
        facts,
        name,
        tags,
        nulls,
        compiled.blocked(nulls),
        remembered,
        now,
        shared,
        float(mem.base_weight),
        mem.human_paused,
    )
    fired = compiled.fired(mask)
    return ListEvaluation(
        name=name,
        baseline_weight=mem.base_weight,
        baseline_paused=mem.human_paused,
        weight=weight,
        paused=paused,
        fired=fired.names,
        rule_memory=MappingProxyType(timers) if timers else _NO_MEMORY,
        standby=facts.get("standby") is True,
        outcomes=RuleOutcomes(compiled.rules, rows, facts),
        summary=fired,
        previous_rules=remembered,
        errors=tuple(errors),
    )


_NO_MEMORY: Mapping[str, RuleMemory] = MappingProxyType({})
