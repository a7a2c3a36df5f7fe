"""``amo-mixer replay``: new rules against recorded cycles, through the daemon's plan code."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixer.cli import main
from mixer.decisions import read_records
from mixer.emulator.scenario import load_scenario
from mixer.engine.facts import EngineSettings
from mixer.guardrails import Limits
from mixer.recorded import recorded_cycles
from mixer.replay import NO_NOTES_CAVEAT, replay
from mixer.rule_loading import load_rules
from mixer.shipped import shipped_rule_files
from mixer.simulate.backtest import run_strategy

START = datetime(2024, 4, 22, 6, 0, tzinfo=UTC)  # the default scenario's 08:00 Zurich
ZURICH = EngineSettings(timezone=load_scenario("default").tz)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four simulated hours of the default scenario under the shipped rules, in apply mode."""
    folder = tmp_path_factory.mktemp("recorded")
    run_strategy(
        load_scenario("default"),
        "rules",
        rules=shipped_rule_files(),
        workdir=folder,
        duration=timedelta(hours=4),
    )
    return folder


@pytest.fixture
def new_rules(tmp_path: Path) -> Path:
    """The shipped rules without pacing: what a supervisor might try."""
    folder = tmp_path / "new"
    folder.mkdir()
    for path in shipped_rule_files():
        if "pacing" not in path.name:
            shutil.copy(path, folder / path.name)
    return folder


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cycle_events_record_what_replay_needs_for_deadline_facts(recorded: Path) -> None:
    """Each list of a cycle event carries notes, dialer state and last pull."""
    cycle = next(iter(read_records(recorded / "state" / "decisions.jsonl", event="cycle")))
    entry = cycle["lists"]["Callbacks Today"]
    assert "deadline: 2024-04-22 17:00" in entry["notes"]
    assert entry["dialer_state"] == "open"
    assert "last_pull" in entry


