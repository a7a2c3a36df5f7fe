"""Evaluation: from the baseline, through the rules, to each list's desired state.

Level-triggered, like a reconciler: every cycle each list starts again from its baseline
(the weight and pause state a human set) and the matching rules apply top to bottom, so
``base_weight * 3`` never compounds from one cycle to the next. Every rule leaves a
trace — matched or not, null facts, errors, pending timers — which is what ``explain``
shows (the decision log keeps the fired rules and the facts they read). A cycle keeps it
compact and builds the ``RuleTrace`` records on first access (``mixer.engine.trace``).
Pure: *now* comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, lru_cache, partial
from itertools import compress
from operator import is_, itemgetter
from types import MappingProxyType

from mixer.engine.expressions import Expression, ExpressionEvaluationError
from mixer.engine.facts import EngineSettings, compute_facts
from mixer.engine.memory import HistorySample, ListMemory, RuleMemory
from mixer.engine.metadata import ListMetadata
from mixer.engine.rules import CampaignRules, Rule
from mixer.engine.trace import (
    NO_RULE_REASON,
    Row,
    RuleOutcome,
    RuleOutcomes,
    RuleTrace,
    Skipped,
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


@dataclass(frozen=True)
class ListEvaluation:
    """The rules' wish for one list, before guardrails."""

    name: str
    baseline_weight: int
    baseline_paused: bool
    weight: float
    paused: bool
    fired: tuple[str, ...]
    rule_memory: Mapping[str, RuleMemory]
    standby: bool
    outcomes: RuleOutcomes = field(repr=False)
    fired_rules: tuple[Rule, ...] = field(default=(), repr=False)
    # The rule memory the evaluation started from: which rules were in effect before.
    previous_rules: Mapping[str, RuleMemory] = field(default_factory=dict, repr=False)
    # (rule, message) for every rule that raised on this list: the plan leaves it alone.
    errors: tuple[tuple[str, str], ...] = ()

    @classmethod
    def build(
        cls,
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
        fired_rules: tuple[Rule, ...],
        previous_rules: Mapping[str, RuleMemory],
        errors: tuple[tuple[str, str], ...] = (),
    ) -> ListEvaluation:
        """The same object as the constructor makes, without its call per field: one is
        built per list per cycle. Still frozen: assigning an attribute raises."""
        self = object.__new__(cls)
        self.__dict__.update(
            name=name,
            baseline_weight=baseline_weight,
            baseline_paused=baseline_paused,
            weight=weight,
            paused=paused,
            fired=fired,
            rule_memory=rule_memory,
            standby=standby,
            outcomes=outcomes,
            fired_rules=fired_rules,
            previous_rules=previous_rules,
            errors=errors,
        )
        return self

    # Most lists have a rule fired every cycle, but only the lists that change (and
    # ``explain``) are asked why: the sentence and the facts it cites are built on demand.

    @cached_property
    def reason(self) -> str:
        """One sentence from the descriptions of the rules whose effect the list carries;
        led by the pausing rules that stopped applying when that is why it resumes."""
        reason = reason_sentence(self._split[0], self.outcomes.facts)
        if not self.released:
            return reason
        names = ", ".join(self.released)
        verb = "applies" if len(self.released) == 1 else "apply"
        why = f"Resumed: {names}, which paused it, no longer {verb}"
        return f"{why}." if not self._split[0] else f"{why}; {reason[:1].lower()}{reason[1:]}"

    @property
    def carried(self) -> tuple[str, ...]:
        """The fired rules whose effect the result carries (each sets something no later
        fired rule sets again), in rule order."""
        return tuple([r.name for r in self._split[0]])

    @property
    def overridden(self) -> tuple[str, ...]:
        """The fired rules every part of whose effect a later fired rule set again."""
        return tuple([r.name for r in self._split[1]])

    @cached_property
    def _split(self) -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
        return _carried_and_overridden(self.fired_rules)

    @cached_property
    def released(self) -> tuple[str, ...]:
        """Rules that paused the list until now and no longer apply, when it resumes."""
        if self.paused or not self.previous_rules:
            return ()
        fired = {r.name for r in self.fired_rules}
        return tuple(
            [
                rule.name
                for rule in self.outcomes.rules
                if rule.paused is True
                and rule.name not in fired
                and self.previous_rules.get(rule.name, _IDLE).active
                and not self.rule_memory.get(rule.name, _IDLE).active
            ]
        )

    @cached_property
    def facts(self) -> Mapping[str, object]:
        """The facts the fired rules read, in rule order."""
        if not self.fired_rules:
            return _EMPTY
        facts = self.outcomes.facts
        read: dict[str, object] = {}
        for rule in self.fired_rules:
            for fact in rule.sorted_reads:
                read[fact] = facts.get(fact)
        return MappingProxyType(read)

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
) -> CampaignEvaluation:
    """Evaluate every rule for every list of the campaign.

    ``metadata``: each list's merged ``lists:`` entries, when the caller already has
    them; a list without memory is evaluated as on first sight.
    """
    if metadata is None:
        metadata = {item.name: rules.metadata_for(item.name) for item in snapshot.lists}
    memory = {
        item.name: memory.get(item.name)
        or ListMemory.first_sight(item.weight, item.paused, now, metadata[item.name].weight)
        for item in snapshot.lists
    }
    facts = compute_facts(snapshot, memory, history, metadata, now, settings)
    shared: dict[_Timers, RuleMemory] = {}
    watched = _watched(rules.rules)
    lists = {
        item.name: _evaluate_list(
            rules.rules, watched, item.name, facts[item.name], memory[item.name], now, shared
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


# holding_since, active, active_changed_at: the fields of a RuleMemory. RuleMemory is
# immutable, so lists whose timers agree share one object within a cycle.
_Timers = tuple[datetime | None, bool, datetime | None]
_IDLE = RuleMemory()


def _remember(
    holding_since: datetime | None,
    active: bool,
    changed_at: datetime | None,
    previous: RuleMemory,
    shared: dict[_Timers, RuleMemory],
) -> RuleMemory:
    """The rule's new memory: ``previous`` itself when nothing changed."""
    if (
        active == previous.active
        and holding_since == previous.holding_since
        and changed_at == previous.active_changed_at
    ):
        return previous
    key = (holding_since, active, changed_at)
    found = shared.get(key)
    if found is None:
        found = shared[key] = RuleMemory(holding_since, active, changed_at)
    return found


_EMPTY: Mapping[str, object] = MappingProxyType({})
_ABSENT = object()


_NO_NULLS: frozenset[str] = frozenset()
_IS_NONE = partial(is_, None)


# Per rule, what the loop over lists reads: the rule, its name, enabled, whether it
# matches every list, its condition.
_Step = tuple[Rule, str, bool, bool, Expression | None]


@dataclass(frozen=True, slots=True)
class _Watched:
    """Every fact some rule's ``when`` reads: the only facts whose nullness matters.
    ``values(facts)`` reads them all in one call (``KeyError`` when one is missing).
    ``steps``: the rules with what every list reads of them, unpacked once per campaign."""

    names: tuple[str, ...]
    values: Callable[[Mapping[str, object]], tuple[object, ...]]
    steps: tuple[_Step, ...]


def _watched(rules: tuple[Rule, ...]) -> _Watched:
    names: set[str] = set()
    for rule in rules:
        if rule.when is not None:
            names.update(rule.when.names)
    ordered = tuple(sorted(names))
    steps = tuple((r, r.name, r.enabled, r.matches_every_list, r.when) for r in rules)
    if not ordered:
        return _Watched((), _no_values, steps)
    # One name more than needed, so itemgetter always returns a tuple.
    return _Watched(ordered, itemgetter(*ordered, ordered[0]), steps)


def _no_values(_facts: Mapping[str, object]) -> tuple[object, ...]:
    return ()


def _evaluate_list(
    rules: tuple[Rule, ...],
    watched: _Watched,
    name: str,
    facts: Mapping[str, object],
    mem: ListMemory,
    now: datetime,
    shared: dict[_Timers, RuleMemory],
) -> ListEvaluation:
    weight = float(mem.base_weight)
    paused = mem.human_paused
    tags = facts.get("tags") or ()
    assert isinstance(tags, tuple)
    # The null facts a `when` reads (a fact the list lacks is not null: it is an error).
    null_here = _NO_NULLS
    try:
        values = watched.values(facts)
        some_null = None in values
    except KeyError:
        null_here = frozenset([f for f in watched.names if facts.get(f, _ABSENT) is None])
    else:
        if some_null:
            null_here = frozenset(compress(watched.names, map(_IS_NONE, values)))
    remembered = mem.rules
    rows: list[Row] = []
    errors: list[tuple[str, str]] = []
    fired: list[Rule] = []
    new_memory: dict[str, RuleMemory] = {}
    stopped = False
    for rule, rule_name, enabled, every_list, when in watched.steps:
        previous = remembered.get(rule_name, _IDLE)
        if stopped:
            new_memory[rule_name] = _remember(
                None, previous.active, previous.active_changed_at, previous, shared
            )
            rows.append(Skipped.STOPPED)
            continue
        if not enabled:
            rows.append(Skipped.DISABLED)
            continue
        if not every_list and not rule.matches(name, tags):
            rows.append(Skipped.UNMATCHED)
            continue
        # The common cases, without a call: a rule out of effect whose condition reads a
        # null fact or stays false (_evaluate_rule's first return), and a rule in effect
        # with a fixed effect whose condition still holds and has held for its `for:`
        # (a reloaded rule may ask longer): no timer can move.
        if when is not None and previous.holding_since is None and not previous.active:
            if null_here and not null_here.isdisjoint(when.names):
                new_memory[rule_name] = previous
                rows.append(_null_row(rule.when_names, null_here))
                continue
            try:
                condition = bool(when.function(facts))
            except Exception:  # _evaluate_rule evaluates again and records the error
                condition = True
            if not condition:
                new_memory[rule_name] = previous
                rows.append(Skipped.FALSE)
                continue
            row, new_memory[rule_name] = _evaluate_rule(
                rule, facts, null_here, previous, now, shared
            )
        elif (
            when is not None
            and previous.active
            and previous.holding_since is not None
            and (rule.for_ is None or now - previous.holding_since >= rule.for_)
            and rule.constant_effect is not None
            and (not null_here or null_here.isdisjoint(when.names))
            and _holds(when, facts)
        ):
            new_memory[rule_name] = previous
            row = RuleOutcome(True, (), None, None, None, rule.constant_effect)
        else:
            row, new_memory[rule_name] = _evaluate_rule(
                rule, facts, null_here, previous, now, shared
            )
        rows.append(row)
        if isinstance(row, RuleOutcome) and row.error is not None:
            errors.append((rule_name, row.error))
        if isinstance(row, RuleOutcome) and row.effect:
            effect = row.effect
            fired.append(rule)
            if "weight" in effect:
                weight = float(effect["weight"])  # type: ignore[arg-type]
            if "paused" in effect:
                paused = bool(effect["paused"])
            if rule.stop:
                stopped = True
    return ListEvaluation.build(
        name=name,
        baseline_weight=mem.base_weight,
        baseline_paused=mem.human_paused,
        weight=weight,
        paused=paused,
        fired=tuple([r.name for r in fired]),
        rule_memory=MappingProxyType(new_memory),
        standby=facts.get("standby") is True,
        outcomes=RuleOutcomes(rules, tuple(rows), facts),
        fired_rules=tuple(fired),
        previous_rules=remembered,
        errors=tuple(errors),
    )


def _holds(when: Expression, facts: Mapping[str, object]) -> bool:
    """The condition is true (an error counts as not true: _evaluate_rule reports it)."""
    try:
        return bool(when.function(facts))
    except Exception:  # _evaluate_rule evaluates again and records the error
        return False


@lru_cache(maxsize=1024)
def _null_row(when_names: tuple[str, ...], null_here: frozenset[str]) -> RuleOutcome:
    """The row of a rule whose ``when`` reads a null fact and that holds nothing: not
    evaluated, not fired. Lists of a campaign mostly lack the same facts (no deadline,
    no history yet), so one row serves them all; rows are never changed."""
    nulls = tuple(name for name in when_names if name in null_here)
    return RuleOutcome(None, nulls, None, None, None, _EMPTY)


def _evaluate_rule(
    rule: Rule,
    facts: Mapping[str, object],
    null_here: frozenset[str],
    previous: RuleMemory,
    now: datetime,
    shared: dict[_Timers, RuleMemory],
) -> tuple[Row, RuleMemory]:
    nulls: tuple[str, ...] = ()
    error: str | None = None
    condition: bool | None
    when = rule.when
    if when is None:
        condition = rule.when_source != "false"
    elif null_here and not null_here.isdisjoint(when.names):
        condition, nulls = None, tuple(n for n in rule.when_names if n in null_here)
    else:
        try:
            condition = bool(when(facts))
        except ExpressionEvaluationError as exc:
            condition, error = None, f"when: {exc.message}"

    if not condition and not previous.active and previous.holding_since is None:
        # The common case: not holding, was not in effect, stays out of effect; no timer
        # runs and a cooldown has nothing to hold. The memory is unchanged.
        if condition is False:
            return Skipped.FALSE, previous
        return RuleOutcome(condition, nulls, error, None, None, _EMPTY), previous

    # `for:` — the condition must have held, without interruption, this long.
    holding_since = (previous.holding_since or now) if condition else None
    pending: timedelta | None = None
    wants = bool(condition)
    if condition and rule.for_ is not None:
        assert holding_since is not None
        held = now - holding_since
        if held < rule.for_:
            wants, pending = False, rule.for_ - held

    # `cooldown:` — the rule cannot come into or out of effect again too soon.
    active, changed_at = wants, previous.active_changed_at
    cooldown_left: timedelta | None = None
    if wants != previous.active:
        if (
            rule.cooldown is not None
            and previous.active_changed_at is not None
            and now - previous.active_changed_at < rule.cooldown
        ):
            active = previous.active
            cooldown_left = rule.cooldown - (now - previous.active_changed_at)
        else:
            changed_at = now

    effect: dict[str, object] = {}
    if active:
        if rule.paused is not None:
            effect["paused"] = rule.paused
        if isinstance(rule.weight, Expression):
            missing = tuple(n for n in rule.weight_names if facts.get(n) is None)
            if missing:
                nulls = tuple(sorted(set(nulls) | set(missing)))
                effect = {}
            else:
                try:
                    effect["weight"] = float(rule.weight(facts))  # type: ignore[arg-type]
                except ExpressionEvaluationError as exc:
                    error, effect = f"set.weight: {exc.message}", {}
        elif rule.weight is not None:
            effect["weight"] = rule.weight
        if not effect:
            # The effect could not be computed: the rule is not in effect this cycle.
            active, changed_at = previous.active, previous.active_changed_at

    memory = _remember(holding_since, active, changed_at, previous, shared)
    if condition is False and not (pending or cooldown_left or effect):
        return Skipped.FALSE, memory
    return RuleOutcome(condition, nulls, error, pending, cooldown_left, effect), memory


def _carried_and_overridden(
    fired: Sequence[Rule],
) -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
    """Split fired rules (in order) into those whose effect survives, at least in part,
    and those whose every key (weight, paused) a later fired rule sets again."""
    seen: set[str] = set()
    carried: list[Rule] = []
    overridden: list[Rule] = []
    for rule in reversed(fired):
        keys = {k for k, v in (("weight", rule.weight), ("paused", rule.paused)) if v is not None}
        (carried if not keys or keys - seen else overridden).append(rule)
        seen |= keys
    return tuple(reversed(carried)), tuple(reversed(overridden))
