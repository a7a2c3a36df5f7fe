"""A campaign's rules compiled into one function that evaluates them for one list.

A cycle evaluates every rule for every list, so the per-(list, rule) step is the engine's
inner loop. Each loaded rule tuple is compiled once into Python source, straight-line
code with one block per rule, specialised on what that rule needs: no branch for a glob
it does not have, a timer it does not keep or a ``stop`` that cannot happen yet; its
condition is called directly and a constant effect is a constant. Whatever a block
cannot settle on its own (a timed rule, a condition that raised, an effect computed from
facts) goes through the one helper for it below, so every rule still has one path.

The generated source holds no text from the rule files: rule objects, names and effects
reach it as closure constants indexed by position. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from itertools import compress
from operator import is_, itemgetter
from types import MappingProxyType
from typing import Any, Protocol

from mixer.engine.expressions import Expression, ExpressionEvaluationError
from mixer.engine.facts import NEVER_NULL
from mixer.engine.memory import RuleMemory
from mixer.engine.rules import Rule
from mixer.engine.trace import Row, RuleOutcome, Skipped

EMPTY: Mapping[str, object] = MappingProxyType({})
IDLE = RuleMemory()

# holding_since, active, active_changed_at: the fields of a RuleMemory. RuleMemory is
# immutable, so lists whose timers agree share one object within a cycle.
Timers = tuple[datetime | None, bool, datetime | None]


class ListRun(Protocol):
    """The generated function: every rule for one list, from its baseline."""

    def __call__(
        self,
        facts: Mapping[str, object],
        name: str,
        tags: tuple[str, ...],
        nulls: frozenset[str],
        blocked: tuple[bool, ...],
        remembered: Mapping[str, RuleMemory],
        now: datetime,
        shared: dict[Timers, RuleMemory],
        weight: float,
        paused: bool,
    ) -> tuple[
        tuple[Row, ...],
        float,
        bool,
        int,
        dict[str, RuleMemory],
        list[tuple[str, str]],
    ]: ...


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """What evaluating one rule needs: a condition, an effect, and timers (``timed``)
    only for a rule with ``for:`` or ``cooldown:`` — or one that pauses, whose in-effect
    state names it when the list resumes.

    Any other rule is in effect exactly while its condition holds, so it keeps no memory
    between cycles; a timed rule's memory is kept only while it holds something.
    """

    rule: Rule
    name: str
    when: Expression | None
    constant: bool  # the condition when ``when`` is None ("true" or "false")
    when_names: frozenset[str]
    when_sorted: tuple[str, ...]
    effect: Mapping[str, object] | None  # the effect when it reads no fact
    weight: Expression | None  # an expression ``set.weight``
    weight_names: tuple[str, ...]
    weight_values: Callable[[Mapping[str, object]], tuple[object, ...]] | None
    paused: bool | None
    timed: bool
    for_: timedelta | None
    cooldown: timedelta | None
    # A rule without timers whose effect reads no fact: its outcome when the condition
    # holds is always the same (rows are never changed, so one serves every list).
    fired: RuleOutcome | None
    # The same for a timed rule in effect with nothing pending: shared by those lists.
    held: RuleOutcome | None
    # The outcome of the condition reading a null fact, per set of null facts: lists of
    # a campaign mostly lack the same facts (no deadline, no pull yet), so few sets occur.
    null_rows: dict[frozenset[str], RuleOutcome]

    @classmethod
    def of(cls, rule: Rule) -> CompiledRule:
        # A pausing rule remembers whether it is in effect, so the resume it allows can
        # name it (``ListEvaluation.released``); other rules without timers need nothing.
        timed = rule.for_ is not None or rule.cooldown is not None or rule.paused is True
        effect = rule.constant_effect
        names = rule.weight_names
        row = None if effect is None else RuleOutcome(True, (), None, None, None, effect)
        return cls(
            rule=rule,
            name=rule.name,
            when=rule.when,
            constant=rule.when_source != "false",
            when_names=rule.when.names if rule.when is not None else frozenset(),
            when_sorted=rule.when_names,
            effect=effect,
            weight=rule.weight if isinstance(rule.weight, Expression) else None,
            weight_names=names,
            # One name more than needed, so itemgetter always returns a tuple.
            weight_values=itemgetter(*names, names[0]) if names else None,
            paused=rule.paused,
            timed=timed,
            for_=rule.for_,
            cooldown=rule.cooldown,
            fired=None if timed else row,
            held=row,
            null_rows={},
        )


@dataclass(frozen=True, slots=True)
class Fired:
    """The rules that fired for a list, and what follows from which fired alone: lists
    with the same fired rules share one (a decision asks every list that changes)."""

    rules: tuple[Rule, ...]
    names: tuple[str, ...]
    # Fired rules whose effect survives, at least in part, and those whose every key
    # (weight, paused) a later fired rule set again; both in rule order.
    carried: tuple[Rule, ...]
    overridden: tuple[Rule, ...]
    carried_names: tuple[str, ...]
    overridden_names: tuple[str, ...]
    reads: tuple[str, ...]  # the facts the fired rules read, in rule order
    unfired_pausing: tuple[Rule, ...]  # pausing rules that did not fire: may release

    @classmethod
    def of(cls, fired: tuple[Rule, ...], rules: tuple[Rule, ...]) -> Fired:
        seen: set[str] = set()
        carried: list[Rule] = []
        overridden: list[Rule] = []
        for rule in reversed(fired):
            keys = {
                k for k, v in (("weight", rule.weight), ("paused", rule.paused)) if v is not None
            }
            (carried if not keys or keys - seen else overridden).append(rule)
            seen |= keys
        carried.reverse()
        overridden.reverse()
        reads = dict.fromkeys(fact for rule in fired for fact in rule.sorted_reads)
        names = {rule.name for rule in fired}
        return cls(
            rules=fired,
            names=tuple([rule.name for rule in fired]),
            carried=tuple(carried),
            overridden=tuple(overridden),
            carried_names=tuple([rule.name for rule in carried]),
            overridden_names=tuple([rule.name for rule in overridden]),
            reads=tuple(reads),
            unfired_pausing=tuple(
                [rule for rule in rules if rule.paused is True and rule.name not in names]
            ),
        )


@dataclass(frozen=True, slots=True)
class CompiledRules:
    """A campaign's rules compiled: ``run`` evaluates them all for one list.

    ``watched`` is every fact a ``when`` or a ``set.weight`` reads that can be null (the
    only facts whose nullness matters); ``blocked(nulls)`` says, per condition and per
    weight, whether one of its facts is null — computed once per set of null facts, which
    few lists differ in.
    """

    rules: tuple[Rule, ...]
    steps: tuple[CompiledRule, ...]
    watched: tuple[str, ...]
    values: Callable[[Mapping[str, object]], tuple[object, ...]]  # the watched facts'
    flags: tuple[frozenset[str], ...]  # the facts behind each flag ``blocked`` returns
    run: ListRun
    source: str  # the generated function, for a reader debugging the engine
    _blocked: dict[frozenset[str], tuple[bool, ...]]
    _fired: dict[int, Fired]

    def nulls(self, facts: Mapping[str, object]) -> frozenset[str]:
        """The watched facts that are null for this list (a fact the list lacks is not
        null: the condition reports it as an error)."""
        try:
            values = self.values(facts)
        except KeyError:  # an extra `lists:` fact this list does not have
            values = tuple(map(facts.get, self.watched))
        if None not in values:
            return _NO_NULLS
        nulls = frozenset(compress(self.watched, map(_IS_NONE, values)))
        if nulls <= facts.keys():
            return nulls
        return frozenset([name for name in nulls if name in facts])

    def fired(self, mask: int) -> Fired:
        """The rules whose bit is set in ``mask`` (bit k: rule k fired), summarised."""
        found = self._fired.get(mask)
        if found is None:
            if len(self._fired) >= _NULL_ROWS_KEPT:
                self._fired.clear()
            rules = tuple([rule for k, rule in enumerate(self.rules) if mask >> k & 1])
            found = self._fired[mask] = Fired.of(rules, self.rules)
        return found

    def blocked(self, nulls: frozenset[str]) -> tuple[bool, ...]:
        found = self._blocked.get(nulls)
        if found is None:
            if len(self._blocked) >= _NULL_ROWS_KEPT:
                self._blocked.clear()
            found = tuple([not nulls.isdisjoint(names) for names in self.flags])
            self._blocked[nulls] = found
        return found


def compile_rules(rules: tuple[Rule, ...]) -> CompiledRules:
    """``rules`` compiled, once per loaded rule set: a campaign's rules are the same rule
    objects every cycle until a reload, and campaigns served by the same files share
    them, so the compiled form is kept by the rules' identities."""
    key = tuple(map(id, rules))
    found = _COMPILED.get(key)
    if found is not None and all(map(is_, found.rules, rules)):
        return found
    compiled = _compile(rules)
    if len(_COMPILED) >= _COMPILED_KEPT:  # reloads leave old rules behind: stay bounded
        _COMPILED.clear()
    _COMPILED[key] = compiled
    return compiled


