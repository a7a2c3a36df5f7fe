"""The decision log: one JSON line per record, torn-tail repair, fsync, rotation, reading."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mixer.decisions import DECISION_CSV_COLUMNS, DecisionLog, log_files, read_records

T0 = datetime(2024, 4, 29, 8, 0, tzinfo=UTC)


def record(n: int, event: str = "decision", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event": event,
        "ts": (T0 + timedelta(minutes=n)).isoformat(),
        "cycle_id": f"c{n}",
        "campaign": "Sales",
        "list": f"L{n}",
        "n": n,
    }
    base.update(fields)
    return base


def test_append_and_read_back(tmp_path: Path) -> None:
    """Appended records are compact UTF-8 JSON lines that read back equal, in order."""
    path = tmp_path / "state" / "decisions.jsonl"
    records = [record(0, reason="Fällig: Frist in 2 h ✓"), record(1, event="cycle")]
    with DecisionLog(path) as log:
        for item in records:
            log.append(item)
        log.sync()
    raw = path.read_bytes()
    assert raw.count(b"\n") == 2
    assert "Fällig: Frist in 2 h ✓".encode() in raw  # ensure_ascii=False
    assert b'"event":"decision"' in raw  # compact separators
    assert list(read_records(path)) == records


def test_append_converts_datetimes(tmp_path: Path) -> None:
    """Datetimes in a record are written as ISO 8601 text instead of failing the cycle."""
    path = tmp_path / "d.jsonl"
    with DecisionLog(path) as log:
        log.append({"event": "x", "ts": T0, "hold_until": T0 + timedelta(hours=1)})
    assert next(read_records(path))["hold_until"] == "2024-04-29T09:00:00+00:00"


def test_append_after_close_fails(tmp_path: Path) -> None:
    """Writing to a closed log is a programming error, not a silent loss."""
    log = DecisionLog(tmp_path / "d.jsonl")
    log.close()
    with pytest.raises(ValueError, match="closed"):
        log.append(record(0))


def test_each_append_is_one_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One record is one os.write call carrying one whole line."""
    writes: list[bytes] = []
    real_write = os.write

    def spy(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return real_write(fd, data)

    with DecisionLog(tmp_path / "d.jsonl") as log:
        monkeypatch.setattr(os, "write", spy)
        log.append(record(0))
        log.append(record(1))
        monkeypatch.undo()
    assert len(writes) == 2
    assert all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in writes)


def test_sync_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sync() calls os.fsync on the log's descriptor."""
    calls: list[int] = []
    real_fsync = os.fsync
    log = DecisionLog(tmp_path / "d.jsonl")
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd))[1])
    log.append(record(0))
    assert calls == []
    log.sync()
    assert calls == [log._fd]
    log.close()


# -- torn tail ----------------------------------------------------------------------


def test_torn_half_line_repaired(tmp_path: Path) -> None:
    """Half a line left by a crash is moved to .torn and the log cut to its last line."""
    path = tmp_path / "d.jsonl"
    with DecisionLog(path) as log:
        log.append(record(0))
        log.append(record(1))
    whole = path.read_bytes()
    half = json.dumps(record(2)).encode()[:25]
    path.write_bytes(whole + half)

    log = DecisionLog(path)
    log.append(record(3))
    log.close()

    assert [r["n"] for r in read_records(path)] == [0, 1, 3]
    assert (
        path.read_bytes() == whole + (json.dumps(record(3), separators=(",", ":")) + "\n").encode()
    )
    torn = (tmp_path / "d.jsonl.torn").read_bytes()
    header, fragment = torn.split(b"\n", 1)
    assert header.startswith(b"# 20")
    assert b"d.jsonl" in header
    assert f"at byte {len(whole)}".encode() in header
    assert fragment == half + b"\n"
    assert len(log.repaired) == 1
    assert "d.jsonl.torn" in log.repaired[0]


