"""One daemon per state directory: an exclusive ``flock`` on the state directory itself.

The directory cannot be removed from under a running daemon (it holds the state file and
the decision log), so removing the lock file — a common "stale lock" reflex — does not
let a second daemon in: both would still lock the same directory. ``amo-mixer.lock`` in
it holds the holder's PID so a second daemon can say who it is (and is flocked too, for
an older version running beside this one). The kernel drops the locks when the process
dies, however it dies, so a stale file never blocks a restart.
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
        self._dir_fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> StateLock:
        if self._fd is not None:
            return self
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise LockError(
                f"cannot open the lock file {self.path}: {exc.strerror}; "
                "check that state_dir exists and is writable by this user"
            ) from exc
        fd: int | None = None
        try:
            _lock_or_refuse(dir_fd, self.path)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise LockError(
                    f"cannot open the lock file {self.path}: {exc.strerror}; "
                    "check that state_dir is writable by this user"
                ) from exc
            _lock_or_refuse(fd, self.path)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            os.fsync(fd)
        except BaseException:
            if fd is not None:
                os.close(fd)
            os.close(dir_fd)
            raise
        self._fd, self._dir_fd = fd, dir_fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        dir_fd, self._dir_fd = self._dir_fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the last descriptors releases the flocks
            if dir_fd is not None:
                os.close(dir_fd)

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


def _lock_or_refuse(fd: int, lock_file: Path) -> None:
    """Take an exclusive flock on ``fd``, or raise ``LockError`` naming the holder."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise LockError(
            f"another amo-mixer daemon (PID {_holder(lock_file)}) holds {lock_file}; "
            "stop it first, or give this one another state_dir"
        ) from None


def _holder(lock_file: Path) -> str:
    try:
        fd = os.open(lock_file, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return "unknown"
    try:
        return _read_pid(fd)
    finally:
        os.close(fd)
