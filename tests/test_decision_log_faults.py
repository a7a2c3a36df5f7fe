"""The decision log under disk faults and logrotate (issue 12, item 8), and the state
lock against a removed lock file (item 11)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from mixer import decisions
from mixer.decisions import DecisionLog, read_records
from mixer.errors import LockError
from mixer.lock import StateLock


def lines(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.startswith(b"{")]


def test_an_append_after_a_partial_append_starts_on_a_fresh_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk full mid-append leaves a fragment; the next record is not glued onto it:
    it starts on a new line and parses, and the fragment is one skipped line."""
    log = DecisionLog(tmp_path / "decisions.jsonl")
    log.append({"event": "cycle", "n": 1})
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        monkeypatch.setattr(decisions.os, "write", fail)
        return real_write(fd, data[: len(data) // 2])

    def fail(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(decisions.os, "write", half_then_full)
    with pytest.raises(OSError, match="No space"):
        log.append({"event": "cycle", "n": 2, "pad": "x" * 100})
    monkeypatch.setattr(decisions.os, "write", real_write)
    log.append({"event": "cycle", "n": 3})
    log.close()
    stream = read_records(tmp_path / "decisions.jsonl")
    assert [r["n"] for r in stream] == [1, 3]
    assert stream.skipped == 1


@pytest.mark.parametrize("how", ["renamed", "deleted"])
def test_a_log_moved_underneath_is_reopened(tmp_path: Path, how: str) -> None:
    """logrotate-style: after the log is renamed (or deleted), the next check reopens the
    path, and later records land in the new file, not the old one."""
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path)
    log.append({"event": "cycle", "n": 1})
    assert log.reopen_if_moved() is False
    if how == "renamed":
        path.rename(tmp_path / "decisions.jsonl-20240429")
    else:
        path.unlink()
    assert log.reopen_if_moved() is True
    log.append({"event": "cycle", "n": 2})
    log.sync()
    log.close()
    assert [r["n"] for r in lines(path)] == [2]
    if how == "renamed":
        assert [r["n"] for r in lines(tmp_path / "decisions.jsonl-20240429")] == [1]


def test_rotation_of_a_deleted_log_recovers(tmp_path: Path) -> None:
    """Internal rotation when the log was deleted underneath does not leave the log
    closed for ever: the next appends work."""
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path, max_bytes=10)
    log.append({"event": "cycle", "n": 1, "pad": "x" * 20})
    path.unlink()
    log.sync()  # rotates: the file to rename is gone
    log.append({"event": "cycle", "n": 2})
    log.sync()
    log.close()
    assert [r["n"] for r in read_records(path)] == [2]


def test_removing_the_lock_file_lets_no_second_daemon_in(tmp_path: Path) -> None:
    """The lock is on the state directory: with the lock file deleted under a holder, a
    second holder is still refused, naming the lock file."""
    with StateLock(tmp_path) as first:
        first.path.unlink()
        with pytest.raises(LockError, match="another amo-mixer daemon"):
            StateLock(tmp_path).acquire()
    with StateLock(tmp_path) as again:
        assert again.held
