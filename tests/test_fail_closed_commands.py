"""Fail closed, through the installed command against a loopback emulator."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mixer.emulator.app import EmulatorApp, create_app
from mixer.emulator.server import serve
from tests.test_commands import write_config

pytestmark = pytest.mark.e2e

# Raises for every list (the weight minus itself is zero): nothing may be written.
RAISING = """
rules:
  - name: boost-recalls
    match: "Recalls*"
    when: unpulled > 0
    set: {weight: "base_weight * 2"}
  - name: broken-ratio
    when: unpulled > 0
    set: {weight: "base_weight / (weight - weight)"}
"""


@pytest.fixture
def emulator() -> Iterator[tuple[EmulatorApp, str]]:
    app = create_app("default", dialer=False)
    with serve(app, host="127.0.0.1", port=0) as base_url:
        yield app, base_url


def amo_mixer(*args: str) -> subprocess.CompletedProcess[str]:
    command = shutil.which("amo-mixer") or ""
    argv = [command] if command else [sys.executable, "-m", "mixer"]
    return subprocess.run(
        [*argv, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "AMO_MIXER_QM_PASSWORD": "bot"},
        check=False,
        timeout=60,
    )


def test_once_apply_with_a_raising_rule_writes_nothing_and_exits_1(
    tmp_path: Path, emulator: tuple[EmulatorApp, str]
) -> None:
    """Every list's rules raise: no listUpdates call, one stderr line per list, exit 1."""
    app, url = emulator
    config = write_config(tmp_path, url, rules=RAISING)
    weights = {c.name: c.weight for c in app.state.campaigns["Sales"].values()}
    done = amo_mixer("once", "-c", str(config), "--apply")
    assert done.returncode == 1, done.stderr
    assert app.stats.update_calls == 0
    assert {c.name: c.weight for c in app.state.campaigns["Sales"].values()} == weights
    lines = [x for x in done.stderr.splitlines() if "broken-ratio" in x]
    assert len(lines) == len(weights)
    assert all("the list was left as QM has it" in x for x in lines)
    assert "rule error" in done.stdout
    assert "Traceback" not in done.stderr