# rule ids -> compiled; the entry holds the rules, so their ids are not reused meanwhile.
_COMPILED: dict[tuple[int, ...], CompiledRules] = {}
_COMPILED_KEPT = 256
_NO_NULLS: frozenset[str] = frozenset()
_IS_NONE = partial(is_, None)
_NULL_ROWS_KEPT = 1024
_FAILED = object()  # a condition that raised: settled by ``untimed_failure``


def _compile(rules: tuple[Rule, ...]) -> CompiledRules:
    names: set[str] = set()
    for rule in rules:
        if rule.when is not None:
            names.update(rule.when.names)
        names.update(rule.weight_names)
    watched = tuple(sorted(names - NEVER_NULL))
    steps = tuple(CompiledRule.of(rule) for rule in rules)
    source, constants, flags = _generate(steps)
    namespace: dict[str, Any] = {}
    exec(compile(source, "<compiled rules>", "exec"), namespace)  # our own template only
    run: ListRun = namespace["_factory"](constants)
    # One name more than needed, so itemgetter always returns a tuple.
    values = itemgetter(*watched, watched[0]) if watched else _no_values
    return CompiledRules(rules, steps, watched, values, flags, run, source, {}, {})


def _no_values(_facts: Mapping[str, object]) -> tuple[object, ...]:
    return ()


