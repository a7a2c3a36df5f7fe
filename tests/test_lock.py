"""The state-directory lock: one daemon per state_dir, with a message naming the holder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mixer.errors import LockError
from mixer.lock import StateLock


def test_lock_writes_the_pid_and_blocks_a_second_holder(tmp_path: Path) -> None:
    """A second lock on the same state_dir fails naming the lock file and the holder's PID."""
    with StateLock(tmp_path) as first:
        assert first.path.read_text() == f"{os.getpid()}\n"
        with pytest.raises(LockError) as caught:
            StateLock(tmp_path).acquire()
    message = caught.value.message
    assert str(tmp_path / "amo-mixer.lock") in message
    assert f"PID {os.getpid()}" in message
    assert "\n" not in message


def test_lock_is_released_on_exit(tmp_path: Path) -> None:
    """After release another holder gets the lock, and the PID is cleared."""
    lock = StateLock(tmp_path).acquire()
    lock.release()
    assert lock.path.read_text() == ""
    with StateLock(tmp_path) as again:
        assert again.held


def test_lock_held_by_another_process(tmp_path: Path) -> None:
    """The lock works across processes, and is dropped when the holder dies."""
    code = (
        "import sys, pathlib; from mixer.lock import StateLock; "
        "StateLock(pathlib.Path(sys.argv[1])).acquire(); print('locked', flush=True); "
        "sys.stdin.readline()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockError, match=f"PID {holder.pid}"):
            StateLock(tmp_path).acquire()
    finally:
        holder.communicate("\n", timeout=10)
    with StateLock(tmp_path) as lock:
        assert lock.held


def test_lock_creates_the_state_dir(tmp_path: Path) -> None:
    """A missing state_dir is created before locking."""
    with StateLock(tmp_path / "new" / "state") as lock:
        assert lock.path.exists()


def test_unwritable_state_dir_is_a_lock_error(tmp_path: Path) -> None:
    """A state_dir that cannot hold the lock file gives one line naming it."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LockError, match="cannot open the lock file"):
        StateLock(blocker / "state").acquire()
