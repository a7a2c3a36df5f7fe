"""``amo-mixer status`` through the installed command: last cycle and outcome per
campaign, the rule set hash, manual holds, pending ``for:`` timers — read-only."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mixer.status.offline import rules_hash
from tests.cycle_harness import Mixer
from tests.test_daemon_e2e import amo_mixer

pytestmark = pytest.mark.e2e

RULES = """
rules:
  - name: boost
    match: "Recall*"
    when: unpulled > 0
    set: {weight: "base_weight * 2"}
  - name: pause-cold-later
    match: "Cold*"
    when: unpulled > 0
    for: 2h
    set: {paused: true}
"""
LISTS = [
    {"name": "Recall A", "weight": 10, "numbers": 20},
    {"name": "Cold B", "weight": 5, "numbers": 20},
    {"name": "Plain", "weight": 7, "numbers": 20},
]


def status(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*amo_mixer(), "status", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "AMO_MIXER_QM_PASSWORD": "unused"},
    )


@pytest.fixture
def rig(tmp_path: Path) -> Mixer:
    """Three cycles ending a minute ago (the command reads the real clock); a human
    changed "Plain" in the second."""
    mixer = Mixer(tmp_path, lists=LISTS, rules=RULES)
    mixer.clock.set(datetime.now(UTC) - timedelta(minutes=4))
    mixer.cycle()
    mixer.qm_list("Plain").weight = 40
    mixer.cycle()
    mixer.cycle()
    mixer.close()
    return mixer


def test_status_shows_last_cycle_rules_holds_and_timers(rig: Mixer) -> None:
    """The text names the outcome, the rule-set hash, the hold's end and the timer."""
    run = status(rig.config_path)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    files_hash = rules_hash(rig.settings.rule_files())
    assert f"rule set:    {files_hash}" in out  # the cycles' short hash, spelled out
    assert "differ" not in out
    assert "mode:        apply" in out
    assert "times in:    Europe/Zurich" in out
    assert "Sales: ok, last cycle " in out
    assert "s ago)" in out
    assert "Plain: left alone until" in out
    assert "Cold B: pause-cold-later fires at" in out
    assert "Recall A: weight 10→20" in out


def test_status_json_and_tz(rig: Mixer) -> None:
    """--json carries the same facts for machines; --tz UTC shows times in UTC."""
    run = status(rig.config_path, "--json")
    assert run.returncode == 0, run.stderr
    data: dict[str, Any] = json.loads(run.stdout)
    sales = data["campaigns"][0]
    assert sales["outcome"] == "ok"
    assert [h["list"] for h in sales["holds"]] == ["Plain"]
    assert [(t["list"], t["rule"]) for t in sales["timers"]] == [("Cold B", "pause-cold-later")]
    assert data["source"] == "log"
    hold_end = datetime.fromisoformat(sales["holds"][0]["until"])
    text = status(rig.config_path, "--tz", "UTC").stdout
    assert hold_end.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") in text
    assert "times in:    UTC" in text


def test_status_prefers_the_logged_rule_hash_and_flags_a_difference(rig: Mixer) -> None:
    """A hash in the log is the one in force; rule files that differ from it are flagged."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    record = {"event": "config", "ts": now, "outcome": "loaded"}
    record["rules_hash"] = hashlib.sha256(b"older rules").hexdigest()
    with rig.settings.decision_log.open("a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
    out = status(rig.config_path).stdout
    assert f"rule set:    {record['rules_hash']}" in out
    assert "differ from the rule set in force" in out


def test_status_changes_nothing(rig: Mixer) -> None:
    """The state store and the decision log are byte-for-byte the same afterwards."""
    state = rig.settings.state_dir / "state.sqlite3"
    before = (state.read_bytes(), rig.settings.decision_log.read_bytes())
    assert status(rig.config_path).returncode == 0
    assert (state.read_bytes(), rig.settings.decision_log.read_bytes()) == before


def test_status_before_any_cycle(tmp_path: Path) -> None:
    """A mixer that never ran says so, per campaign, and exits 0."""
    mixer = Mixer(tmp_path, lists=LISTS, rules=RULES)
    mixer.close()
    run = status(mixer.config_path)
    assert run.returncode == 0, run.stderr
    assert "Sales: no cycle logged, last cycle never" in run.stdout


def test_status_bad_tz_is_one_line(rig: Mixer) -> None:
    """An unknown --tz is one clear line and exit 2."""
    run = status(rig.config_path, "--tz", "Mars/Olympus")
    assert run.returncode == 2
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("amo-mixer: --tz 'Mars/Olympus' is not a time zone")


def test_a_log_without_a_rule_hash_says_so() -> None:
    """A log from before rule-set hashes shows the files' hash, and says that it does."""
    from mixer.status.offline import status_from_log

    cycle = {"event": "cycle", "ts": "2026-04-09T06:00:00+00:00", "campaign": "Sales"}
    cycle |= {"outcome": "ok", "mode": "dry-run", "cycle_id": "c1"}
    now = datetime(2026, 4, 9, 6, 1, tzinfo=UTC)
    status = status_from_log(["Sales"], [cycle], {}, {}, now, files_hash="ab" * 32)
    assert status.rules_hash == "ab" * 32
    assert any("records no rule-set hash" in note for note in status.notes)
    assert status.campaigns[0].outcome == "ok"


def test_status_escapes_control_characters_in_list_names(tmp_path: Path) -> None:
    """A list named with a newline and ESC shows escaped, never as a forged line."""
    evil = "Recall \x1b[2J\nSales: ok, all fine"
    mixer = Mixer(tmp_path, lists=[{"name": evil, "weight": 10, "numbers": 20}], rules=RULES)
    mixer.clock.set(datetime.now(UTC) - timedelta(minutes=2))
    mixer.cycle()
    mixer.close()
    run = status(mixer.config_path)
    assert run.returncode == 0, run.stderr
    assert "\x1b" not in run.stdout
    assert "\nSales: ok, all fine" not in run.stdout
    assert "Recall \\x1b[2J\\nSales: ok, all fine" in run.stdout
