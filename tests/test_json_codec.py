"""The JSON codec: orjson's speed, the standard library's acceptance and output."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from mixer.json_codec import dumps


def _default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


@dataclass
class _Point:
    x: int


def test_dumps_is_compact_utf8_json_like_the_standard_library() -> None:
    """Same document as json.dumps(ensure_ascii=False, separators=(',', ':'))."""
    record = {
        "event": "cycle",
        "list": "Rückrufe, Zürich ✓",
        "weight": 7,
        "rate": 12.5,
        "paused": False,
        "error": None,
        "lists": {"A": {"added": 3}, "B": [1, 2, (3, 4)]},
        "note": 'quote " and\nnewline',
    }
    expected = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert dumps(record) == expected
    assert b"\n" not in dumps(record)  # one record stays on one line


def test_dumps_hands_datetimes_and_dataclasses_to_default_as_json_does() -> None:
    """A datetime or a dataclass is written by ``default``, exactly as json.dumps would."""
    value = {
        "ts": datetime(2024, 4, 29, 10, 0, 5, tzinfo=ZoneInfo("Europe/Zurich")),
        "day": date(2024, 4, 29),
        "utc": datetime(2024, 4, 29, 8, 0, 0, 123456, tzinfo=UTC),
        "point": _Point(3),
        1: "int key",
    }
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_default)
    assert dumps(value, default=_default) == expected.encode("utf-8")


def test_dumps_falls_back_for_what_orjson_refuses() -> None:
    """Integers beyond 64 bits are written whole, as json.dumps would (through it); a lone
    surrogate, which UTF-8 cannot hold, becomes a \\u escape that reads back the same."""
    big = {"n": 2**70, "m": -(2**80), "ü": "ü"}
    assert dumps(big) == json.dumps(big, ensure_ascii=False, separators=(",", ":")).encode()
    odd = {"notes": "x\ud800", "ü": 1}
    line = dumps(odd)
    assert line == b'{"notes":"x\\ud800","\\u00fc":1}'
    assert json.loads(line) == odd


def test_dumps_writes_non_finite_floats_as_null() -> None:
    """NaN and infinities are not JSON: the line stays readable by jq, pandas, DuckDB."""
    assert dumps({"a": math.nan, "b": math.inf}) == b'{"a":null,"b":null}'
