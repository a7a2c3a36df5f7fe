"""How the decision log writes a time and reads it back.

Apart from the record types (``mixer.records``) so that the log's writer and the command
start-up can read times without loading every record class: ``once`` builds no record
before its first request.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(when: datetime) -> str:
    """How records write a time: ISO 8601, seconds, UTC."""
    return when.astimezone(UTC).isoformat(timespec="seconds")


def parse_ts(value: object) -> datetime | None:
    """A record's time back as an aware datetime (a naive one is taken as UTC)."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