# -- code generation ------------------------------------------------------------------


def _generate(
    steps: tuple[CompiledRule, ...],
) -> tuple[str, dict[str, object], tuple[frozenset[str], ...]]:
    """The source of ``_factory(K)``, which returns the list function; ``K``, the
    constants the source names (helpers, markers, and per rule ``S{k}`` its compiled
    form, ``R{k}`` the rule, ``N{k}`` its name, ``C{k}``/``WF{k}`` its condition's and
    weight's functions, ``NR{k}`` its null rows, ``F{k}`` its fixed outcome when fired);
    and the facts behind each flag of ``blocked`` (``b{k}``: a fact of the condition is
    null, ``v{k}``: a fact of the weight is)."""
    constants: dict[str, object] = {
        "RuleOutcome": RuleOutcome,
        "STOPPED": Skipped.STOPPED,
        "DISABLED": Skipped.DISABLED,
        "UNMATCHED": Skipped.UNMATCHED,
        "FALSE": Skipped.FALSE,
        "IDLE": IDLE,
        "FAILED": _FAILED,
        "null_row": null_row,
        "timed_rule": timed_rule,
        "untimed_failure": untimed_failure,
        "fire": fire,
        "carry_stopped": carry_stopped,
        "settle": settle,
        "held_memory": held_memory,
        "holds_something": holds_something,
    }
    flags: dict[str, frozenset[str]] = {}
    body: list[str] = []
    stop_seen = False  # a rule that can stop came before: later blocks check ``stopped``
    for k, step in enumerate(steps):
        constants.update({f"S{k}": step, f"R{k}": step.rule, f"N{k}": step.name})
        block = _block(k, step, constants, flags)
        if stop_seen:
            carry = [f"carry_stopped(S{k}, remembered, shared, timers)"] if step.timed else []
            body += ["if stopped:", f"    r{k} = STOPPED", *_indent(carry), "else:"]
            body += _indent(block)
        else:
            body += block
        stop_seen = stop_seen or (step.rule.stop and step.rule.enabled)
    rows = "".join(f"r{k}, " for k in range(len(steps)))
    head = [f"    {', '.join(constants)}, = K.values()"]
    unpack = [f"        {''.join(f'{flag}, ' for flag in flags)}= blocked"] if flags else []
    source = "\n".join(
        [
            "def _factory(K):",
            *head,
            "    def run(f, name, tags, nh, blocked, remembered, now, shared, weight, paused):",
            *unpack,
            "        fired = 0",
            "        timers = {}",
            "        errors = []",
            "        stopped = False",
            *("        " + line for line in body),
            f"        return ({rows}), weight, paused, fired, timers, errors",
            "    return run",
            "",
        ]
    )
    return source, constants, tuple(flags.values())


