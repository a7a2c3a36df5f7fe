"""Reading recorded cycles seeks to the span asked for, and finds what a full scan finds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mixer import recorded
from mixer.decisions import DecisionLog
from mixer.records import CycleRecord, DecisionRecord, ListCounters, ListState

START = datetime(2024, 4, 22, 6, 0, tzinfo=UTC)


def write_days(path: Path, days: int, max_bytes: int = 300_000) -> None:
    """A cycle a minute for ``days`` days (two campaigns), and now and then a late decision
    carrying an earlier cycle's time, as a settled write-ahead intent is written."""
    with DecisionLog(path, max_bytes=max_bytes) as log:
        for minute in range(days * 24 * 60):
            now = START + timedelta(minutes=minute)
            for campaign in ("Sales", "B2B"):
                counters = {"A": ListCounters(10, False, 100, minute, minute, True)}
                log.append(
                    CycleRecord(
                        now, f"c{minute}", campaign, "apply", 1, 0, False, "ok", None, 1.0, counters
                    ).to_json()
                )
            if minute % 97 == 0:
                late = now - timedelta(minutes=3)
                log.append(
                    DecisionRecord(
                        late,
                        f"c{minute - 3}",
                        "Sales",
                        "A",
                        "apply",
                        ListState(10, False),
                        ListState(20, False),
                        ("r",),
                        "late",
                        applied=True,
                    ).to_json()
                )
            if minute % 120 == 0:
                log.sync()  # rotation happens here: several files, oldest first


@pytest.mark.parametrize("offset_hours", [0, 5, 30, 44])
def test_seeking_reads_what_a_full_scan_reads(
    tmp_path: Path, offset_hours: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records in [since, until) are the same whether the reader bisects to `since` or
    scans every file from the start (rotated files and late records included)."""
    path = tmp_path / "decisions.jsonl"
    write_days(path, 2)
    assert len(recorded.log_files(path)) > 1
    since = START + timedelta(hours=offset_hours)
    until = since + timedelta(hours=3)

    def read() -> list[tuple[str, str, str]]:
        return [
            (r["event"], r["ts"], r["cycle_id"])
            for r in recorded.read_cycle_records(path, since=since, until=until)
        ]

    seeking = read()
    monkeypatch.setattr(recorded, "_first_offset", lambda _handle, _low: 0)
    assert seeking == read()
    assert len(seeking) >= 2 * 180


def test_a_seek_skips_what_lies_before_the_span(tmp_path: Path) -> None:
    """The offset found for a late start is past most of the file, at a line boundary."""
    path = tmp_path / "decisions.jsonl"
    write_days(path, 1, max_bytes=10_000_000)  # one file
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        offset = recorded._first_offset(handle, (START + timedelta(hours=20)).isoformat())
        assert offset > size // 2
        handle.seek(offset - 1)
        assert handle.read(1) == b"\n"


def test_reading_stops_past_the_span(tmp_path: Path) -> None:
    """Records are late by an hour at most, so reading ends once a record is more than
    that past `until`: a replay of last week does not scan the log to its end (shown by
    a record out of that order, further on, which is not read)."""
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path) as log:
        for minute in (0, 30, 200):
            counters = {"A": ListCounters(10, False, 100, minute, minute, True)}
            now = START + timedelta(minutes=minute)
            log.append(
                CycleRecord(
                    now, f"c{minute}", "Sales", "apply", 1, 0, False, "ok", None, 1.0, counters
                ).to_json()
            )
        stray = START + timedelta(minutes=10)  # written long after its time
        log.append(
            CycleRecord(
                stray, "stray", "Sales", "apply", 1, 0, False, "ok", None, 1.0, counters
            ).to_json()
        )
    found = recorded.read_cycle_records(path, since=START, until=START + timedelta(hours=1))
    assert [r["cycle_id"] for r in found] == ["c0", "c30"]