def test_torn_tail_cut_in_multibyte_char(tmp_path: Path) -> None:
    """A tail cut at 4096 bytes in the middle of a UTF-8 character is moved aside intact."""
    path = tmp_path / "d.jsonl"
    long_line = json.dumps(record(1, reason="é" * 3000), ensure_ascii=False).encode()
    for pad in range(2):  # pick the padding that makes byte 4096 fall inside an "é"
        first = (json.dumps(record(0, pad="x" * pad), separators=(",", ":")) + "\n").encode()
        prefix = long_line[: 4096 - len(first)]
        if prefix.endswith(b"\xc3"):
            break
    with pytest.raises(UnicodeDecodeError):
        (first + prefix).decode()  # the cut really splits a character
    path.write_bytes(first + prefix)
    assert path.stat().st_size == 4096

    log = DecisionLog(path)
    log.close()

    assert path.read_bytes() == first
    torn = (tmp_path / "d.jsonl.torn").read_bytes()
    assert torn.split(b"\n", 1)[1] == prefix + b"\n"
    assert log.repaired


def test_last_line_not_json_repaired(tmp_path: Path) -> None:
    """A complete last line that is not JSON (zeroed blocks after power loss) goes aside."""
    path = tmp_path / "d.jsonl"
    good = (json.dumps(record(0)) + "\n").encode()
    path.write_bytes(good + b"\x00" * 40 + b"\n")
    DecisionLog(path).close()
    assert path.read_bytes() == good
    assert b"\x00" * 40 in (tmp_path / "d.jsonl.torn").read_bytes()


def test_whole_file_torn(tmp_path: Path) -> None:
    """A log holding only a fragment ends up empty, the fragment kept in .torn."""
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"event": "dec')
    DecisionLog(path).close()
    assert path.read_bytes() == b""
    assert (tmp_path / "d.jsonl.torn").read_bytes().endswith(b'{"event": "dec\n')


def test_torn_file_appended_not_overwritten(tmp_path: Path) -> None:
    """Two repairs keep both fragments in .torn."""
    path = tmp_path / "d.jsonl"
    for fragment in (b'{"a":', b'{"b":'):
        with open(path, "ab") as handle:
            handle.write(fragment)
        DecisionLog(path).close()
    torn = (tmp_path / "d.jsonl.torn").read_bytes()
    assert b'{"a":\n' in torn
    assert b'{"b":\n' in torn
    assert torn.count(b"# ") == 2


def test_healthy_log_untouched(tmp_path: Path) -> None:
    """Opening a healthy log repairs nothing and creates no .torn file."""
    path = tmp_path / "d.jsonl"
    with DecisionLog(path) as log:
        log.append(record(0))
    before = path.read_bytes()
    log = DecisionLog(path)
    log.close()
    assert log.repaired == []
    assert path.read_bytes() == before
    assert not (tmp_path / "d.jsonl.torn").exists()


# -- rotation -----------------------------------------------------------------------