def _block(
    k: int, step: CompiledRule, constants: dict[str, object], flags: dict[str, frozenset[str]]
) -> list[str]:
    """The lines that settle rule ``k`` for one list: ``r{k}`` is its row."""
    rule = step.rule
    if not rule.enabled:
        return [f"r{k} = DISABLED"]
    if step.when is not None:
        constants[f"C{k}"] = step.when.function
        flags[f"b{k}"] = step.when_names
    if step.timed:
        general = [
            f"r{k}, kept = timed_rule(S{k}, f, nh, remembered.get(N{k}, IDLE), now, shared)",
            "if kept is not IDLE and holds_something(kept):",
            f"    timers[N{k}] = kept",
            *_apply_row(k, step),
        ]
        if step.when is None:
            lines = general
        elif step.held is not None and step.for_ is None and step.cooldown is None:
            # In effect exactly while the condition holds: only its memory is kept.
            constants[f"H{k}"] = step.held
            held = [
                f"kept = held_memory(remembered.get(N{k}, IDLE), now, shared)",
                f"timers[N{k}] = kept",
                f"r{k} = H{k}",
                *_effect_lines(k, step, step.held.effect, constants),
            ]
            lines = [
                f"if b{k}:",
                "    c = FAILED",
                "else:",
                "    try:",
                f"        c = C{k}(f)",
                "    except Exception:",
                "        c = FAILED",
                "if c is True:",
                *_indent(held),
                f"elif not c and N{k} not in remembered:",
                f"    r{k} = FALSE",
                "else:",
                *_indent(general),
            ]
        else:
            # A rule idle so far (no memory kept) whose condition is false stays idle:
            # nothing for its timers to do (``timed_rule`` settles every other case).
            lines = [
                f"if N{k} not in remembered and not b{k}:",
                "    try:",
                f"        c = C{k}(f)",
                "    except Exception:",
                "        c = FAILED",
                "else:",
                "    c = FAILED",
                "if not c:",
                f"    r{k} = FALSE",
                "else:",
                *_indent(general),
            ]
    elif step.when is None:
        lines = _fire(k, step, constants, flags) if step.constant else [f"r{k} = FALSE"]
    else:
        constants[f"NR{k}"] = step.null_rows
        lines = [
            f"if b{k}:",
            f"    r{k} = NR{k}.get(nh) or null_row(S{k}, nh)",
            "else:",
            "    try:",
            f"        c = C{k}(f)",
            "    except Exception:",
            "        c = FAILED",
            "    if not c:",
            f"        r{k} = FALSE",
            "    elif c is FAILED:",
            f"        r{k} = untimed_failure(S{k}, f)",
            *_indent(_apply_row(k, step), 2),
            "    else:",
            *_indent(_fire(k, step, constants, flags), 2),
        ]
    if rule.matches_every_list:
        return lines
    return [f"if not R{k}.matches(name, tags):", f"    r{k} = UNMATCHED", "else:", *_indent(lines)]


def _fire(
    k: int, step: CompiledRule, constants: dict[str, object], flags: dict[str, frozenset[str]]
) -> list[str]:
    """An untimed rule whose condition holds: its effect, fixed or computed (a weight
    that reads a null fact or fails goes through ``fire``, which says why)."""
    if step.fired is not None:
        constants[f"F{k}"] = step.fired
        return [f"r{k} = F{k}", *_effect_lines(k, step, step.fired.effect, constants)]
    if step.weight is None:  # cannot happen: an effect without a weight expression is fixed
        return [f"r{k} = fire(S{k}, f)", *_apply_row(k, step)]
    constants[f"WF{k}"] = step.weight.function
    flags[f"v{k}"] = frozenset(step.weight_names)
    computed: dict[str, object] = {"weight": "w"}  # the weight the block just computed
    if step.paused is not None:
        computed["paused"] = step.paused
    effect_lines = _effect_lines(k, step, computed, constants)
    return [
        "w = None",
        f"if not v{k}:",
        "    try:",
        f"        w = float(WF{k}(f))",
        "    except Exception:",
        "        pass",
        "if w is None:",
        f"    r{k} = fire(S{k}, f)",
        *_indent(_apply_row(k, step)),
        "else:",
        f"    r{k} = w",
        *_indent(effect_lines),
    ]


