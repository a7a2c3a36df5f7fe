"""The installed ``amo-mixer emulator`` on a real loopback socket, with the seed's calls."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mixer.clock import FakeClock
from mixer.emulator.app import create_app
from mixer.emulator.scenario import load_scenario
from mixer.emulator.server import serve

pytestmark = pytest.mark.e2e

SEED_READ = '{"amoCampaignName": "Sales"}'
SEED_UPDATE = """{
     "amoCampaignName": "Sales",
     "listUpdates": [
         {"listName": "New list",  "weight": 20, "paused": false}
     ]
   }"""
SEED_NUMBERS = """{
          "amoCampaignName": "My Campaign",
          "listName": "Sale Recalls",
          "numbers": [
           { "number": "123a", "attrs": {"ax": "1"} },
           { "numberId": "9915", "number": "4567"}
          ]
      }"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def amo_mixer() -> list[str]:
    installed = shutil.which("amo-mixer")
    if installed is None:
        candidate = Path(sys.executable).with_name("amo-mixer")
        installed = str(candidate) if candidate.exists() else None
    return [installed] if installed else [sys.executable, "-m", "mixer"]


@pytest.fixture
def emulator() -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    port = free_port()
    process = subprocess.Popen(
        [*amo_mixer(), "emulator", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()  # printed once the socket listens
        banner += process.stdout.readline()  # the seed's curl example
        if not banner:
            raise AssertionError(f"emulator did not start: {process.communicate()}")
        yield process, f"http://127.0.0.1:{port}/qm", banner
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)


def test_seed_examples_over_http_then_sigterm_exits_0(
    emulator: tuple[subprocess.Popen[str], str, str],
) -> None:
    """The seed's GET and POST calls work against the command; SIGTERM ends it with 0."""
    process, base, banner = emulator
    assert base in banner
    assert "robot" in banner
    with httpx.Client(auth=("robot", "bot"), timeout=10) as client:
        read = client.get(f"{base}/amoUpdateLists.do", params={"data": SEED_READ})
        assert read.status_code == 200
        assert "Recalls Apr 24" in [item["listName"] for item in read.json()["lists"]]
        update = client.get(f"{base}/amoUpdateLists.do", params={"data": SEED_UPDATE})
        assert "New list" in [item["listName"] for item in update.json()["lists"]]
        posted = client.post(f"{base}/amoUpdateLists.do", data={"data": SEED_READ})
        assert "New list" in [item["listName"] for item in posted.json()["lists"]]
        numbers = client.post(f"{base}/amoUpdateNumbers.do", data={"data": SEED_NUMBERS})
        assert [n["number"] for n in numbers.json()["numbers"]] == ["123a", "4567"]
        denied = httpx.get(f"{base}/amoUpdateLists.do", params={"data": SEED_READ})
        assert denied.status_code == 401
    if shutil.which("curl"):
        out = subprocess.run(
            [
                "curl",
                "-s",
                "--user",
                "robot:bot",
                f"{base}/amoUpdateNumbers.do",
                "-G",
                "--data-urlencode",
                f"data={SEED_NUMBERS}",
            ],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
        assert json.loads(out)["numbers"][1]["numberId"] == "9915"
        out = subprocess.run(
            [
                "curl",
                "-s",
                "--user",
                "robot:bot",
                f"{base}/amoUpdateLists.do",
                "--data-urlencode",
                f"data={SEED_READ}",
            ],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
        assert json.loads(out)["amoCampaignName"] == "Sales"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    assert "curl -v --user robot:bot" in banner


def test_serve_gives_a_loopback_base_url() -> None:
    """serve() runs an app on a free loopback port and stops when the block ends."""
    scenario = load_scenario("default")
    app = create_app(scenario, clock=FakeClock(scenario.start), dialer=False)
    with serve(app) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/qm")
        response = httpx.post(
            f"{base_url}/amoUpdateLists.do", data={"data": SEED_READ}, auth=("robot", "bot")
        )
        assert response.status_code == 200
        big = httpx.post(
            f"{base_url}/amoUpdateLists.do",
            content=b"data=" + b"x" * 1_200_000,
            auth=("robot", "bot"),
        )
        assert big.status_code == 413
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{base_url}/amoUpdateLists.do", data={"data": SEED_READ}, timeout=2)


def test_sigint_also_exits_0(emulator: tuple[subprocess.Popen[str], str, str]) -> None:
    """Ctrl-C (SIGINT) stops the emulator cleanly with exit code 0."""
    process, _, _ = emulator
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr


def test_port_in_use_is_one_clear_line() -> None:
    """A busy port fails with one line naming the address, no traceback."""
    scenario = load_scenario("default")
    app = create_app(scenario, clock=FakeClock(scenario.start), dialer=False)
    with serve(app) as base_url:
        port = base_url.split(":")[2].split("/")[0]
        result = subprocess.run(
            [*amo_mixer(), "emulator", "--port", port],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
