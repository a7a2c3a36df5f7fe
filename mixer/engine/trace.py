"""Traces: what each rule did for a list, and the sentence a decision carries.

A cycle evaluates every rule for every list but reads few traces (``explain``, the tests
and the lists that change do), so evaluation records one compact ``Row`` per rule — a
shared ``Skipped`` marker or a ``RuleOutcome`` — and the full ``RuleTrace`` with its
sentence is built from it on demand. Pure.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from functools import lru_cache
from types import MappingProxyType
from typing import NamedTuple

from mixer.engine.format_specs import capped, spec_too_large
from mixer.engine.rules import Rule

NO_RULE_REASON = "No rule fired: baseline."


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """What one rule did (or why it did nothing) for one list."""

    rule: str
    file: str
    line: int
    matched: bool
    enabled: bool
    condition: bool | None  # None = not evaluated, a null fact, or an error
    null_facts: tuple[str, ...]
    values: Mapping[str, object]  # the facts the rule read
    error: str | None
    pending_for: timedelta | None  # a `for:` still running: time left
    cooldown_left: timedelta | None  # a cooldown holding the previous state: time left
    fired: bool
    effect: Mapping[str, object]  # what `set` did
    stopped_here: bool
    note: str  # one human sentence


class Skipped(Enum):
    """The outcomes of a rule that need no record of their own (shared, never copied)."""

    STOPPED = "Not evaluated: an earlier rule stopped."
    DISABLED = "Disabled (enabled: false)."
    UNMATCHED = "Does not match this list."
    FALSE = "Condition false."  # evaluated: false, no null fact, no error, no timer


class RuleOutcome(NamedTuple):
    """What an evaluated rule did for one list (a tuple: one is made per rule per list)."""

    condition: bool | None  # None = a null fact or an error
    null_facts: tuple[str, ...]
    error: str | None
    pending_for: timedelta | None  # a `for:` still running: time left
    cooldown_left: timedelta | None  # a cooldown holding the previous state: time left
    effect: Mapping[str, object]  # empty: not fired


# A float is the row of a rule without timers whose computed weight was applied: its
# outcome is ``RuleOutcome(True, (), None, None, None, {paused?, "weight": row})``, spelled
# out by ``trace_row`` (a float is the cheapest record the collector never scans).
Row = Skipped | RuleOutcome | float


class RuleOutcomes(NamedTuple):
    """Every rule's outcome for one list, kept compact; ``trace()`` spells them out.

    A cycle evaluates every rule for every list but nobody reads most traces (``explain``
    and tests do), so the ``RuleTrace`` records and their sentences are built on demand
    from these rows, the rules and the list's facts — with the same content.
    """

    rules: tuple[Rule, ...]
    rows: tuple[Row, ...]
    facts: Mapping[str, object]

    def trace(self) -> tuple[RuleTrace, ...]:
        return tuple(
            trace_row(rule, row, self.facts)
            for rule, row in zip(self.rules, self.rows, strict=True)
        )


_CONDITION_FALSE = RuleOutcome(False, (), None, None, None, MappingProxyType({}))


def trace_row(rule: Rule, row: Row, facts: Mapping[str, object]) -> RuleTrace:
    """The full record of one row (see ``RuleOutcomes``)."""
    if isinstance(row, Skipped) and row is not Skipped.FALSE:
        return RuleTrace(
            rule=rule.name,
            file=rule.file,
            line=rule.line,
            matched=row is not Skipped.UNMATCHED,
            enabled=row is not Skipped.DISABLED,
            condition=None,
            null_facts=(),
            values=MappingProxyType({}),
            error=None,
            pending_for=None,
            cooldown_left=None,
            fired=False,
            effect=MappingProxyType({}),
            stopped_here=False,
            note=row.value,
        )
    if isinstance(row, float):
        applied: dict[str, object] = {} if rule.paused is None else {"paused": rule.paused}
        applied["weight"] = row
        row = RuleOutcome(True, (), None, None, None, applied)
    outcome = _CONDITION_FALSE if isinstance(row, Skipped) else row
    condition, nulls, error, pending, cooldown_left, effect = outcome
    fired = bool(effect)
    return RuleTrace(
        rule=rule.name,
        file=rule.file,
        line=rule.line,
        matched=True,
        enabled=True,
        condition=condition,
        null_facts=nulls,
        values=MappingProxyType({fact: facts.get(fact) for fact in rule.sorted_reads}),
        error=error,
        pending_for=pending,
        cooldown_left=cooldown_left,
        fired=fired,
        effect=MappingProxyType(dict(effect)),
        stopped_here=fired and rule.stop,
        note=_note(rule, condition, nulls, error, pending, cooldown_left, fired, effect),
    )


def _note(
    rule: Rule,
    condition: bool | None,
    nulls: tuple[str, ...],
    error: str | None,
    pending: timedelta | None,
    cooldown_left: timedelta | None,
    fired: bool,
    effect: Mapping[str, object],
) -> str:
    if error is not None:
        return f"Not fired: evaluation error ({error})."
    if nulls and not fired:
        return f"Not fired: {', '.join(nulls)} {'is' if len(nulls) == 1 else 'are'} null."
    if cooldown_left is not None:
        state = "in effect" if fired else "out of effect"
        return (
            f"Condition is {'true' if condition else 'not true'}, but the cooldown keeps the "
            f"rule {state} for {_minutes(cooldown_left)} more."
        )
    if pending is not None:
        assert rule.for_ is not None
        return (
            f"Condition true, waiting: fires after {_minutes(pending)} more "
            f"(for: {_minutes(rule.for_)})."
        )
    if fired:
        parts = [f"{k} → {_value(v)}" for k, v in effect.items()]
        text = "Fired: " + ", ".join(parts)
        return text + ("; evaluation stops here." if rule.stop else ".")
    return "Condition false."


def reason_sentence(fired: Sequence[Rule], facts: Mapping[str, object]) -> str:
    """One sentence from the fired rules' descriptions (their names when none)."""
    if not fired:
        return NO_RULE_REASON
    parts = []
    for rule in fired:
        text = _render(rule, facts) if rule.description else f"rule {rule.name}"
        parts.append(text.strip().rstrip("."))
    sentence = "; ".join(p for p in parts if p)
    return sentence[:1].upper() + sentence[1:] + "."


def _render(rule: Rule, facts: Mapping[str, object]) -> str:
    """Fill ``{fact}`` / ``{fact:.1f}`` placeholders; a null fact shows as ``?``."""
    description = rule.description or ""
    if not rule.placeholders:
        return description
    out: list[str] = []
    for literal, name, spec in _parsed(description):
        out.append(literal)
        if name is None:
            continue
        value = facts.get(name)
        if value is None:
            out.append("?")
            continue
        if spec_too_large(spec):
            out.append(_value(value))
            continue
        try:
            out.append(format(value, spec or ""))
        except (TypeError, ValueError):
            out.append(_value(value))
    return capped("".join(out))


@lru_cache(maxsize=1024)
def _parsed(description: str) -> tuple[tuple[str, str | None, str | None], ...]:
    """A description's literal text and placeholders, parsed once per text."""
    return tuple(
        (literal, name, spec) for literal, name, spec, _ in string.Formatter().parse(description)
    )


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if math.isfinite(value) else str(value)
    return str(value)


def _minutes(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds // 60} min"
