"""Property: compiled expressions compute what plain Python computes on the same numbers."""

from __future__ import annotations

import fnmatch
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from mixer.engine.expressions import (
    MAX_MAGNITUDE,
    ExpressionEvaluationError,
    ValueType,
    compile_expression,
)
from mixer.engine.expressions.functions import glob_matcher

Facts = Mapping[str, float]
FACT_NAMES = ("a", "b", "c")
SCHEMA = dict.fromkeys(FACT_NAMES, ValueType.NUMBER)


class OutOfRange(ArithmeticError):
    """The reference saw an intermediate result beyond the language's bound."""


@dataclass(frozen=True)
class Term:
    """A generated expression: its source and a reference evaluator built from closures."""

    source: str
    reference: Callable[[Facts], object]


def _checked(value: float) -> float:
    if not -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:
        raise OutOfRange
    return value


ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
}
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _fact(name: str) -> Term:
    return Term(name, lambda facts: facts[name])


def _constant(value: int) -> Term:
    return Term(f"({value})", lambda _facts: value)


def _binary(parts: tuple[Term, str, Term]) -> Term:
    left, symbol, right = parts
    apply = ARITHMETIC[symbol]
    return Term(
        f"({left.source} {symbol} {right.source})",
        lambda facts: _checked(apply(left.reference(facts), right.reference(facts))),
    )


def _negate(term: Term) -> Term:
    return Term(f"(-{term.source})", lambda facts: -term.reference(facts))


def _extreme(parts: tuple[str, Term, Term]) -> Term:
    name, first, second = parts
    pick = min if name == "min" else max
    return Term(
        f"{name}({first.source}, {second.source})",
        lambda facts: pick(first.reference(facts), second.reference(facts)),
    )


def _absolute(term: Term) -> Term:
    return Term(f"abs({term.source})", lambda facts: abs(term.reference(facts)))


LEAVES = st.one_of(st.sampled_from(FACT_NAMES).map(_fact), st.integers(-50, 50).map(_constant))

NUMBERS = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(sorted(ARITHMETIC)), inner).map(_binary),
        inner.map(_negate),
        inner.map(_absolute),
        st.tuples(st.sampled_from(["min", "max"]), inner, inner).map(_extreme),
    ),
    max_leaves=6,
)


def _comparison(parts: tuple[Term, str, Term]) -> Term:
    left, symbol, right = parts
    apply = COMPARISONS[symbol]
    return Term(
        f"({left.source} {symbol} {right.source})",
        lambda facts: apply(left.reference(facts), right.reference(facts)),
    )


def _both(parts: tuple[Term, Term]) -> Term:
    first, second = parts
    return Term(
        f"({first.source} and {second.source})",
        lambda facts: first.reference(facts) and second.reference(facts),
    )


def _either(parts: tuple[Term, Term]) -> Term:
    first, second = parts
    return Term(
        f"({first.source} or {second.source})",
        lambda facts: first.reference(facts) or second.reference(facts),
    )


def _invert(term: Term) -> Term:
    return Term(f"(not {term.source})", lambda facts: not term.reference(facts))


CONDITIONS = st.recursive(
    st.tuples(NUMBERS, st.sampled_from(sorted(COMPARISONS)), NUMBERS).map(_comparison),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(_both),
        st.tuples(inner, inner).map(_either),
        inner.map(_invert),
    ),
    max_leaves=3,
)

FACT_VALUES = st.fixed_dictionaries(
    {
        name: st.one_of(
            st.integers(-100, 100),
            st.floats(-100, 100, allow_nan=False, allow_infinity=False),
        )
        for name in FACT_NAMES
    }
)


def _expected(term: Term, facts: Facts) -> object:
    try:
        return term.reference(facts)
    except (ZeroDivisionError, OutOfRange):
        return ExpressionEvaluationError


def _actual(source: str, expect: ValueType, facts: Facts) -> object:
    expression = compile_expression(source, SCHEMA, expect=expect)
    try:
        return expression(facts)
    except ExpressionEvaluationError:
        return ExpressionEvaluationError


@settings(max_examples=150, deadline=None)
@given(term=NUMBERS, facts=FACT_VALUES)
def test_arithmetic_matches_python(term: Term, facts: Facts) -> None:
    """Random arithmetic over numeric facts equals Python's result, or both fail."""
    assert _actual(term.source, ValueType.NUMBER, facts) == _expected(term, facts)


@settings(max_examples=150, deadline=None)
@given(term=CONDITIONS, facts=FACT_VALUES)
def test_conditions_match_python(term: Term, facts: Facts) -> None:
    """Random conditions (comparisons, and/or/not) equal Python's truth, or both fail."""
    assert _actual(term.source, ValueType.BOOL, facts) == _expected(term, facts)


GLOB_ALPHABET = st.sampled_from(["a", "b", "R", " ", "-", "*", "?", "[ab]", "[!a]"])
GLOBS = st.lists(st.lists(GLOB_ALPHABET, max_size=5).map("".join), min_size=1, max_size=3)
TEXTS = st.text(alphabet="abR -", max_size=6)


@settings(max_examples=300, deadline=None)
@given(globs=GLOBS, texts=st.lists(TEXTS, max_size=3))
def test_compiled_globs_agree_with_fnmatchcase(globs: list[str], texts: list[str]) -> None:
    """Globs compiled once at compile time answer exactly as fnmatch.fnmatchcase does."""
    for text in texts:
        expected = any(fnmatch.fnmatchcase(text, glob) for glob in globs)
        assert glob_matcher(globs, many=False)(text) is expected
    many = any(fnmatch.fnmatchcase(text, glob) for text in texts for glob in globs)
    assert glob_matcher(globs, many=True)(texts) is many