def test_rotation_at_sync_and_reading_in_order(tmp_path: Path) -> None:
    """Past max_bytes, sync rotates path -> .1 -> .2; reading walks oldest first."""
    path = tmp_path / "d.jsonl"
    log = DecisionLog(path, max_bytes=300, backups=3)
    for n in range(12):
        log.append(record(n))
        log.append(record(n, event="cycle"))  # both stay in one file: no rotation mid-cycle
        log.sync()
    log.close()
    files = log_files(path)
    assert [f.name for f in files] == ["d.jsonl.3", "d.jsonl.2", "d.jsonl.1", "d.jsonl"]
    numbers = [r["n"] for r in read_records(path, event="decision")]
    assert numbers == sorted(numbers)
    assert numbers[-1] == 11
    assert numbers[0] > 0  # the oldest beyond `backups` were dropped
    for file in files:
        lines = [json.loads(x) for x in file.read_text().splitlines()]
        assert [r["event"] for r in lines][::2] == ["decision"] * (len(lines) // 2)


def test_no_rotation_before_sync(tmp_path: Path) -> None:
    """append never rotates, however large the file grows."""
    path = tmp_path / "d.jsonl"
    with DecisionLog(path, max_bytes=10) as log:
        for n in range(5):
            log.append(record(n))
        assert not (tmp_path / "d.jsonl.1").exists()
        log.sync()
        assert (tmp_path / "d.jsonl.1").exists()
        log.append(record(5))
    assert [r["n"] for r in read_records(path)] == [0, 1, 2, 3, 4, 5]


def test_rotated_files_found_beyond_nine(tmp_path: Path) -> None:
    """.10 is older than .9 (numeric, not text, order)."""
    path = tmp_path / "d.jsonl"
    for n in (1, 2, 9, 10):
        (tmp_path / f"d.jsonl.{n}").write_text(json.dumps(record(100 - n)) + "\n")
    path.write_text(json.dumps(record(100)) + "\n")
    assert [r["n"] for r in read_records(path)] == [90, 91, 98, 99, 100]


# -- reading ------------------------------------------------------------------------


def test_filters(tmp_path: Path) -> None:
    """since (inclusive), until (exclusive), campaign/list globs and event filters combine."""
    path = tmp_path / "d.jsonl"
    with DecisionLog(path) as log:
        for n in range(6):
            log.append(record(n, campaign="Sales" if n % 2 else "B2B-East"))
        log.append(record(6, event="cycle"))
        log.append(record(7, event="override"))
    since, until = T0 + timedelta(minutes=1), T0 + timedelta(minutes=4)
    assert [r["n"] for r in read_records(path, since=since, until=until)] == [1, 2, 3]
    assert [r["n"] for r in read_records(path, campaign="B2B*")] == [0, 2, 4]
    assert [r["n"] for r in read_records(path, list_name="L[12]")] == [1, 2]
    assert [r["n"] for r in read_records(path, event="cycle")] == [6]
    assert [r["n"] for r in read_records(path, event=["cycle", "override"])] == [6, 7]
    naive = datetime(2024, 4, 29, 8, 5)  # naive means UTC
    assert [r["n"] for r in read_records(path, since=naive)] == [5, 6, 7]


def test_skips_and_counts_bad_lines(tmp_path: Path) -> None:
    """Unparseable lines are skipped and counted; a partial last line is not counted."""
    path = tmp_path / "d.jsonl"
    lines = [json.dumps(record(0)), "not json", "[1, 2]", "", json.dumps(record(1))]
    path.write_text("\n".join(lines) + "\n" + '{"event": "decis')
    stream = read_records(path)
    assert [r["n"] for r in stream] == [0, 1]
    assert stream.skipped == 2


def test_rotated_file_older_than_since_not_parsed(tmp_path: Path) -> None:
    """With since, a rotated file whose last record is older is skipped entirely."""
    path = tmp_path / "d.jsonl"
    (tmp_path / "d.jsonl.1").write_text("garbage\n" + json.dumps(record(0)) + "\n")
    path.write_text(json.dumps(record(10)) + "\n")
    stream = read_records(path, since=T0 + timedelta(minutes=5))
    assert [r["n"] for r in stream] == [10]
    assert stream.skipped == 0


def test_missing_log_reads_nothing(tmp_path: Path) -> None:
    """Reading a log that does not exist yields nothing."""
    assert list(read_records(tmp_path / "absent.jsonl")) == []


def test_concurrent_reader_during_writes(tmp_path: Path) -> None:
    """A reader running while records are appended sees only whole records, in order."""
    path = tmp_path / "d.jsonl"
    log = DecisionLog(path)
    log.append(record(0, reason="x" * 5000))
    done = threading.Event()
    seen: list[list[int]] = []
    skipped: list[int] = []

    def reader() -> None:
        while not done.is_set():
            stream = read_records(path)
            seen.append([r["n"] for r in stream])
            skipped.append(stream.skipped)

    thread = threading.Thread(target=reader)
    thread.start()
    for n in range(1, 400):
        log.append(record(n, reason="é" * (n % 50) * 100))
    done.set()
    thread.join()
    log.close()
    assert seen
    assert sum(skipped) == 0
    for numbers in seen:
        assert numbers == list(range(len(numbers)))
    assert [r["n"] for r in read_records(path)] == list(range(400))


def test_csv_columns() -> None:
    """The CSV columns are exactly the SPEC's."""
    assert DECISION_CSV_COLUMNS == (
        "ts", "campaign", "list", "mode", "weight_before", "weight_after",
        "paused_before", "paused_after", "rules", "reason", "applied",
    )  # fmt: skip
