"""systemd notify: datagrams on a real AF_UNIX socket, and silence outside systemd."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from mixer.notify import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket standing in for systemd's notify socket."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    sock.close()


def receive(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_and_status_arrive_in_one_datagram(listener: tuple[socket.socket, str]) -> None:
    """READY=1 and STATUS= go together to the socket named by NOTIFY_SOCKET."""
    sock, path = listener
    assert Notifier({"NOTIFY_SOCKET": path}).ready("running")
    assert receive(sock) == ["READY=1", "STATUS=running"]


def test_reloading_carries_monotonic_usec(listener: tuple[socket.socket, str]) -> None:
    """RELOADING=1 comes with MONOTONIC_USEC, the CLOCK_MONOTONIC time in microseconds."""
    sock, path = listener
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    Notifier({"NOTIFY_SOCKET": path}).reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = receive(sock)
    assert first == "RELOADING=1"
    key, value = second.split("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_watchdog_and_stopping(listener: tuple[socket.socket, str]) -> None:
    """WATCHDOG=1 and STOPPING=1 are sent as their own datagrams; status lines are joined."""
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    notifier.watchdog()
    notifier.stopping("shutting\ndown")
    notifier.status("idle")
    assert receive(sock) == ["WATCHDOG=1"]
    assert receive(sock) == ["STOPPING=1", "STATUS=shutting down"]
    assert receive(sock) == ["STATUS=idle"]


def test_abstract_namespace_socket() -> None:
    """A NOTIFY_SOCKET starting with @ addresses the abstract namespace."""
    name = f"amo-mixer-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert receive(sock) == ["READY=1"]


def test_no_socket_is_a_no_op() -> None:
    """Without NOTIFY_SOCKET nothing is sent and nothing fails."""
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()


def test_unreachable_socket_is_logged_not_raised(tmp_path: Path) -> None:
    """A notify socket that is gone yields a warning, never an exception."""
    with capture_logs() as logs:
        assert not Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}).watchdog()
    assert logs[0]["log_level"] == "warning"
    assert "gone.sock" in logs[0]["socket"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "300000000"}, timedelta(minutes=5)),
        ({"WATCHDOG_USEC": "300000000", "WATCHDOG_PID": str(os.getpid())}, timedelta(minutes=5)),
        ({"WATCHDOG_USEC": "300000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "junk"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: timedelta | None) -> None:
    """WATCHDOG_USEC is read only when WATCHDOG_PID is absent or this process."""
    assert Notifier(env).watchdog_interval() == expected
