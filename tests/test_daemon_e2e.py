"""The installed ``amo-mixer run`` against the emulator over loopback HTTP: signals, lock."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mixer.emulator.app import create_app
from mixer.emulator.server import serve

pytestmark = pytest.mark.e2e

WAIT = 30.0
GOOD_RULES = """\
rules:
  - name: pause-exhausted
    when: not can_reserve and unpulled == 0
    set: {paused: true}
"""
MORE_RULES = """\
rules:
  - name: boost-recalls
    match: "Recall*"
    when: unpulled > 0
    set: {weight: "base_weight * 2"}
"""
BROKEN_RULES = """\
rules:
  - name: boost
    when: unpuled > 0
    set: {weight: "base_weight * 2"}
"""


def amo_mixer() -> list[str]:
    installed = shutil.which("amo-mixer")
    if installed is None:
        candidate = Path(sys.executable).with_name("amo-mixer")
        installed = str(candidate) if candidate.exists() else None
    return [installed] if installed else [sys.executable, "-m", "mixer"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def qm_url() -> Iterator[str]:
    """The emulator on a loopback port (user robot, password bot, campaign Sales)."""
    with serve(create_app(), port=0) as base_url:
        yield base_url


@dataclass
class Setup:
    config: Path
    rules: Path
    notify: socket.socket
    env: dict[str, str]
    metrics_port: int

    def messages_until(self, key: str) -> list[list[str]]:
        """Notify messages up to and including the first holding ``key``."""
        seen = []
        while True:
            message = self.notify.recv(4096).decode().split("\n")
            seen.append(message)
            if key in message:
                return seen

    def start(self, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*amo_mixer(), "run", "-c", str(self.config), *extra],
            env=env or self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def setup(tmp_path: Path, qm_url: str) -> Iterator[Setup]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "10-exhausted.yaml").write_text(GOOD_RULES)
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "qm": {"url": qm_url, "user": "robot", "timezone": "Europe/Zurich"},
                "campaigns": ["Sales"],
                "rules": ["rules/*.yaml"],
                "mode": "dry-run",
                "interval": "1s",
                "state_dir": "state",
                "metrics": {"listen": f"127.0.0.1:{port}"},
            }
        )
    )
    config.chmod(0o600)
    notify_path = str(tmp_path / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(WAIT)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AMO_MIXER_", "NOTIFY_", "WATCHDOG_"))
    }
    env.update({"AMO_MIXER_QM_PASSWORD": "bot", "NOTIFY_SOCKET": notify_path})
    yield Setup(config, rules, notify, env, port)
    notify.close()


def finish(process: subprocess.Popen[str]) -> tuple[int, list[dict[str, Any]], str]:
    """Wait for the process; its exit code, JSON log lines and stderr."""
    try:
        out, err = process.communicate(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, [json.loads(line) for line in out.splitlines()], err


def test_sighup_good_and_broken_rules_then_sigterm(setup: Setup) -> None:
    """SIGHUP with good rules reloads; with broken rules it keeps running and says why; exit 0."""
    process = setup.start()
    try:
        assert setup.messages_until("READY=1")
        setup.messages_until("WATCHDOG=1")
        metrics = httpx.get(f"http://127.0.0.1:{setup.metrics_port}/metrics", timeout=5).text
        assert 'amo_mixer_cycles_total{campaign="Sales",outcome="ok"}' in metrics

        (setup.rules / "20-recalls.yaml").write_text(MORE_RULES)
        process.send_signal(signal.SIGHUP)
        reload = setup.messages_until("READY=1")
        assert reload[0][0] == "RELOADING=1"
        assert reload[-1] == ["READY=1", "STATUS=reloaded"]

        (setup.rules / "30-broken.yaml").write_text(BROKEN_RULES)
        process.send_signal(signal.SIGHUP)
        failed = setup.messages_until("READY=1")[-1]
        assert failed[1].startswith("STATUS=reload failed, running on the old config")
        setup.messages_until("WATCHDOG=1")  # still cycling on the rules it had
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
    code, logs, err = finish(process)
    assert code == 0, err
    assert "STOPPING=1" in setup.messages_until("STOPPING=1")[-1]
    events = [line["event"] for line in logs]
    assert events.count("reloaded") == 1
    (failure,) = [line for line in logs if line["event"].startswith("reload failed")]
    assert "30-broken.yaml:3: rule 'boost'" in failure["error"]
    assert "bot" not in json.dumps(logs).replace("robot", "")
    assert events[-1] == "daemon stopped"
    cycles = [line for line in logs if line["event"] == "cycle"]
    assert cycles
    assert {c["outcome"] for c in cycles} == {"ok"}
    # The audit trail: start-up, the good reload and the refused one are config events,
    # and every cycle record names the rule set in force.
    records = [
        json.loads(line)
        for line in (setup.config.parent / "state" / "decisions.jsonl").read_text().splitlines()
    ]
    configs = [r for r in records if r["event"] == "config"]
    assert [c["outcome"] for c in configs] == ["loaded", "loaded", "refused"]
    assert [len(c["rules"]) for c in configs[:2]] == [1, 2]
    assert configs[0]["rules_hash"] != configs[1]["rules_hash"]
    assert "30-broken.yaml:3: rule 'boost'" in " ".join(configs[2]["errors"])
    assert all(len(c["config_sha256"]) == 64 for c in configs)
    short = {c["rules_hash"][:12] for c in configs[:2]}
    hashes = [r["rules_hash"] for r in records if r["event"] == "cycle"]
    assert hashes
    assert set(hashes) <= short
    assert hashes[-1] == configs[1]["rules_hash"][:12]  # the refused reload changed nothing


def test_sigint_exits_0(setup: Setup) -> None:
    """SIGINT (Ctrl-C) ends the daemon like SIGTERM: cycle finished, exit 0, no traceback."""
    process = setup.start()
    try:
        setup.messages_until("WATCHDOG=1")
    finally:
        process.send_signal(signal.SIGINT)
    code, logs, err = finish(process)
    assert code == 0, err
    assert "Traceback" not in err
    assert logs[-1]["event"] == "daemon stopped"


def test_second_daemon_on_the_same_state_dir_exits_non_zero(setup: Setup) -> None:
    """A second run on the same state_dir fails at once naming the lock file and the PID."""
    first = setup.start()
    try:
        setup.messages_until("READY=1")
        second = setup.start()
        code, _logs, err = finish(second)
        assert code == 1
        assert str(setup.config.parent / "state" / "amo-mixer.lock") in err
        assert f"PID {first.pid}" in err
        assert len(err.strip().splitlines()) == 1
    finally:
        first.send_signal(signal.SIGTERM)
    assert finish(first)[0] == 0


def test_max_cycles_under_memory_deny_write_execute(setup: Setup) -> None:
    """The real daemon completes cycles with W^X enforced, as MemoryDenyWriteExecute=yes does."""
    code = (
        "import ctypes, sys\n"
        "if ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) != 0: sys.exit(77)\n"
        "from mixer.cli import main\n"
        f"sys.exit(main(['run', '-c', {str(setup.config)!r}, '--max-cycles', '2']))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        env=setup.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    status, logs, err = finish(process)
    if status == 77:
        pytest.skip("the kernel has no PR_SET_MDWE (Linux < 6.3)")
    assert status == 0, err
    assert [line["outcome"] for line in logs if line["event"] == "cycle"] == ["ok", "ok"]


def test_a_reload_onto_a_directory_and_a_broken_stdout_keep_the_daemon_answering(
    setup: Setup, tmp_path: Path
) -> None:
    """Issue 12 item 5, end to end: a reload whose decision_log is a directory is refused
    (READY follows RELOADING), and with stdout's reader gone, SIGHUP still reloads and
    SIGTERM still stops the daemon with exit 0."""
    process = setup.start()
    try:
        setup.messages_until("WATCHDOG=1")
        good = setup.config.read_text()
        (tmp_path / "a-directory").mkdir()
        document = yaml.safe_load(good)
        document["decision_log"] = str(tmp_path / "a-directory")
        setup.config.write_text(yaml.safe_dump(document))
        process.send_signal(signal.SIGHUP)
        answer = setup.messages_until("READY=1")
        assert answer[0][0] == "RELOADING=1"
        assert answer[-1][1].startswith("STATUS=reload failed, running on the old config")

        assert process.stdout is not None
        process.stdout.close()  # every later log line meets a broken pipe
        setup.config.write_text(good)
        process.send_signal(signal.SIGHUP)
        assert setup.messages_until("READY=1")[-1] == ["READY=1", "STATUS=reloaded"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=WAIT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()
