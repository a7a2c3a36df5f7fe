"""A total wall-clock deadline for each QM request, and a way to interrupt reads.

httpx timeouts bound each socket operation, not the request: a server that trickles its
reply one byte every half second never trips a 10 s read timeout. ``DeadlineBackend``
wraps httpcore's network backend so that every connect, read and write waits at most
until the deadline the calling thread set with ``Deadlines.start`` (monotonic time, so a
stepped wall clock changes nothing), in slices of at most ``SLICE_S`` so that
``Deadlines.interrupt`` ends a waiting read promptly (a stopping daemon). An expired
deadline or an interrupt is raised as ``httpcore.ReadTimeout``/``WriteTimeout``/
``ConnectTimeout``, which httpx maps to its own timeout exceptions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

import httpcore

SLICE_S = 0.25
"""The longest single wait on a socket: how soon an interrupt is noticed."""


class Deadlines:
    """Per-thread request deadlines (reads run on several threads at once)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._interrupted = threading.Event()

    def start(self, seconds: float, *, interruptible: bool) -> None:
        """The calling thread's next request must end within ``seconds`` from now."""
        self._local.at = time.monotonic() + seconds
        self._local.interruptible = interruptible

    def clear(self) -> None:
        self._local.at = None

    def interrupt(self) -> None:
        """End interruptible requests now and refuse new ones (the daemon is stopping)."""
        self._interrupted.set()

    @property
    def interrupted(self) -> bool:
        return self._interrupted.is_set()

    def remaining(self) -> float | None:
        """Seconds left for this thread's request (0 when interrupted), None if unset."""
        at: float | None = getattr(self._local, "at", None)
        if at is None:
            return None
        if self._interrupted.is_set() and getattr(self._local, "interruptible", False):
            return 0.0
        return max(at - time.monotonic(), 0.0)


def _waiting(
    deadlines: Deadlines, timeout: float | None, error: type[Exception]
) -> Iterable[float]:
    """Slices to wait in turn: each at most ``SLICE_S``, together at most the smaller of
    ``timeout`` (httpx's per-operation timeout) and the deadline's remaining time."""
    limit = None if timeout is None else time.monotonic() + timeout
    while True:
        remaining = deadlines.remaining()
        if remaining is not None and remaining <= 0:
            why = "interrupted" if deadlines.interrupted else "total deadline exceeded"
            raise error(why)
        left = None if limit is None else limit - time.monotonic()
        if left is not None and left <= 0:
            raise error("timed out")
        candidates = [SLICE_S, *(x for x in (remaining, left) if x is not None)]
        yield min(candidates)


class DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadlines: Deadlines) -> None:
        self._inner = inner
        self._deadlines = deadlines

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        for wait in _waiting(self._deadlines, timeout, httpcore.ReadTimeout):
            try:
                return self._inner.read(max_bytes, wait)
            except httpcore.ReadTimeout:
                continue  # nothing arrived in this slice; nothing was consumed
        raise AssertionError("unreachable")  # pragma: no cover

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        remaining = self._deadlines.remaining()
        if remaining is not None and remaining <= 0:
            raise httpcore.WriteTimeout("total deadline exceeded")
        waits = [x for x in (timeout, remaining) if x is not None]
        self._inner.write(buffer, min(waits) if waits else None)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        remaining = self._deadlines.remaining()
        timeout = kwargs.get("timeout")
        waits = [x for x in (timeout, remaining) if x is not None]
        kwargs["timeout"] = min(waits) if waits else None
        return DeadlineStream(self._inner.start_tls(*args, **kwargs), self._deadlines)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend, deadlines: Deadlines) -> None:
        self._inner = inner
        self._deadlines = deadlines

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        remaining = self._deadlines.remaining()
        if remaining is not None and remaining <= 0:
            raise httpcore.ConnectTimeout("total deadline exceeded")
        timeout = kwargs.get("timeout")
        waits = [x for x in (timeout, remaining) if x is not None]
        kwargs["timeout"] = min(waits) if waits else None
        return DeadlineStream(self._inner.connect_tcp(*args, **kwargs), self._deadlines)

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return DeadlineStream(self._inner.connect_unix_socket(*args, **kwargs), self._deadlines)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def install(transport: Any, deadlines: Deadlines) -> bool:
    """Wrap the network backend of an ``httpx.HTTPTransport``'s pool; False if its shape
    is not the one known (then only httpx's per-operation timeouts apply)."""
    pool = getattr(transport, "_pool", None)
    inner = getattr(pool, "_network_backend", None)
    if pool is None or not isinstance(inner, httpcore.NetworkBackend):
        return False
    pool._network_backend = DeadlineBackend(inner, deadlines)
    return True
