"""The rule expression language: what it accepts, computes, rejects, and where it points."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pytest

from mixer.engine.expressions import (
    FUNCTION_NAMES,
    FUNCTIONS,
    MAX_SOURCE_CHARS,
    Expression,
    ExpressionError,
    ExpressionEvaluationError,
    ValueType,
    compile_expression,
)
from mixer.errors import MixerError

N, B, S, L = ValueType.NUMBER, ValueType.BOOL, ValueType.STRING, ValueType.STRINGS
DT, D = ValueType.DATETIME, ValueType.DATE

SCHEMA: Mapping[str, ValueType] = {
    "hours_to_deadline": N,
    "unpulled": N,
    "idle_minutes": N,
    "base_weight": N,
    "weight": N,
    "hour": N,
    "weekday": N,
    "progress": N,
    "zero": N,
    "can_reserve": B,
    "standby": B,
    "list": S,
    "notes": S,
    "tags": L,
    "now": DT,
    "last_pull": DT,
    "date": D,
}

FACTS: Mapping[str, object] = {
    "hours_to_deadline": 20.0,
    "unpulled": 120,
    "idle_minutes": 45.0,
    "base_weight": 10,
    "weight": 12,
    "hour": 10,
    "weekday": 2,
    "progress": 0.25,
    "zero": 0,
    "can_reserve": True,
    "standby": False,
    "list": "Recalls Apr",
    "notes": "VIP callers; deadline: 2024-04-30",
    "tags": ("recall", "vip"),
    "now": dt.datetime(2024, 4, 24, 10, 30, tzinfo=dt.UTC),
    "last_pull": dt.datetime(2024, 4, 24, 9, 45, tzinfo=dt.UTC),
    "date": dt.date(2024, 4, 24),
}


def _bool(source: str) -> Expression:
    return compile_expression(source, SCHEMA, expect=B)


def _number(source: str) -> Expression:
    return compile_expression(source, SCHEMA, expect=N)


def _error(source: str, expect: ValueType = B) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source, SCHEMA, expect=expect)
    return info.value


VALID_CONDITIONS = [
    ("hours_to_deadline < 48 and unpulled > 0", True),
    ("hours_to_deadline < days(2) and unpulled > 0", True),
    ("hours_to_deadline < hours(12)", False),
    ("idle_minutes > 30", True),
    ("minutes(90) == 1.5", True),
    ("not can_reserve and unpulled == 0", False),
    ("hour < 9 or hour >= 17 or weekday >= 5", False),
    ("9 <= hour < 17", True),
    ("standby or can_reserve", True),
    ("not standby", True),
    ("standby == False", True),
    ("list == 'Recalls Apr'", True),
    ("list != 'Recalls Apr'", False),
    ('"recall" in tags', True),
    ('"b2b" not in tags', True),
    ("list in ['Recalls Apr', 'Sales']", True),
    ("hour in [9, 10, 11]", True),
    ("hour not in (9, 10, 11)", False),
    ("'VIP' in notes", True),
    ("matches(list, 'Recalls*')", True),
    ("matches(list, 'recalls*')", False),
    ("matches(list, 'B2B*', 'Rec?lls*')", True),
    ("matches(list, ['B2B*', 'Sales*'])", False),
    ("matches(tags, 'vi*')", True),
    ("matches(tags, 'b2b', 'recall')", True),
    ("matches(list, 'Recalls Apr')", True),
    ("matches(list, '*Apr', 'x')", True),
    ("matches(list, 'Recalls [A-Z]pr')", True),
    ("matches(list, 'Re?alls*', 'Sales')", True),
    ("matches(list, notes)", False),
    ("matches(notes, 'VIP*', list)", True),
    ("date >= '2024-04-01'", True),
    ("'2024-04-01' <= date < '2024-05-01'", True),
    ("date == '2024-04-25'", False),
    ("date in ['2024-12-24', '2024-04-24']", True),
    ("date not in ['2024-12-24', '2024-12-25']", True),
    ("last_pull < now", True),
    ("(unpulled if can_reserve else 0) > 100", True),
    ("progress * 100 >= 25", True),
    ("unpulled // 7 == 17 and unpulled % 7 == 1", True),
    ("-hour < +hour", True),
    ("True", True),
]


@pytest.mark.parametrize(("source", "expected"), VALID_CONDITIONS)
def test_valid_condition_gives_python_truth(source: str, expected: bool) -> None:
    """Each valid condition compiles to BOOL and gives the value Python semantics would."""
    expression = _bool(source)
    assert expression.result_type is B
    assert expression(FACTS) is expected


VALID_NUMBERS = [
    ("base_weight * 3", 30),
    ("base_weight / 4", 2.5),
    ("min(base_weight * 3, 50)", 30),
    ("max(base_weight, weight, 11)", 12),
    ("clamp(base_weight * 10, 1, 50)", 50),
    ("clamp(-5, 1, 50)", 1),
    ("abs(-hour)", 10),
    ("round(2.5)", 3),
    ("round(-2.5)", -3),
    ("round(1.005, 2)", 1.01),
    ("floor(progress * 10)", 2),
    ("ceil(progress * 10)", 3),
    ("days(1.5)", 36),
    ("base_weight * 3 if hours_to_deadline < 24 else base_weight", 30),
    ("base_weight + 2 * (hour - 8)", 14),
    ("weight", 12),
    ("steady(weight, 14, 5)", 12),  # within 3/4 of a step of the current weight: kept
    ("steady(weight, 16, 5)", 15),  # beyond it: the target, rounded to a step
    ("steady(5, 8.6, 5)", 5),
    ("steady(5, 8.8, 5)", 10),
    ("steady(10, 6.4, 5)", 10),
    ("steady(10, 6.2, 5)", 5),
]


@pytest.mark.parametrize(("source", "expected"), VALID_NUMBERS)
def test_valid_weight_expression_gives_its_value(source: str, expected: float) -> None:
    """Each valid weight expression compiles to NUMBER and computes the expected value."""
    expression = _number(source)
    assert expression.result_type is N
    assert expression(FACTS) == pytest.approx(expected)


REJECTED = [
    # (source, message fragment, offset, length)
    ("().__class__", "attribute access ('.__class__') is not allowed", 0, 12),
    ("list.__class__ == 1", "attribute access ('.__class__')", 0, 14),
    ("hour.real > 3", "attribute access ('.real')", 0, 9),
    ("tags[0] == 'x'", "indexing and slicing", 0, 7),
    ("list[1:] == 'x'", "indexing and slicing", 0, 8),
    ("__import__('os')", "unknown function '__import__'", 0, 10),
    ("eval('1')", "unknown function 'eval'", 0, 4),
    ("(lambda: 1)() > 0", "'lambda' is not allowed", 1, 9),
    ("[x for x in tags] == 1", "comprehensions are not allowed", 0, 17),
    ("any(x for x in tags)", "unknown function 'any'", 0, 3),
    ("2 ** 10 > hour", "the power operator '**' is not allowed", 0, 7),
    ("hour & 1", "'&' is not allowed: write 'and'", 0, 8),
    ("standby | can_reserve", "'|' is not allowed: write 'or'", 0, 21),
    ("~hour > 1", "'~' is not allowed", 0, 5),
    ("hour > 10000000000000000", "number too large", 7, 17),
    ("hour > 1e300", "number too large", 7, 5),
    ("list == '" + "x" * 201 + "'", "string too long", 8, 203),
    ("(hour := 3) > 1", "assignment (':=') is not allowed", 1, 9),
    ("f'{hour}' == list", "f-strings are not allowed", 0, 9),
    ("{'a': 1} == 1", "dict literals", 0, 8),
    ("hour in {1, 2}", "set literals", 8, 6),
    ("max(*tags) > 1", "unpacking ('*') is not allowed", 4, 5),
    ("round(hour, ndigits=1) > 1", "keyword arguments", 12, 9),
    ("hour == None", "null (None) cannot be written", 8, 4),
    ("hour is None", "null (None) cannot be written", 0, 12),
    ("hour is 3", "'is' is not allowed: write == or !=", 0, 9),
    ("hour == null", "null (None) cannot be written", 8, 4),
    ("standby == true", "unknown name 'true': write True", 11, 4),
    ("b'x' == list", "only numbers, strings, True and False", 0, 4),
    ("[1, 2]", "a list may only stand right of 'in'", 0, 6),
    ("hour in []", "an empty list matches nothing", 8, 2),
    ("hour in [1, 'a']", "a list holds only numbers or only strings", 12, 3),
    ("hour < 9 # morning", "comments are not allowed", 9, 9),
    ("hour < 9 && standby", "write 'and' instead of '&&'", 9, 2),
    ("hour < 9 || standby", "write 'or' instead of '||'", 9, 2),
    ("!standby", "write 'not' instead of '!'", 0, 1),
    ("hour = 9", "write '==' to compare", 5, 1),
    ("(hour < 9", "syntax error: '(' was never closed", 0, 1),
    ("hour <", "syntax error: the expression ends too early", 6, 1),
    ("hour < 3 and", "syntax error: the expression ends too early", 12, 1),
    ("hour if standby", "syntax error: expected 'else'", 0, 15),
    ("   ", "the expression is empty", 0, 3),
    ("min", "'min' is a function: call it", 0, 3),
    ("hour(3) > 1", "'hour' is a fact, not a function", 0, 4),
    ("tags.count('x') > 0", "attribute access ('.count')", 0, 10),
]


@pytest.mark.parametrize(("source", "fragment", "offset", "length"), REJECTED)
def test_rejected_construct_is_reported_at_its_spot(
    source: str, fragment: str, offset: int, length: int
) -> None:
    """Every construct outside the allow-list is refused with a message and a location."""
    error = _error(source)
    assert fragment in error.message
    assert (error.offset, error.length) == (offset, length)


UNKNOWN_NAMES = [
    ("hours_to_dedline < 48", "unknown name 'hours_to_dedline': did you mean 'hours_to_deadline'?"),
    ("unpuled > 0", "unknown name 'unpuled': did you mean 'unpulled'?"),
    ("hour < 9 and standbye", "unknown name 'standbye': did you mean 'standby'?"),
    ("mins(hour, 3) > 1", "unknown function 'mins': did you mean 'min'?"),
    ("xyzzy > 1", "unknown name 'xyzzy'"),
]


@pytest.mark.parametrize(("source", "message"), UNKNOWN_NAMES)
def test_unknown_name_suggests_the_closest_fact_or_function(source: str, message: str) -> None:
    """An unknown name is reported with a did-you-mean suggestion when one is close."""
    error = _error(source)
    assert error.message == message
    name = message.split("'")[1]
    assert source[error.offset : error.offset + error.length] == name


TYPE_ERRORS = [
    # (source, expect, message fragment, the part of the source underlined)
    ("list > 3", B, "cannot compare a string ('list') with a number ('3')", "list > 3"),
    ("hour < 9 < list", B, "cannot compare a number ('9') with a string", "9 < list"),
    ("base_weight + 'x'", N, "'+' needs numbers on both sides, but 'x' is a string", "'x'"),
    ("not hour", B, "'not' needs true/false, but 'hour' is a number", "hour"),
    ("hour and standby", B, "'and' needs true/false, but 'hour' is a number", "hour"),
    ("standby or 'x'", B, "'or' needs true/false, but 'x' is a string", "'x'"),
    ("-standby > 0", B, "'-' needs a number, but 'standby' is true/false", "-standby"),
    ("list < 'b'", B, "a string cannot be ordered", "list < 'b'"),
    ("standby < can_reserve", B, "true/false cannot be ordered", "standby < can_reserve"),
    ("now > '2024-01-01'", B, "cannot compare a date and time", "now > '2024-01-01'"),
    ("now > hour", B, "cannot compare a date and time ('now') with a number", "now > hour"),
    ("date > '2024-13-01'", B, "'2024-13-01' is not a real date", "'2024-13-01'"),
    ("date > '1 May'", B, 'a literal "YYYY-MM-DD"', "'1 May'"),
    ("date == list", B, 'a literal "YYYY-MM-DD"', "list"),
    ("hour in tags", B, "'hour' is a number, so it is never in a list of strings", "hour in tags"),
    ("'x' in [1, 2]", B, "so it is never in a list of numbers", "'x' in [1, 2]"),
    ("hour in hour", B, "'in' needs a list", "hour"),
    ("min(hour, list) > 1", B, "argument 2 of min(a, b, ...) must be a number", "list"),
    ("clamp(hour, 1) > 1", B, "clamp(x, lo, hi) takes 3 arguments, not 2", "clamp(hour, 1)"),
    ("abs() > 1", B, "abs(x) takes 1 argument, not 0", "abs()"),
    ("round(1, 2, 3) > 1", B, "round(x[, n]) takes 1 or 2 arguments, not 3", "round(1, 2, 3)"),
    ("matches(hour, 'x')", B, "argument 1 of matches(text, glob, ...) must be", "hour"),
    ("abs([1, 2]) > 1", B, "argument 1 of abs(x) must be a number", "[1, 2]"),
    ("hour if standby else list", N, "both branches of 'if ... else'", "list"),
    ("hour if hour else 1", N, "the condition of 'if ... else' needs true/false", "hour"),
    ("hour", B, "the expression must give true/false, not a number", "hour"),
    ("hour > 3", N, "the expression must give a number, not true/false", "hour > 3"),
    ("list", N, "the expression must give a number, not a string", "list"),
]


@pytest.mark.parametrize(("source", "expect", "fragment", "underlined"), TYPE_ERRORS)
def test_type_error_names_the_types_and_underlines_the_culprit(
    source: str, expect: ValueType, fragment: str, underlined: str
) -> None:
    """A type error says which types clash and locates the exact sub-expression."""
    error = _error(source, expect)
    assert fragment in error.message
    assert source[error.offset : error.offset + error.length] == underlined


def test_offsets_count_characters_not_utf8_bytes() -> None:
    """A non-ASCII string before the error does not shift the caret (ast counts bytes)."""
    source = "list == 'Zürich' and nottt"
    error = _error(source)
    assert source[error.offset : error.offset + error.length] == "nottt"


def test_leading_spaces_and_line_breaks_keep_offsets_true() -> None:
    """A YAML block scalar may indent or break the expression; offsets still point right."""
    source = "  hour < 9 or\n  unpuled > 0"
    error = _error(source)
    assert source[error.offset : error.offset + error.length] == "unpuled"
    assert _bool("  hour < 9 or\n  hour >= 17\n")(FACTS) is False


CARETS = [
    ("list > 3", "    list > 3\n    ^^^^^^^^"),
    ("hour < 9 and standbye", "    hour < 9 and standbye\n                 ^^^^^^^^"),
    ("base_weight + 'x' > 1", "    base_weight + 'x' > 1\n                  ^^^"),
    ("hour < 9 or\n  unpuled > 0", "      unpuled > 0\n      ^^^^^^^"),
    ("(hour < 9", "    (hour < 9\n    ^"),
    ("hour <", "    hour <\n          ^"),
]


@pytest.mark.parametrize(("source", "expected"), CARETS)
def test_caret_draws_the_source_line_and_marks_the_spot(source: str, expected: str) -> None:
    """caret() gives the offending source line and carets under the exact span."""
    assert _error(source).caret(source) == expected


def test_caret_honours_the_indent_argument() -> None:
    """The indent given is put before both lines."""
    assert _error("hour > 'x'").caret("hour > 'x'", indent="> ") == "> hour > 'x'\n> ^^^^^^^^^^"


def test_error_is_a_one_line_mixer_error() -> None:
    """Compile errors are MixerErrors with a single-line message the CLI can print."""
    error = _error("hours_to_dedline < 48 and\n unpulled > 0")
    assert isinstance(error, MixerError)
    assert "\n" not in error.message


LIMITS = [
    ("hour > 1" + " + 1" * 700, f"the limit is {MAX_SOURCE_CHARS}", MAX_SOURCE_CHARS),
    ("-" * 60 + "hour > 1", "nested too deeply (more than 50 levels)", 49),
    ("not " * 60 + "standby", "nested too deeply", 200),
    ("hour > 1" + " + 1" * 300, "nested too deeply", None),
]


@pytest.mark.parametrize(("source", "fragment", "offset"), LIMITS)
def test_size_and_depth_limits_are_enforced(source: str, fragment: str, offset: int | None) -> None:
    """Long sources and deeply nested trees are refused before they cost anything."""
    error = _error(source)
    assert fragment in error.message
    if offset is not None:
        assert error.offset == offset


def test_deeply_nested_but_short_source_is_rejected_not_crashed() -> None:
    """Nesting the parser itself cannot handle is still a clean ExpressionError."""
    error = _error("(" * 500 + "1" + ")" * 500)
    assert error.message.startswith("syntax error") or "nested" in error.message


EVALUATION_ERRORS = [
    ("base_weight / zero", N, "division by zero"),
    ("base_weight // zero", N, "division by zero"),
    ("base_weight % zero", N, "division by zero"),
    ("hour / zero > 1", B, "division by zero"),
    ("base_weight * 1000000000000000", N, "out of range"),
    ("days(1000000000000000) > 1", B, "out of range"),
    ("clamp(hour, 10, 1) > 0", B, "clamp(x, lo, hi) got lo 10 above hi 1"),
    ("round(progress, 0.5) > 0", B, "round(x, n) needs n to be a whole number"),
    ("round(progress, 16) > 0", B, "round(x, n) needs n to be a whole number"),
    ("steady(weight, 3, 0)", N, "needs a step above 0"),
]


@pytest.mark.parametrize(("source", "expect", "fragment"), EVALUATION_ERRORS)
def test_evaluation_failure_raises_expression_evaluation_error(
    source: str, expect: ValueType, fragment: str
) -> None:
    """Arithmetic faults at evaluation become ExpressionEvaluationError naming the source."""
    expression = compile_expression(source, SCHEMA, expect=expect)
    with pytest.raises(ExpressionEvaluationError) as info:
        expression(FACTS)
    assert fragment in info.value.message
    assert source in info.value.message


def test_intermediate_overflow_is_caught_even_when_the_result_would_be_small() -> None:
    """A float that overflows to infinity mid-way fails instead of turning into 0."""
    expression = _bool("1 / (progress * 1000000000000000 * 1000000000000000) == 0")
    with pytest.raises(ExpressionEvaluationError, match="out of range"):
        expression(FACTS)


def test_missing_fact_is_an_evaluation_error() -> None:
    """A fact absent from the mapping fails cleanly (the engine fills every schema name)."""
    with pytest.raises(ExpressionEvaluationError, match="fact 'hour' is missing"):
        _bool("hour > 1")({})


def test_fact_of_the_wrong_runtime_type_is_an_evaluation_error() -> None:
    """A fact whose value contradicts its declared type fails cleanly, never a TypeError."""
    with pytest.raises(ExpressionEvaluationError, match="wrong type"):
        _bool("hour > 1")({"hour": "ten"})


NAMES = [
    ("hours_to_deadline < days(2) and unpulled > 0", B, {"hours_to_deadline", "unpulled"}),
    ("min(base_weight * 3, 50)", N, {"base_weight"}),
    ("'recall' in tags or matches(list, 'R*')", B, {"tags", "list"}),
    ("hour < 9 or hour > 17", B, {"hour"}),
    ("days(2) > 1", B, set()),
    ("date in ['2024-12-24']", B, {"date"}),
    ("clamp(base_weight * 3, 1, weight)", N, {"base_weight", "weight"}),
]


@pytest.mark.parametrize(("source", "expect", "names"), NAMES)
def test_names_lists_the_facts_read_and_no_functions(
    source: str, expect: ValueType, names: set[str]
) -> None:
    """``names`` holds exactly the fact names the expression reads, never function names."""
    assert compile_expression(source, SCHEMA, expect=expect).names == names


def test_fact_named_like_a_function_does_not_hide_the_function() -> None:
    """A metadata fact called 'max' is read as a fact, while max(...) stays the function."""
    schema = {**SCHEMA, "max": N}
    expression = compile_expression("max(max, 3)", schema, expect=N)
    assert expression({"max": 7}) == 7
    assert expression({"max": 1}) == 3
    assert expression.names == {"max"}


def test_compiled_code_has_no_builtins() -> None:
    """The compiled function's globals hold the whitelisted functions and nothing more."""
    expression = _bool("hour > 1")
    namespace = expression.function.__globals__
    assert namespace["__builtins__"] == {}
    callables = {key for key, value in namespace.items() if callable(value)}
    assert callables - {"_bounded_"} == FUNCTION_NAMES


def test_function_table_and_names_agree() -> None:
    """FUNCTION_NAMES lists exactly the functions in FUNCTIONS, the documented set."""
    assert set(FUNCTIONS) == FUNCTION_NAMES
    assert {"min", "max", "clamp", "hours", "days", "minutes", "matches"} <= FUNCTION_NAMES


def test_expression_is_reusable_and_pure() -> None:
    """One compiled expression gives each list's answer and does not touch the mapping."""
    expression = _bool("unpulled > 100")
    facts = dict(FACTS)
    assert expression(facts) is True
    assert expression({**facts, "unpulled": 3}) is False
    assert facts == dict(FACTS)
