"""The systemd notify protocol, spoken directly: one datagram to ``$NOTIFY_SOCKET``.

No dependency: the protocol is ``KEY=VALUE`` lines sent to an ``AF_UNIX`` datagram
socket (a leading ``@`` names the abstract namespace). Outside systemd the socket is
unset and every call is a no-op. A failure to notify is logged, never raised: a daemon
must not die because its supervisor is unreachable.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from mixer.logs import get_logger


class Notifier:
    """Sends ``READY=1``, ``RELOADING=1``, ``STOPPING=1``, ``WATCHDOG=1`` and ``STATUS=``."""

    def __init__(self, environ: Mapping[str, str] | None = None, *, log: Any = None) -> None:
        env = os.environ if environ is None else environ
        self._address = env.get("NOTIFY_SOCKET") or None
        self._watchdog_usec = env.get("WATCHDOG_USEC")
        self._watchdog_pid = env.get("WATCHDOG_PID")
        self._log = log if log is not None else get_logger()

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *fields: str) -> bool:
        """Send ``fields`` as one datagram; True when it was delivered."""
        if self._address is None:
            return False
        address = "\0" + self._address[1:] if self._address.startswith("@") else self._address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(fields).encode(), address)
        except OSError as exc:
            self._log.warning("systemd notify failed", socket=self._address, error=str(exc))
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *_status(status))

    def reloading(self) -> bool:
        """Start of a reload; systemd wants the monotonic time it began (``READY=1`` ends it)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *_status(status))

    def watchdog(self, status: str | None = None) -> bool:
        return self.send("WATCHDOG=1", *_status(status))

    def status(self, text: str) -> bool:
        return self.send(*_status(text))

    def watchdog_interval(self) -> timedelta | None:
        """``WatchdogSec=`` as systemd passed it to this process, or None when off."""
        if not self._watchdog_usec:
            return None
        if self._watchdog_pid and self._watchdog_pid != str(os.getpid()):
            return None
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        return timedelta(microseconds=usec) if usec > 0 else None


def _status(text: str | None) -> tuple[str, ...]:
    return () if text is None else ("STATUS=" + " ".join(text.splitlines()),)
