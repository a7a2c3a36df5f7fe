"""``amo-mixer demo``: the installed command runs the daemon against the emulator and
leaves a decision log, a config and a comparison behind."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mixer.cycle import CampaignResult
from mixer.simulate.live import DecisionPrinter

LIVE_LINE = re.compile(r"^\w{3} \d\d:\d\d  Sales/.+  weight \d+→\d+  paused (yes|no)→(yes|no)  ")


def _command() -> list[str]:
    exe = shutil.which("amo-mixer")
    return [exe] if exe else [sys.executable, "-m", "mixer"]


@pytest.mark.e2e
def test_demo_runs_two_hours_and_leaves_its_files(tmp_path: Path) -> None:
    """Exit 0, decisions printed live, a decision log with decisions and a config kept."""
    out = tmp_path / "demo"
    proc = subprocess.run(
        [*_command(), "demo", "--hours", "2", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(LIVE_LINE.match(line) for line in lines), proc.stdout
    assert "\033[" not in proc.stdout  # no colour without a terminal
    assert "Traceback" not in proc.stderr
    records = [
        json.loads(line)
        for line in (out / "state" / "decisions.jsonl").read_text("utf-8").splitlines()
    ]
    decisions = [r for r in records if r["event"] == "decision"]
    assert decisions
    assert all(r["mode"] == "apply" for r in decisions)
    assert any(r["applied"] for r in decisions)
    assert (out / "config.yaml").is_file()
    comparison = json.loads((out / "backtest.json").read_text("utf-8"))
    assert set(comparison["strategies"]) == {"static", "rules", "oracle"}
    assert "static" in proc.stdout
    assert "oracle" in proc.stdout
    assert f"amo-mixer log -c {out / 'config.yaml'}" in proc.stdout


def test_printer_writes_one_line_per_decision_in_local_time() -> None:
    """A decision prints as local time, campaign/list, weight and paused moves, rules, reason."""
    from mixer.plan import Decision

    decision = Decision(
        list="Callbacks Today",
        before_weight=3,
        before_paused=False,
        after_weight=30,
        after_paused=False,
        rules=("boost-near-deadline",),
        reason="Deadline in 2.0 h: boosted.",
        facts={},
    )
    plan = _FakePlan(now=datetime(2024, 4, 22, 8, 30, tzinfo=UTC), decisions=(decision,))
    stream = io.StringIO()
    printer = DecisionPrinter(ZoneInfo("Europe/Zurich"), stream, color=False)
    printer(CampaignResult("Sales", "ok", plan=plan))  # type: ignore[arg-type]
    assert stream.getvalue() == (
        "Mon 10:30  Sales/Callbacks Today  weight 3→30  paused no→no  "
        "boost-near-deadline: Deadline in 2.0 h: boosted.\n"
    )
    assert printer.decisions == 1


class _FakePlan:
    def __init__(self, now: datetime, decisions: tuple[object, ...]) -> None:
        self.now = now
        self.decisions = decisions
        self.overrides = ()
        self.stops = ()
