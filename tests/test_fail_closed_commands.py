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


def _digest(folder: Path) -> dict[str, str]:
    """The state directory's files and their hashes: the database, the decision log.
    SQLite's reader files (-wal, -shm: a reader of a WAL database may create them, empty)
    and the lock are not state."""
    import hashlib

    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.endswith((".lock", "-wal", "-shm"))
    }


def test_a_preview_beside_a_running_daemon_plans_from_its_state_and_writes_nothing(
    tmp_path: Path, emulator: tuple[EmulatorApp, str]
) -> None:
    """After the mixer wrote 10→20, `once --dry-run` while the state directory is locked
    sees no change (the daemon's baseline is 10), and the state and log stay untouched."""
    from mixer.lock import StateLock

    app, url = emulator
    config = write_config(tmp_path, url)  # boost-recalls: base_weight * 2
    first = amo_mixer("once", "-c", str(config), "--apply")
    assert first.returncode == 0, first.stderr
    found = app.state.find_list("Sales", "Recalls Apr 24")
    assert found is not None
    assert found.weight == 20
    state = tmp_path / "state"
    before = _digest(state)
    with StateLock(state):
        preview = amo_mixer("once", "-c", str(config), "--dry-run")
    assert preview.returncode == 0, preview.stderr
    assert "no changes" in preview.stdout  # not 20→40: the baseline is the daemon's 10
    assert _digest(state) == before
    assert app.stats.update_calls == 1


def test_a_preview_without_state_says_where_base_weights_come_from(
    tmp_path: Path, emulator: tuple[EmulatorApp, str]
) -> None:
    """No state yet: the preview says base weights are QM's current ones, and creates none."""
    _, url = emulator
    config = write_config(tmp_path, url)
    done = amo_mixer("once", "-c", str(config), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "base weights are taken from QM's current weights" in done.stderr
    assert not (tmp_path / "state").exists()


def test_explain_leaves_the_state_file_as_it_was(
    tmp_path: Path, emulator: tuple[EmulatorApp, str]
) -> None:
    """`explain` reads the state without writing it (not even a migration or WAL switch)."""
    _, url = emulator
    config = write_config(tmp_path, url)
    assert amo_mixer("once", "-c", str(config), "--apply").returncode == 0
    before = _digest(tmp_path / "state")
    done = amo_mixer(
        "explain", "-c", str(config), "--campaign", "Sales", "--list", "Recalls Apr 24"
    )
    assert done.returncode == 0, done.stderr
    assert _digest(tmp_path / "state") == before
