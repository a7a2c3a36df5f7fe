"""The ``deadline: YYYY-MM-DD[ HH:MM[:SS]]`` tag operators write in QM list notes.

One reading for everyone: the engine takes a list's deadline from it, and the emulator
(which may import only leaf modules like this one) reads the same tag the same way, so
a simulation never disagrees with the mixer about when a list is due.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

__all__ = ["DEADLINE_TAG", "find_deadline_tag"]

DEADLINE_TAG = re.compile(
    r"\bdeadline\s*[:=]\s*(\d{4}-\d{2}-\d{2})(?:[ T](\d{1,2}:\d{2}(?::\d{2})?))?",
    re.IGNORECASE,
)


def find_deadline_tag(notes: str) -> datetime | None:
    """The tag's naive local time; None when absent or not a real date. A date alone is
    the end of that day (the next midnight)."""
    found = DEADLINE_TAG.search(notes)
    if found is None:
        return None
    day_text, clock_text = found.group(1), found.group(2)
    try:
        day = date.fromisoformat(day_text)
        if clock_text is None:
            return datetime.combine(day + timedelta(days=1), time())
        hour, minute, *rest = (int(p) for p in clock_text.split(":"))
        return datetime.combine(day, time(hour, minute, rest[0] if rest else 0))
    except ValueError:
        return None