def test_the_running_rules_replayed_decide_exactly_what_was_recorded(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Replaying the rules that ran finds no difference: the replay rebuilds the same
    memory, history and shadow state the daemon had."""
    code, out, _ = _run(
        [
            "replay",
            "-c",
            str(recorded / "config.yaml"),
            "--since",
            START.isoformat(),
            "--until",
            (START + timedelta(hours=4)).isoformat(),
            "--rules",
            *[str(p) for p in shipped_rule_files()],
            "--json",
        ],
        capsys,
    )
    assert code == 0
    result = json.loads(out)
    assert result["cycles"] == 4 * 60 * 2  # two campaigns
    assert result["changes"] == []
    assert any("decisions, not outcomes" in c for c in result["caveats"])


def test_rules_without_pacing_show_the_pacing_decisions_they_would_not_make(
    recorded: Path, new_rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dropping the pacing rules: the differing changes name the pacing rules on the
    running side, and the deadline lists' weights differ for most of the span."""
    args = ["replay", "-c", str(recorded / "config.yaml"), "--since", START.isoformat()]
    args += ["--until", (START + timedelta(hours=4)).isoformat(), "--rules", f"{new_rules}/*.yaml"]
    code, out, _ = _run([*args, "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["rules"]["earliest-deadline-first"] == {"old": 1, "new": 0}
    first = next(c for c in result["changes"] if c["list"] == "Callbacks Today")
    assert first["old"] == {"weight": 100, "paused": False, "rules": ["earliest-deadline-first"]}
    assert first["new"]["weight"] == first["before"]["weight"] == 2
    lists = {row["list"]: row for row in result["lists"]}
    assert lists["Callbacks Today"]["weight_differed_minutes"] >= 4 * 60 - 2
    timeline = {t["list"]: t["points"] for t in result["timeline"]}
    assert timeline["Callbacks Today"][0][1:3] == [100, 2]

    code, out, _ = _run(args, capsys)
    assert code == 0
    assert "decisions, not outcomes" in out
    assert "Callbacks Today" in out
    assert "earliest-deadline-first" in out
    assert "Lists that would have differed" in out


# -- hand-written recordings -------------------------------------------------------------

SET_50 = """
rules:
  - name: fifty
    description: "Fifty."
    when: added > 0
    set: {weight: 50}
"""


def _cycle(minute: int, mode: str, weight: int, *, notes: bool = True) -> dict[str, Any]:
    ts = (START + timedelta(minutes=minute)).isoformat(timespec="seconds")
    entry: dict[str, Any] = {
        "weight": weight,
        "paused": False,
        "added": 100,
        "pulled": minute,
        "completed": minute,
        "can_reserve": True,
    }
    if notes:
        entry.update(notes="", dialer_state="open", last_pull=None)
    return {
        "event": "cycle",
        "ts": ts,
        "cycle_id": f"c{minute}",
        "campaign": "Sales",
        "mode": mode,
        "outcome": "ok",
        "lists": {"A": entry},
    }


def _replay(records: list[dict[str, Any]], rules_text: str, tmp_path: Path) -> Any:
    path = tmp_path / "r.yaml"
    path.write_text(rules_text, encoding="utf-8")
    return replay(
        recorded_cycles(records),
        load_rules([path]),
        since=START,
        until=START + timedelta(hours=3),
        settings=ZURICH,
        limits=Limits(manual_hold=timedelta(minutes=30)),
    )


def test_a_human_change_in_the_recording_is_an_override_for_the_new_rules(
    tmp_path: Path,
) -> None:
    """In apply mode the new rules' write moves the shadow weight; a weight the running
    mixer did not write (a human's 7) is adopted and held for manual_hold."""
    records = [_cycle(m, "apply", 10) for m in range(10)]
    records += [_cycle(m, "apply", 7) for m in range(10, 60)]
    result = _replay(records, SET_50, tmp_path)
    news = [(c.ts, c.before, c.new) for c in result.changes]
    assert news[0] == (START, (10, False), (50, False))
    # The 7 is adopted and held: the next differing change comes when the hold ends.
    assert news[1] == (START + timedelta(minutes=40), (7, False), (50, False))


def test_in_dry_run_the_new_rules_write_nothing_so_the_state_stays_recorded(
    tmp_path: Path,
) -> None:
    """A dry-run recording: the new rules' wish never lands, one change row, and the
    weight differs for the whole span."""
    records = [_cycle(m, "dry-run", 10) for m in range(61)]
    result = _replay(records, SET_50, tmp_path)
    assert [(c.before, c.new) for c in result.changes] == [((10, False), (50, False))]
    summary = result.lists[("Sales", "A")]
    assert summary.weight_differed == timedelta(minutes=60)
    assert NO_NOTES_CAVEAT not in result.caveats


def test_a_log_without_recorded_notes_says_deadline_tags_are_unknown(tmp_path: Path) -> None:
    """An older log (no notes in cycle events) gets the caveat, not silent guesses."""
    records = [_cycle(m, "dry-run", 10, notes=False) for m in range(5)]
    assert NO_NOTES_CAVEAT in _replay(records, SET_50, tmp_path).caveats


@pytest.fixture
def config_only(tmp_path: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "qm": {"url": "http://127.0.0.1:9/qm", "user": "u", "timezone": "UTC"},
                "campaigns": ["Sales"],
                "rules": [],
                "state_dir": "state",
            }
        ),
        encoding="utf-8",
    )
    return config


def test_replay_without_a_decision_log_says_so_in_one_line(
    config_only: Path, new_rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No log yet: exit 1 and one line naming the path, no traceback."""
    args = ["replay", "-c", str(config_only), "--since", "7d", "--rules", f"{new_rules}/*.yaml"]
    code, out, err = _run(args, capsys)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "no decision log at" in err


def test_replay_refuses_since_after_until(
    config_only: Path, new_rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--since after --until is bad usage: exit 2."""
    args = ["replay", "-c", str(config_only), "--since", "2024-04-23T00:00"]
    args += ["--until", "2024-04-22T00:00", "--rules", f"{new_rules}/*.yaml"]
    code, _, err = _run(args, capsys)
    assert code == 2
    assert "must be before" in err


def test_the_report_gets_a_replay_section_with_old_and_new_weights(
    recorded: Path, new_rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """report --replay-rules embeds the replay (caveats, timeline of old vs new weights)
    for the page's replay section; without --since it is bad usage."""
    pytest.importorskip("plotly")
    out = tmp_path / "report.html"
    args = ["report", "-c", str(recorded / "config.yaml"), "-o", str(out)]
    replay_args = ["--replay-rules", f"{new_rules}/*.yaml"]
    code, _, err = _run([*args, *replay_args], capsys)
    assert code == 2
    assert "--replay-rules needs --since" in err
    since = ["--since", START.isoformat(), "--until", (START + timedelta(hours=4)).isoformat()]
    code, _, _ = _run([*args, *since, *replay_args], capsys)
    assert code == 0
    page = out.read_text(encoding="utf-8")
    assert 'id="replay"' in page
    data = page.split('<script type="application/json" id="report-data">')[1].split("</script>")[0]
    replayed = json.loads(data)["replay"]
    assert any("decisions, not outcomes" in c for c in replayed["caveats"])
    lines = {t["list"]: t["points"] for t in replayed["timeline"]}
    assert lines["Callbacks Today"][0][1:3] == [100, 2]


def test_worker_processes_give_the_same_result_as_one(
    recorded: Path, new_rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Campaigns spread over two processes: the same JSON, byte for byte, as in one."""
    args = ["replay", "-c", str(recorded / "config.yaml"), "--since", START.isoformat()]
    args += ["--until", (START + timedelta(hours=4)).isoformat(), "--rules", f"{new_rules}/*.yaml"]
    outputs = []
    for jobs in ("1", "2"):
        code, out, _ = _run([*args, "--json", "--jobs", jobs], capsys)
        assert code == 0
        outputs.append(out)
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])["changes"]


def test_a_new_rule_that_raises_is_reported_and_leaves_the_list_alone(tmp_path: Path) -> None:
    """A rule dividing by zero: no change for the list, and the error counted per rule."""
    records = [_cycle(m, "dry-run", 10) for m in range(5)]
    raising = SET_50.replace("set: {weight: 50}", "set: {weight: 'added / (pulled - pulled)'}")
    result = _replay(records, raising, tmp_path)
    assert result.changes == []
    assert [(rule, count) for (rule, _), count in result.rule_errors.items()] == [("fifty", 5)]


@pytest.mark.e2e
def test_the_replay_section_draws_in_a_browser_without_errors(
    recorded: Path, new_rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Headless Chromium draws one chart per differing list in the replay section, with
    the old and new weight lines, and the page reports no script error."""
    pytest.importorskip("plotly")
    from tests.test_report_browser import browse, status

    out = tmp_path / "report.html"
    args = ["report", "-c", str(recorded / "config.yaml"), "-o", str(out)]
    args += ["--since", START.isoformat(), "--until", (START + timedelta(hours=4)).isoformat()]
    code, _, _ = _run([*args, "--replay-rules", f"{new_rules}/*.yaml"], capsys)
    assert code == 0
    run = browse(tmp_path, out.as_uri(), "--dump-dom")
    state = status(run.stdout)
    assert state["errors"] == []
    differing = len(
        [
            row
            for row in json.loads(
                out.read_text(encoding="utf-8").split('id="report-data">')[1].split("</script>")[0]
            )["replay"]["lists"]
            if row["weight_differed_minutes"] or row["paused_differed_minutes"]
        ]
    )
    assert differing > 0
    assert state["charts"] == 2 + min(differing, 12)  # two campaigns, then the replay's
    assert "running rules" in run.stdout
