"""The duration grammar shared by config, rules and the command line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mixer.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("10S", timedelta(seconds=10)),
        ("90", timedelta(seconds=90)),
        (" 45 ", timedelta(seconds=45)),
        (90, timedelta(seconds=90)),
        (2.5, timedelta(seconds=2.5)),
        (0, timedelta(0)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_accepts(text: str | int | float, expected: timedelta) -> None:
    """Units s/m/h/d/w/ms, combinations and plain numbers (seconds) parse."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "  ", "x", "15x", "h", "1h-2m", "-5", "1.h", "m15", "1h30"])
def test_parse_rejects_with_hint(text: str) -> None:
    """Malformed text raises ValueError naming the value and the accepted forms."""
    with pytest.raises(ValueError, match="is not a duration") as info:
        parse_duration(text)
    assert "15m" in str(info.value)


@pytest.mark.parametrize("value", [-1, -0.5, float("nan"), float("inf"), True])
def test_parse_rejects_bad_numbers(value: float) -> None:
    """Negative, non-finite and boolean numbers are not durations."""
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(days=2), "2d"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(0), "0s"),
        (timedelta(milliseconds=1500), "1s500ms"),
        (timedelta(minutes=-5), "-5m"),
    ],
)
def test_format(delta: timedelta, text: str) -> None:
    """Formatting gives the shortest spelling, largest unit first."""
    assert format_duration(delta) == text


@pytest.mark.parametrize("text", ["1h30m", "2d", "15m", "1d2h3m4s", "250ms"])
def test_round_trip(text: str) -> None:
    """What format_duration writes, parse_duration reads back to the same span."""
    assert format_duration(parse_duration(text)) == text
