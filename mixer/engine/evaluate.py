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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, partial
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
    shared: dict[_Timers, RuleMemory] = {}
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


# -- compiled rules -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """What evaluating one rule needs, compiled once per loaded rule set: a condition,
    an effect, and timers (``timed``) only for a rule with ``for:`` or ``cooldown:`` — or
    one that pauses, whose in-effect state names it when the list resumes.

    Any other rule is in effect exactly while its condition holds, so it keeps no memory
    between cycles; a timed rule's memory is kept only while it holds something.
    """

    rule: Rule
    name: str
    enabled: bool
    every_list: bool  # no name glob and no tag
    when: Expression | None
    constant: bool  # the condition when ``when`` is None ("true" or "false")
    when_names: frozenset[str]
    when_sorted: tuple[str, ...]
    effect: Mapping[str, object] | None  # the effect when it reads no fact
    weight: Expression | None  # an expression ``set.weight``
    weight_names: tuple[str, ...]
    paused: bool | None
    timed: bool
    for_: timedelta | None
    cooldown: timedelta | None
    stop: bool
    # A rule without timers whose effect reads no fact: its outcome when the condition
    # holds is always the same (rows are never changed, so one serves every list).
    fired: tuple[RuleOutcome, None] | None
    # The outcome of the condition reading a null fact, per set of null facts: lists of
    # a campaign mostly lack the same facts (no deadline, no pull yet), so few sets occur.
    null_rows: dict[frozenset[str], RuleOutcome]

    @classmethod
    def of(cls, rule: Rule) -> CompiledRule:
        # A pausing rule remembers whether it is in effect, so the resume it allows can
        # name it (``ListEvaluation.released``); other rules without timers need nothing.
        timed = rule.for_ is not None or rule.cooldown is not None or rule.paused is True
        effect = rule.constant_effect
        return cls(
            rule=rule,
            name=rule.name,
            enabled=rule.enabled,
            every_list=rule.matches_every_list,
            when=rule.when,
            constant=rule.when_source != "false",
            when_names=rule.when.names if rule.when is not None else frozenset(),
            when_sorted=rule.when_names,
            effect=effect,
            weight=rule.weight if isinstance(rule.weight, Expression) else None,
            weight_names=rule.weight_names,
            paused=rule.paused,
            timed=timed,
            for_=rule.for_,
            cooldown=rule.cooldown,
            stop=rule.stop,
            fired=None
            if timed or effect is None
            else (RuleOutcome(True, (), None, None, None, effect), None),
            null_rows={},
        )


@dataclass(frozen=True, slots=True)
class CompiledRules:
    """A campaign's rules compiled, and every fact some ``when`` reads (the only facts
    whose nullness matters); ``values(facts)`` reads those in one call."""

    rules: tuple[Rule, ...]
    steps: tuple[CompiledRule, ...]
    watched: tuple[str, ...]
    values: Callable[[Mapping[str, object]], tuple[object, ...]]

    def nulls(self, facts: Mapping[str, object]) -> frozenset[str]:
        """The watched facts that are null for this list (a fact the list lacks is not
        null: the condition reports it as an error)."""
        try:
            values = self.values(facts)
        except KeyError:
            return frozenset([f for f in self.watched if facts.get(f, _ABSENT) is None])
        if None not in values:
            return _NO_NULLS
        return frozenset(compress(self.watched, map(_IS_NONE, values)))


def compile_rules(rules: tuple[Rule, ...]) -> CompiledRules:
    """``rules`` compiled, once per loaded rule tuple: a campaign's rules are the same
    tuple every cycle until a reload, so its compiled form is kept (by identity)."""
    found = _COMPILED.get(id(rules))
    if found is not None and found.rules is rules:
        return found
    compiled = _compile(rules)
    if len(_COMPILED) >= _COMPILED_KEPT:  # reloads leave old tuples behind: stay bounded
        _COMPILED.clear()
    _COMPILED[id(rules)] = compiled
    return compiled


_COMPILED: dict[int, CompiledRules] = {}  # id(rules) -> compiled; holds rules, so ids stay
_COMPILED_KEPT = 256


def _compile(rules: tuple[Rule, ...]) -> CompiledRules:
    names: set[str] = set()
    for rule in rules:
        if rule.when is not None:
            names.update(rule.when.names)
    watched = tuple(sorted(names))
    steps = tuple(CompiledRule.of(rule) for rule in rules)
    if not watched:
        return CompiledRules(rules, steps, (), _no_values)
    # One name more than needed, so itemgetter always returns a tuple.
    return CompiledRules(rules, steps, watched, itemgetter(*watched, watched[0]))


def _no_values(_facts: Mapping[str, object]) -> tuple[object, ...]:
    return ()


_EMPTY: Mapping[str, object] = MappingProxyType({})
_NO_MEMORY: Mapping[str, RuleMemory] = MappingProxyType({})
_ABSENT = object()
_NO_NULLS: frozenset[str] = frozenset()
_IS_NONE = partial(is_, None)

# holding_since, active, active_changed_at: the fields of a RuleMemory. RuleMemory is
# immutable, so lists whose timers agree share one object within a cycle.
_Timers = tuple[datetime | None, bool, datetime | None]
_IDLE = RuleMemory()
_NULL_ROWS_KEPT = 1024
_FALSE_NO_MEMORY: tuple[Row, None] = (Skipped.FALSE, None)


# -- one list -----------------------------------------------------------------------


def _evaluate_list(
    compiled: CompiledRules,
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
    null_here = compiled.nulls(facts)
    remembered = mem.rules
    rows: list[Row] = []
    errors: list[tuple[str, str]] = []
    fired: list[Rule] = []
    timers: dict[str, RuleMemory] = {}
    stopped = False
    for step in compiled.steps:
        if stopped:
            rows.append(Skipped.STOPPED)
            previous = remembered.get(step.name) if step.timed else None
            if previous is not None:  # not holding, but still in (or out of) effect
                carried = _remember(
                    None, previous.active, previous.active_changed_at, previous, shared
                )
                if _holds_something(carried):
                    timers[step.name] = carried
            continue
        if not step.enabled:
            rows.append(Skipped.DISABLED)
            continue
        if not step.every_list and not step.rule.matches(name, tags):
            rows.append(Skipped.UNMATCHED)
            continue
        row, kept = _evaluate_rule(
            step,
            facts,
            null_here,
            remembered.get(step.name, _IDLE) if step.timed else None,
            now,
            shared,
        )
        rows.append(row)
        if kept is not None and kept is not _IDLE and _holds_something(kept):
            timers[step.name] = kept
        if isinstance(row, RuleOutcome) and row.error is not None:
            errors.append((step.name, row.error))
        if isinstance(row, RuleOutcome) and row.effect:
            effect = row.effect
            fired.append(step.rule)
            if "weight" in effect:
                weight = float(effect["weight"])  # type: ignore[arg-type]
            if "paused" in effect:
                paused = bool(effect["paused"])
            if step.stop:
                stopped = True
    return ListEvaluation(
        name=name,
        baseline_weight=mem.base_weight,
        baseline_paused=mem.human_paused,
        weight=weight,
        paused=paused,
        fired=tuple([r.name for r in fired]),
        rule_memory=MappingProxyType(timers) if timers else _NO_MEMORY,
        standby=facts.get("standby") is True,
        outcomes=RuleOutcomes(compiled.rules, tuple(rows), facts),
        fired_rules=tuple(fired),
        previous_rules=remembered,
        errors=tuple(errors),
    )


# -- one rule for one list ----------------------------------------------------------


def _failed(when: Expression, facts: Mapping[str, object]) -> tuple[bool | None, str | None]:
    """A condition whose compiled call raised: evaluated again through the wrapper, which
    turns the fault into a one-line message."""
    try:
        return bool(when(facts)), None
    except ExpressionEvaluationError as exc:
        return None, f"when: {exc.message}"


def _effect(
    step: CompiledRule, facts: Mapping[str, object], nulls: tuple[str, ...]
) -> tuple[Mapping[str, object], tuple[str, ...], str | None]:
    """What ``set`` does for this list (empty when it cannot be computed), the null facts
    read so far, and an error."""
    if step.effect is not None:
        return step.effect, nulls, None
    effect: dict[str, object] = {}
    if step.paused is not None:
        effect["paused"] = step.paused
    weight = step.weight
    if weight is None:
        return effect, nulls, None
    missing = tuple(n for n in step.weight_names if facts.get(n) is None)
    if missing:
        return _EMPTY, tuple(sorted(set(nulls) | set(missing))), None
    try:
        effect["weight"] = float(weight(facts))  # type: ignore[arg-type]
    except ExpressionEvaluationError as exc:
        return _EMPTY, nulls, f"set.weight: {exc.message}"
    return effect, nulls, None


def _evaluate_rule(
    step: CompiledRule,
    facts: Mapping[str, object],
    null_here: frozenset[str],
    previous: RuleMemory | None,
    now: datetime,
    shared: dict[_Timers, RuleMemory],
) -> tuple[Row, RuleMemory | None]:
    """The rule's outcome for one list, and its memory after: None for a rule without
    timers (``previous`` is None for those; a timed rule never seen has ``_IDLE``)."""
    nulls: tuple[str, ...] = ()
    error: str | None = None
    condition: bool | None
    when = step.when
    if when is None:
        condition = step.constant
    elif null_here and not null_here.isdisjoint(step.when_names):
        row = step.null_rows.get(null_here)
        if row is None:
            if len(step.null_rows) >= _NULL_ROWS_KEPT:
                step.null_rows.clear()
            nulls = tuple(n for n in step.when_sorted if n in null_here)
            row = step.null_rows[null_here] = RuleOutcome(None, nulls, None, None, None, _EMPTY)
        if previous is None or (not previous.active and previous.holding_since is None):
            return row, previous  # out of effect, and no timer can move
        condition, nulls = None, row.null_facts
    else:
        try:
            condition = bool(when.function(facts))
        except Exception:
            condition, error = _failed(when, facts)
    if previous is None:
        # No timers: in effect exactly while the condition holds.
        if not condition:
            if condition is False:
                return _FALSE_NO_MEMORY
            return RuleOutcome(condition, nulls, error, None, None, _EMPTY), None
        if step.fired is not None:
            return step.fired
        computed, nulls, error = _effect(step, facts, nulls)
        return RuleOutcome(True, nulls, error, None, None, computed), None

    if not condition and not previous.active and previous.holding_since is None:
        # Not holding, was not in effect, stays out of effect: no timer runs and a
        # cooldown has nothing to hold. The memory is unchanged.
        if condition is False:
            return Skipped.FALSE, previous
        return RuleOutcome(condition, nulls, error, None, None, _EMPTY), previous

    # `for:` — the condition must have held, without interruption, this long.
    holding_since = (previous.holding_since or now) if condition else None
    pending: timedelta | None = None
    wants = bool(condition)
    if condition and step.for_ is not None:
        assert holding_since is not None
        held = now - holding_since
        if held < step.for_:
            wants, pending = False, step.for_ - held

    # `cooldown:` — the rule cannot come into or out of effect again too soon.
    active, changed_at = wants, previous.active_changed_at
    cooldown_left: timedelta | None = None
    if wants != previous.active:
        if (
            step.cooldown is not None
            and previous.active_changed_at is not None
            and now - previous.active_changed_at < step.cooldown
        ):
            active = previous.active
            cooldown_left = step.cooldown - (now - previous.active_changed_at)
        else:
            changed_at = now

    effect: Mapping[str, object] = _EMPTY
    if active:
        effect, nulls, effect_error = _effect(step, facts, nulls)
        if effect_error is not None:
            error = effect_error
        if not effect:
            # The effect could not be computed: the rule is not in effect this cycle.
            active, changed_at = previous.active, previous.active_changed_at

    memory = _remember(holding_since, active, changed_at, previous, shared)
    if condition is False and not (pending or cooldown_left or effect):
        return Skipped.FALSE, memory
    return RuleOutcome(condition, nulls, error, pending, cooldown_left, effect), memory


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


def _holds_something(memory: RuleMemory) -> bool:
    """A timer runs or the rule is (or was lately) in effect: worth keeping. An idle
    memory is what a rule never seen starts from, so it need not be stored."""
    return memory.active or memory.holding_since is not None or memory.active_changed_at is not None


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
