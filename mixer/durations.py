"""Durations as operators write them in config and rule files: ``90s``, ``15m``, ``1h30m``.

One small grammar everywhere (config, ``for:``, ``cooldown:``, ``--since``) so a value that
works in one place works in all. A plain number is seconds, as in systemd.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_WHOLE = re.compile(r"(?:\s*\d+(?:\.\d+)?\s*(?:ms|s|m|h|d|w))+\s*", re.IGNORECASE)
_NUMBER = re.compile(r"\s*\d+(?:\.\d+)?\s*")
HINT = "use seconds or units s, m, h, d, w, e.g. 90s, 15m, 1h30m, 2d"
MAX_DURATION = timedelta(days=36500)
"""About a hundred years: longer is a typo, and would overflow date arithmetic later."""
TOO_LONG = f"it is longer than the maximum of {MAX_DURATION.days}d (about 100 years)"


class DurationTooLongError(ValueError):
    """A well-formed duration beyond ``MAX_DURATION`` (``for: 99999999999w``)."""

    def __init__(self, text: object) -> None:
        shown = repr(text) if len(repr(text)) <= 40 else repr(text)[:37] + "..."
        super().__init__(f"{shown} is not a duration: {TOO_LONG}")
        self.reason = TOO_LONG


def parse_duration(text: str | int | float) -> timedelta:
    """Parse ``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"`` or a number of seconds.

    Raises ``ValueError`` naming the value and the accepted forms; negative values are
    refused (no setting means "in the past"), and so is anything beyond ``MAX_DURATION``
    (``DurationTooLongError``), so no caller ever meets an ``OverflowError``.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration: {HINT}")
    if isinstance(text, int | float):
        if (isinstance(text, float) and not math.isfinite(text)) or text < 0:
            raise ValueError(f"{text!r} is not a duration: it must be 0 or more seconds")
        return _bounded(text, text)
    if not isinstance(text, str):
        raise ValueError(f"{type(text).__name__} is not a duration: {HINT}")
    if _NUMBER.fullmatch(text):
        return _bounded(float(text), text)
    if not text.strip() or not _WHOLE.fullmatch(text):
        raise ValueError(f"{text!r} is not a duration: {HINT}")
    seconds = 0.0
    for amount, unit in _PART.findall(text):
        seconds += float(amount) * UNIT_SECONDS[unit.lower()]
    return _bounded(seconds, text)


def _bounded(seconds: float, text: object) -> timedelta:
    """``seconds`` as a timedelta, refused beyond ``MAX_DURATION`` (never an overflow)."""
    if not seconds <= MAX_DURATION.total_seconds():  # also catches inf from a huge float()
        raise DurationTooLongError(text)
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest ``parse_duration`` spelling of ``delta``: ``1h30m``, ``2d``, ``0s``."""
    total_ms = round(delta.total_seconds() * 1000)
    sign = "-" if total_ms < 0 else ""
    total_ms = abs(total_ms)
    seconds, ms = divmod(total_ms, 1000)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    if ms:
        parts.append(f"{ms}ms")
    return sign + ("".join(parts) or "0s")
