"""The functions a rule expression may call, with the signatures the type checker uses.

Durations are numbers of **hours** (the unit of ``hours_to_deadline``, ``eta_hours`` and
the rates), so ``hours``, ``days`` and ``minutes`` convert into hours:
``hours_to_deadline < days(2)``. ``idle_minutes`` is the one fact counted in minutes.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Any, Final

from mixer.engine.expressions.values import Kind, ValueType
from mixer.engine.names import glob_matches, nfc

MAX_MAGNITUDE: Final = 10**15
"""Largest absolute value a constant or an arithmetic result may have."""

_MAX_ROUND_DIGITS: Final = 15
_WILDCARDS: Final = re.compile(r"[*?\[]")


class EvaluationProblem(ArithmeticError):
    """Raised inside a compiled expression; the ``Expression`` turns it into the public error."""


def bounded(value: float) -> float:
    """Pass ``value`` through, or fail if it left ±MAX_MAGNITUDE (NaN fails too)."""
    if -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:
        return value
    raise EvaluationProblem(f"a result went out of range (beyond ±{MAX_MAGNITUDE:.0e})")


def _clamp(value: float, low: float, high: float) -> float:
    if low > high:
        raise EvaluationProblem(f"clamp(x, lo, hi) got lo {low:g} above hi {high:g}")
    return low if value < low else high if value > high else value


def _round(value: float, digits: float = 0) -> float:
    """Halves round away from zero (2.5 -> 3), as people expect, not Python's to-even."""
    if digits != int(digits) or not 0 <= digits <= _MAX_ROUND_DIGITS:
        raise EvaluationProblem(
            f"round(x, n) needs n to be a whole number from 0 to {_MAX_ROUND_DIGITS}"
        )
    if isinstance(value, int):
        return value
    rounded = Decimal(repr(value)).quantize(Decimal(1).scaleb(-int(digits)), ROUND_HALF_UP)
    return int(rounded) if digits == 0 else float(rounded)


def _steady(current: float, target: float, step: float) -> float:
    """``target`` rounded to a multiple of ``step``, except that ``current`` is kept while
    ``target`` stays within three quarters of a step of it: a dead band, so a target that
    hovers near a rounding boundary does not rewrite the weight back and forth."""
    if not step > 0:
        raise EvaluationProblem(f"steady(current, target, step) needs a step above 0, got {step:g}")
    if abs(target - current) < 0.75 * step:
        return current
    return step * _round(target / step)


def _hours(count: float) -> float:
    return count


def _days(count: float) -> float:
    return bounded(count * 24)


def _minutes(count: float) -> float:
    return count / 60


def glob_matcher(globs: Iterable[str], *, many: bool) -> Callable[[Any], bool]:
    """``matches(text, globs...)`` with its globs known at compile time, made once.

    Plain names become a set lookup, ``Prefix*`` a ``startswith``, anything else one
    regular expression: the same answers as ``fnmatchcase``, several times faster.
    ``many`` says the text is a list of strings (any of them may match).
    """
    exact: set[str] = set()
    prefixes: list[str] = []
    patterns: list[str] = []
    for glob in map(nfc, globs):  # names are compared in NFC (mixer.engine.names)
        if not _WILDCARDS.search(glob):
            exact.add(glob)
        elif glob.endswith("*") and not _WILDCARDS.search(glob[:-1]):
            prefixes.append(glob[:-1])
        else:
            patterns.append(fnmatch.translate(glob))
    starts = tuple(prefixes)
    regex = re.compile("|".join(patterns)).match if patterns else None
    one: Callable[[str], bool]
    if regex is None and not exact:
        one = _starts_with(starts)
    elif regex is None and not starts:
        one = frozenset(exact).__contains__
    else:

        def one(text: str) -> bool:
            return (
                text in exact
                or text.startswith(starts)
                or (regex is not None and regex(text) is not None)
            )

    composed = one

    def in_nfc(text: str) -> bool:
        return composed(nfc(text))

    if not many:
        return in_nfc
    return lambda texts: any(in_nfc(text) for text in texts)