def _effect_lines(
    k: int, step: CompiledRule, effect: Mapping[str, object], constants: dict[str, object]
) -> list[str]:
    """An effect applied: the rule marked fired, the weight and pause it sets, and a
    stop. A weight of ``"w"`` is the local the block computed; any other is fixed."""
    lines = [f"fired |= {1 << k}"]
    if effect.get("weight") == "w":
        lines.append("weight = w")
    elif "weight" in effect:
        constants[f"W{k}"] = float(effect["weight"])  # type: ignore[arg-type]
        lines.append(f"weight = W{k}")
    if "paused" in effect:
        lines.append(f"paused = {bool(effect['paused'])!r}")
    if step.rule.stop:
        lines.append("stopped = True")
    return lines


def _apply_row(k: int, step: CompiledRule) -> list[str]:
    """Whatever row rule ``k`` left, through ``settle``: its error noted, its effect (if
    any) applied (the rarer paths: one call keeps the generated code short)."""
    return [
        f"if r{k}.__class__ is RuleOutcome:",
        f"    weight, paused, fired, stopped = settle(r{k}, S{k}, {1 << k}, weight, paused,"
        " fired, stopped, errors)",
    ]


def _indent(lines: list[str], levels: int = 1) -> list[str]:
    pad = "    " * levels
    return [pad + line for line in lines]


# -- the helpers a block calls ---------------------------------------------------------


def settle(
    row: RuleOutcome,
    step: CompiledRule,
    bit: int,
    weight: float,
    paused: bool,
    fired: int,
    stopped: bool,
    errors: list[tuple[str, str]],
) -> tuple[float, bool, int, bool]:
    """A rule's outcome applied to the list: its error noted; its effect, if any, sets
    the weight or pause, marks the rule fired, and stops later rules if it says so."""
    if row.error is not None:
        errors.append((step.name, row.error))
    effect = row.effect
    if effect:
        fired |= bit
        if "weight" in effect:
            weight = float(effect["weight"])  # type: ignore[arg-type]
        if "paused" in effect:
            paused = bool(effect["paused"])
        if step.rule.stop:
            stopped = True
    return weight, paused, fired, stopped


def null_row(step: CompiledRule, null_here: frozenset[str]) -> RuleOutcome:
    """The outcome of a condition that reads a null fact (kept per set of null facts)."""
    row = step.null_rows.get(null_here)
    if row is None:
        if len(step.null_rows) >= _NULL_ROWS_KEPT:
            step.null_rows.clear()
        nulls = tuple(n for n in step.when_sorted if n in null_here)
        row = step.null_rows[null_here] = RuleOutcome(None, nulls, None, None, None, EMPTY)
    return row


def _failed(when: Expression, facts: Mapping[str, object]) -> tuple[bool | None, str | None]:
    """A condition whose compiled call raised: evaluated again through the wrapper, which
    turns the fault into a one-line message."""
    try:
        return bool(when(facts)), None
    except ExpressionEvaluationError as exc:
        return None, f"when: {exc.message}"


def untimed_failure(step: CompiledRule, facts: Mapping[str, object]) -> Row:
    """An untimed rule whose condition raised: not in effect, with the error."""
    assert step.when is not None
    condition, error = _failed(step.when, facts)
    if error is None:  # the second call did not fail: the condition stands
        return fire(step, facts) if condition else Skipped.FALSE
    return RuleOutcome(None, (), error, None, None, EMPTY)


def fire(step: CompiledRule, facts: Mapping[str, object]) -> RuleOutcome:
    """An untimed rule whose condition holds."""
    if step.fired is not None:
        return step.fired
    effect, nulls, error = effect_of(step, facts, ())
    return RuleOutcome(True, nulls, error, None, None, effect)


