"""`amo-mixer run` shows each decision: demo-style lines on a terminal, JSON lines elsewhere."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import pytest

from tests.test_commands import emulator as emulator  # the fixture
from tests.test_commands import write_config
from tests.test_emulator_e2e import amo_mixer


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMO_MIXER_QM_PASSWORD", "bot")
    monkeypatch.delenv("AMO_MIXER_MODE", raising=False)


def run_on_terminal(config: Path) -> str:
    """One cycle of the installed `run` with stdout and stderr on a pseudo-terminal."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [*amo_mixer(), "run", "-c", str(config), "--max-cycles", "1"],
            stdout=terminal,
            stderr=terminal,
            stdin=subprocess.DEVNULL,
        )
        os.close(terminal)
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=60) == 0
    finally:
        os.close(controller)
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def test_run_on_a_terminal_prints_each_decision_and_failed_campaign(
    tmp_path: Path, emulator: tuple[object, str]
) -> None:
    """On a TTY each decision is one line (list, weight a→b, paused, rules, reason), and a
    failed campaign one line naming its error."""
    _, url = emulator
    config = write_config(tmp_path, url, campaigns=["Sales", "Nope"])
    out = run_on_terminal(config)
    line = next(x for x in out.splitlines() if "Sales/Recalls Apr 24" in x)
    for part in ("weight 10→20", "paused no→no", "boost-recalls", "Recalls first."):
        assert part in line
    (failed,) = [x for x in out.splitlines() if x.startswith("Nope") and "error" in x]
    assert "Unknown campaign 'Nope'" in failed


def test_run_under_systemd_logs_each_decision_as_json(
    tmp_path: Path, emulator: tuple[object, str]
) -> None:
    """Without a TTY each decision is a JSON `decision` line with the same fields."""
    _, url = emulator
    config = write_config(tmp_path, url)
    result = subprocess.run(
        [*amo_mixer(), "run", "-c", str(config), "--max-cycles", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    records = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    (decision,) = [r for r in records if r["event"] == "decision"]
    assert decision["campaign"] == "Sales"
    assert decision["list"] == "Recalls Apr 24"
    assert (decision["weight_before"], decision["weight_after"]) == (10, 20)
    assert (decision["paused_before"], decision["paused_after"]) == (False, False)
    assert decision["rules"] == ["boost-recalls"]
    assert decision["reason"] == "Recalls first."
    assert decision["applied"] is False


def test_run_logs_each_qm_retry_as_one_readable_line(tmp_path: Path) -> None:
    """A retried QM read is one `qm_retry` JSON line of ours, never stamina's raw event."""
    config = write_config(tmp_path, "http://127.0.0.1:9/qm")
    result = subprocess.run(
        [*amo_mixer(), "run", "-c", str(config), "--max-cycles", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    records = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    retries = [r for r in records if r["event"] == "qm_retry"]
    assert [r["attempt"] for r in retries] == [2, 3]
    assert "cannot be reached" in retries[0]["error"]
    assert "stamina" not in result.stdout + result.stderr
