"""Field types shared by the files operators write: durations, steps, deadlines.

One grammar per idea, so a value that works in the config works in a rule file, a rule
test and a scenario: durations are ``mixer.durations`` (``90s``, ``15m``, ``1h30m``, a
plain number of seconds); a weight step is points (``10``) or a percentage (``'25%'``);
a deadline is ``YYYY-MM-DD[ HH:MM]`` in QM local time, a date alone meaning the end of
that day.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

from mixer.durations import HINT as DURATION_HINT
from mixer.durations import DurationTooLongError, parse_duration

__all__ = [
    "Duration",
    "DurationError",
    "deadline_value",
    "parse_local_deadline",
    "percent_step",
]


class DurationError(ValueError):
    """A value that is not a duration: the value and why, each file phrasing it its way."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(f"{value!r} is not a duration: {reason}")
        self.value = value
        self.reason = reason


def _duration(value: object) -> object:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise DurationError(value, DURATION_HINT)
    try:
        return parse_duration(value)
    except DurationTooLongError as exc:
        raise DurationError(value, exc.reason) from None
    except ValueError:
        reason = DURATION_HINT if isinstance(value, str) else "it must be 0 or more seconds"
        raise DurationError(value, reason) from None


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*)+$"},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*$"},
                {"type": "number", "minimum": 0},
            ],
            "description": "a duration: 90s, 15m, 1h, 2d, 1w or combined (1h30m); "
            "a plain number is seconds",
        }
    ),
]
"""A duration field (``mixer.durations`` grammar); a bad value raises ``DurationError``."""


_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def percent_step(value: object) -> float | None:
    """The percentage of a ``'25%'`` step, or None when ``value`` is not written as one."""
    if not isinstance(value, str):
        return None
    match = _PERCENT.match(value)
    return float(match.group(1)) if match else None


def parse_local_deadline(text: str) -> datetime:
    """``YYYY-MM-DD[ HH:MM]`` → a naive QM-local time; a date alone is the end of that day."""
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text) + timedelta(days=1), time())
        return datetime.fromisoformat(text.replace("T", " "))
    except ValueError:
        raise ValueError(
            f"invalid deadline {text!r}: use YYYY-MM-DD or YYYY-MM-DD HH:MM (QM local time)"
        ) from None


def deadline_value(value: object) -> datetime | None:
    """A deadline as YAML gives it (text, date or datetime) → a naive QM-local time."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else value
    if isinstance(value, date):
        return datetime.combine(value + timedelta(days=1), time())
    return parse_local_deadline(str(value))