def effect_of(
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
    try:
        values = step.weight_values(facts) if step.weight_values is not None else ()
    except KeyError:  # a fact the list lacks reads as null here
        values = (None,)
    if None in values:
        missing = tuple(n for n in step.weight_names if facts.get(n) is None)
        return EMPTY, tuple(sorted(set(nulls) | set(missing))), None
    try:
        effect["weight"] = float(weight.function(facts))  # type: ignore[arg-type]
    except Exception:
        try:
            effect["weight"] = float(weight(facts))  # type: ignore[arg-type]
        except ExpressionEvaluationError as exc:
            return EMPTY, nulls, f"set.weight: {exc.message}"
    return effect, nulls, None


def timed_rule(
    step: CompiledRule,
    facts: Mapping[str, object],
    null_here: frozenset[str],
    previous: RuleMemory,
    now: datetime,
    shared: dict[Timers, RuleMemory],
) -> tuple[Row, RuleMemory]:
    """A timed rule's outcome for one list, and its memory after (``previous`` is
    ``IDLE`` for a rule never seen)."""
    nulls: tuple[str, ...] = ()
    error: str | None = None
    condition: bool | None
    when = step.when
    if when is None:
        condition = step.constant
    elif null_here and not null_here.isdisjoint(step.when_names):
        row = null_row(step, null_here)
        if not previous.active and previous.holding_since is None:
            return row, previous  # out of effect, and no timer can move
        condition, nulls = None, row.null_facts
    else:
        try:
            condition = bool(when.function(facts))
        except Exception:
            condition, error = _failed(when, facts)

    if condition is True and step.held is not None and step.for_ is step.cooldown is None:
        return step.held, held_memory(previous, now, shared)
    if not condition and not previous.active and previous.holding_since is None:
        # Not holding, was not in effect, stays out of effect: no timer runs and a
        # cooldown has nothing to hold. The memory is unchanged.
        if condition is False:
            return Skipped.FALSE, previous
        return RuleOutcome(condition, nulls, error, None, None, EMPTY), previous

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

    effect: Mapping[str, object] = EMPTY
    if active:
        effect, nulls, effect_error = effect_of(step, facts, nulls)
        if effect_error is not None:
            error = effect_error
        if not effect:
            # The effect could not be computed: the rule is not in effect this cycle.
            active, changed_at = previous.active, previous.active_changed_at

    memory = remember(holding_since, active, changed_at, previous, shared)
    if condition is False and not (pending or cooldown_left or effect):
        return Skipped.FALSE, memory
    if (
        effect is step.effect
        and condition is True
        and not nulls
        and error is None
        and pending is None
        and cooldown_left is None
    ):
        return step.held, memory  # type: ignore[return-value]  # held: a fixed effect
    return RuleOutcome(condition, nulls, error, pending, cooldown_left, effect), memory


def held_memory(
    previous: RuleMemory, now: datetime, shared: dict[Timers, RuleMemory]
) -> RuleMemory:
    """The memory of a rule without ``for:`` or ``cooldown:`` whose fixed effect applies
    (a pausing rule: timed only to remember that it is in effect, for a resume's reason):
    what the general steps of ``timed_rule`` come to for it, in short."""
    changed_at = previous.active_changed_at if previous.active else now
    return remember(previous.holding_since or now, True, changed_at, previous, shared)


def carry_stopped(
    step: CompiledRule,
    remembered: Mapping[str, RuleMemory],
    shared: dict[Timers, RuleMemory],
    timers: dict[str, RuleMemory],
) -> None:
    """A timed rule not evaluated after a stop: no longer holding, but still in (or out
    of) effect as before."""
    previous = remembered.get(step.name)
    if previous is None:
        return
    carried = remember(None, previous.active, previous.active_changed_at, previous, shared)
    if holds_something(carried):
        timers[step.name] = carried


def remember(
    holding_since: datetime | None,
    active: bool,
    changed_at: datetime | None,
    previous: RuleMemory,
    shared: dict[Timers, RuleMemory],
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


def holds_something(memory: RuleMemory) -> bool:
    """A timer runs or the rule is (or was lately) in effect: worth keeping. An idle
    memory is what a rule never seen starts from, so it need not be stored."""
    return memory.active or memory.holding_since is not None or memory.active_changed_at is not None