def _starts_with(prefixes: tuple[str, ...]) -> Callable[[str], bool]:
    return lambda text: text.startswith(prefixes)


def _matches(text: str | Iterable[str], *globs: str | Iterable[str]) -> bool:
    patterns = [glob for item in globs for glob in ((item,) if isinstance(item, str) else item)]
    texts = (text,) if isinstance(text, str) else text
    return any(glob_matches(one, pattern) for one in texts for pattern in patterns)


FUNCTIONS: Final[Mapping[str, Callable[..., object]]] = MappingProxyType(
    {
        "abs": abs,
        "ceil": math.ceil,
        "clamp": _clamp,
        "days": _days,
        "floor": math.floor,
        "hours": _hours,
        "matches": _matches,
        "max": max,
        "min": min,
        "minutes": _minutes,
        "round": _round,
        "steady": _steady,
    }
)

FUNCTION_NAMES: Final = frozenset(FUNCTIONS)

_NUMBER: Final = frozenset({ValueType.NUMBER})
_TEXT: Final = frozenset({ValueType.STRING, ValueType.STRINGS})


@dataclass(frozen=True, slots=True)
class Signature:
    """Argument types of one function: ``required`` then ``optional`` then ``rest``."""

    usage: str
    required: tuple[frozenset[Kind], ...]
    result: ValueType
    optional: tuple[frozenset[Kind], ...] = ()
    rest: frozenset[Kind] | None = None

    def parameter(self, index: int) -> frozenset[Kind] | None:
        """The kinds accepted at ``index``, or None when there is no such parameter."""
        fixed = self.required + self.optional
        if index < len(fixed):
            return fixed[index]
        return self.rest

    def arity(self) -> str:
        """``"2"``, ``"1 or 2"``, ``"at least 2"``: for arity error messages."""
        low = len(self.required)
        if self.rest is not None:
            return f"at least {low}"
        high = low + len(self.optional)
        return str(low) if high == low else f"{low} or {high}"

    def accepts_count(self, count: int) -> bool:
        """Whether ``count`` arguments fit."""
        if count < len(self.required):
            return False
        return self.rest is not None or count <= len(self.required) + len(self.optional)


_ONE_NUMBER = (_NUMBER,)

SIGNATURES: Final[Mapping[str, Signature]] = MappingProxyType(
    {
        "abs": Signature("abs(x)", _ONE_NUMBER, ValueType.NUMBER),
        "ceil": Signature("ceil(x)", _ONE_NUMBER, ValueType.NUMBER),
        "clamp": Signature("clamp(x, lo, hi)", (_NUMBER, _NUMBER, _NUMBER), ValueType.NUMBER),
        "days": Signature("days(n)", _ONE_NUMBER, ValueType.NUMBER),
        "floor": Signature("floor(x)", _ONE_NUMBER, ValueType.NUMBER),
        "hours": Signature("hours(n)", _ONE_NUMBER, ValueType.NUMBER),
        "matches": Signature(
            "matches(text, glob, ...)", (_TEXT, _TEXT), ValueType.BOOL, rest=_TEXT
        ),
        "max": Signature("max(a, b, ...)", (_NUMBER, _NUMBER), ValueType.NUMBER, rest=_NUMBER),
        "min": Signature("min(a, b, ...)", (_NUMBER, _NUMBER), ValueType.NUMBER, rest=_NUMBER),
        "minutes": Signature("minutes(n)", _ONE_NUMBER, ValueType.NUMBER),
        "round": Signature("round(x[, n])", _ONE_NUMBER, ValueType.NUMBER, optional=_ONE_NUMBER),
        "steady": Signature(
            "steady(current, target, step)", (_NUMBER, _NUMBER, _NUMBER), ValueType.NUMBER
        ),
    }
)
