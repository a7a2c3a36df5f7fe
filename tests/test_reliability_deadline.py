"""Issue 12 items 6 and 10 (reply size): every QM request ends within qm.timeout in total,
even when the server trickles its reply; a stopping daemon interrupts reads at once; a
reply larger than qm.max_reply_bytes is refused without ever being held whole."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from qm_stub import QMStub, Reply, Request, listing, serve_stub, wire_list
from reliability_matrix import amo_mixer, write_config
from test_reliability_secrets import env

from mixer.qm.client import QMClient
from mixer.qm.errors import QMBadReplyError, QMUnreachableError

NOW = datetime(2024, 4, 29, 8, 0, tzinfo=UTC)
WAIT = 10.0  # a ceiling for waits, never a sleep


@pytest.fixture
def stub() -> Iterator[QMStub]:
    with serve_stub() as served:
        yield served


def client(url: str, *, timeout: float, **kwargs: object) -> QMClient:
    return QMClient(
        url, "robot", "pw", timezone=ZoneInfo("Europe/Zurich"), timeout=timeout, **kwargs
    )  # type: ignore[arg-type]


def trickled(stub: QMStub, every_s: float, started: threading.Event | None = None) -> None:
    def script(request: Request) -> Reply:
        if started is not None:
            started.set()
        body = listing("Sales", stub.lists)
        return Reply(body=body, trickle_s=every_s)

    stub.script = script


def test_a_trickled_reply_is_cut_off_at_the_total_deadline(stub: QMStub) -> None:
    """One byte every 50 ms keeps every socket read under 0.5 s, yet the read fails at
    the 0.5 s deadline (without it, the ~600-byte reply takes 30 s and succeeds)."""
    trickled(stub, 0.05)
    qm = client(stub.url, timeout=0.5, read_attempts=1)
    assert qm.total_deadline
    with pytest.raises(QMUnreachableError, match=r"did not answer within the timeout of 0\.5 s"):
        qm.read_lists("Sales", now=NOW)
    qm.close()


def test_a_prompt_reply_still_reads_under_the_deadline(stub: QMStub) -> None:
    """The deadline changes nothing for a server that answers."""
    qm = client(stub.url, timeout=5)
    snapshot = qm.read_lists("Sales", now=NOW)
    assert [item.name for item in snapshot.lists] == ["Recalls", "Promo"]
    qm.close()


def test_interrupt_ends_a_read_in_flight(stub: QMStub) -> None:
    """interrupt() (a stopping daemon) ends a read waiting on a 30 s deadline at once,
    with a message that says so, and no further read is sent."""
    started = threading.Event()
    trickled(stub, 0.5, started)
    qm = client(stub.url, timeout=30, read_attempts=1)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            qm.read_lists("Sales", now=NOW)
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    assert started.wait(WAIT)
    qm.interrupt()
    reader.join(WAIT)
    assert not reader.is_alive(), "the read did not notice the interrupt"
    assert len(errors) == 1
    assert "was interrupted" in str(errors[0])
    sent = len(stub.requests)
    with pytest.raises(QMUnreachableError, match="the daemon is stopping; nothing was sent"):
        qm.read_lists("Sales", now=NOW)
    assert len(stub.requests) == sent
    qm.close()


def test_a_reply_larger_than_the_cap_is_refused_by_its_length(stub: QMStub) -> None:
    """A declared length above max_reply_bytes fails the read in one line naming the
    setting, without reading the body."""
    stub.lists = [wire_list(f"List {i}") for i in range(200)]
    qm = client(stub.url, timeout=5, max_reply_bytes=4096, read_attempts=1)
    with pytest.raises(QMBadReplyError) as caught:
        qm.read_lists("Sales", now=NOW)
    assert "larger than qm.max_reply_bytes (4,096 bytes)" in caught.value.message
    assert "raise qm.max_reply_bytes" in caught.value.message
    qm.close()


def test_an_endless_undeclared_reply_is_read_only_up_to_the_cap() -> None:
    """A streamed reply with no length is abandoned once past the cap: the client pulls
    at most one chunk beyond it (the 300 MB reply once held 929 MB)."""
    pulled = 0
    chunk = b"x" * 65536

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        while pulled < 10_000:  # 655 MB if nothing stopped it
            pulled += 1
            yield chunk

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_Iter(endless()))

    qm = client(
        "http://qm.test/qm",
        timeout=5,
        max_reply_bytes=1_000_000,
        read_attempts=1,
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(QMBadReplyError, match=r"larger than qm\.max_reply_bytes"):
        qm.read_lists("Sales", now=NOW)
    assert pulled <= 1_000_000 // len(chunk) + 1
    qm.close()


class _Iter(httpx.SyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks


def test_sigterm_stops_the_daemon_during_a_trickled_read(tmp_path: Path, stub: QMStub) -> None:
    """`amo-mixer run` with qm.timeout 60 s, waiting on a trickled reply, exits 0 soon
    after SIGTERM (it once waited for the whole reply, then for the cycle)."""
    started = threading.Event()
    trickled(stub, 0.5, started)
    config = write_config(tmp_path, stub.url, timeout=60.0, interval="60s")
    daemon = subprocess.Popen(
        [*amo_mixer(), "run", "-c", str(config)],
        env=env("pw"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert started.wait(WAIT * 3), "the daemon never read"
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=WAIT)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    assert daemon.returncode == 0, err
    assert "was interrupted" in out + err
