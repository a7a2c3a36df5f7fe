"""One daemon per state directory: an exclusive ``flock`` on ``<state_dir>/amo-mixer.lock``.

The kernel drops the lock when the process dies, however it dies, so a stale file never
blocks a restart. The file holds the holder's PID so a second daemon can say who it is.
The file is never unlinked: removing it would let two daemons lock two different files.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from mixer.errors import LockError

LOCK_NAME = "amo-mixer.lock"


class StateLock:
    """Held from ``acquire()`` (or ``with``) until ``release()``."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> StateLock:
        if self._fd is not None:
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise LockError(
                f"cannot open the lock file {self.path}: {exc.strerror}; "
                "check that state_dir exists and is writable by this user"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise LockError(
                f"another amo-mixer daemon (PID {holder}) holds {self.path}; "
                "stop it first, or give this one another state_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def __enter__(self) -> StateLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "unknown"
