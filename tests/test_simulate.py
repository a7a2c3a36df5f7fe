"""Backtests: the three strategies run through the real cycle and report comparable metrics."""

from __future__ import annotations

import gc
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from mixer.cli import main
from mixer.config import load_settings
from mixer.emulator.scenario import Scenario, load_scenario
from mixer.shipped import shipped_rule_files
from mixer.simulate.backtest import STRATEGIES, backtest, run_strategy
from mixer.simulate.comparison import render_comparison
from mixer.simulate.progress import ProgressBar
from mixer.simulate.workdir import write_config

KEYS = {"on_time_ratio", "completed", "idle_agent_minutes", "starved_lists", "writes"}

# A small deadline race, short enough for a command test: one list due at 11:00 that its
# weight alone cannot finish, next to a big list without a deadline.
SMALL = """\
start: "2024-04-22 08:00"
duration: 4h
timezone: Europe/Zurich
seed: 3
campaigns:
  Sales:
    lists:
      - {name: Due Eleven, numbers: 120, weight: 5, deadline: "2024-04-22 11:00"}
      - {name: Backlog, numbers: 2000, weight: 40}
agents:
  - {campaign: Sales, from: "08:00", to: "18:00", count: 4}
handling_time: {min: 2m, max: 3m}
"""


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def short_backtest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    scenario = load_scenario("deadline-crunch")
    folder = tmp_path_factory.mktemp("backtest")
    result = backtest(scenario, shipped_rule_files(), workdir=folder, duration=timedelta(hours=10))
    return {"result": result, "folder": folder}


def test_short_backtest_runs_every_strategy_with_the_json_keys(
    short_backtest: dict[str, object],
) -> None:
    """All three strategies run and each reports the documented metric keys."""
    document = json.loads(short_backtest["result"].to_json())  # type: ignore[attr-defined]
    assert document["scenario"] == "deadline-crunch"
    assert set(document["strategies"]) == set(STRATEGIES)
    for figures in document["strategies"].values():
        assert set(figures) >= KEYS
        assert figures["completed"] > 0


def test_only_the_rules_strategy_writes(short_backtest: dict[str, object]) -> None:
    """The mixer wrote list updates; static weights and the oracle never did."""
    strategies = short_backtest["result"].strategies  # type: ignore[attr-defined]
    assert strategies["rules"].writes > 0
    assert strategies["rules"].cycles == 10 * 60
    assert strategies["static"].writes == 0
    assert strategies["oracle"].writes == 0


def test_rules_run_keeps_config_and_decision_log(short_backtest: dict[str, object]) -> None:
    """The rules run leaves a loadable apply-mode config and decision records in its folder."""
    folder: Path = short_backtest["folder"]  # type: ignore[assignment]
    settings = load_settings(folder / "config.yaml", environ={})
    assert settings.mode == "apply"
    assert settings.qm.concurrency == 1  # the emulator is in-process: no network waits
    records = [
        json.loads(line)
        for line in (folder / "state" / "decisions.jsonl").read_text("utf-8").splitlines()
    ]
    assert any(r["event"] == "decision" and r["applied"] for r in records)


def test_comparison_table_has_a_row_per_strategy(short_backtest: dict[str, object]) -> None:
    """The table names the scenario and shows each strategy's on-time ratio."""
    result = short_backtest["result"]
    text = render_comparison(result)  # type: ignore[arg-type]
    assert "deadline-crunch" in text
    for name in STRATEGIES:
        row = next(line for line in text.splitlines() if line.startswith(name))
        ratio = result.strategies[name].on_time_ratio  # type: ignore[attr-defined]
        assert f"{ratio:.1%}" in row


def test_comparison_table_shows_the_pressure_metrics(short_backtest: dict[str, object]) -> None:
    """Gap, speed to lead, writes per day and flaps are columns; the rules row shows its
    writes per day and the longest gap as the JSON has them."""
    result = short_backtest["result"]
    text = render_comparison(result)  # type: ignore[arg-type]
    header = text.splitlines()[1]
    for column in ("MAX GAP H", "LEAD WAIT MIN (P90)", "WRITES/DAY", "FLAPS"):
        assert column in header
    rules = result.strategies["rules"]  # type: ignore[attr-defined]
    row = next(line for line in text.splitlines() if line.startswith("rules")).split()
    assert row[5] == f"{rules.max_list_gap_hours:.1f}"
    assert row[-2] == f"{rules.writes_per_day:.0f}"
    assert row[-1] == str(rules.flaps)
    data = result.to_dict()["strategies"]["rules"]  # type: ignore[attr-defined]
    assert {"wait_to_first_call_minutes", "max_list_gap_hours", "writes_per_day", "flaps"} <= set(
        data
    )


def test_static_and_oracle_do_not_depend_on_rules(tmp_path: Path, small: Path) -> None:
    """The oracle meets more of the deadline than static weights on the same seed."""
    scenario = load_scenario(small)
    static = run_strategy(scenario, "static", rules=[], workdir=tmp_path)
    oracle = run_strategy(scenario, "oracle", rules=[], workdir=tmp_path)
    assert static.on_time_ratio is not None
    assert oracle.on_time_ratio is not None
    assert oracle.on_time_ratio > static.on_time_ratio
    assert not (tmp_path / "config.yaml").exists()


@pytest.mark.parametrize("strategy", ["static", "rules"])
def test_collector_settings_are_restored_after_a_run(
    tmp_path: Path, small: Path, strategy: str
) -> None:
    """The set-up heap is frozen and young collections are rarer only while a run lasts."""
    before = gc.get_threshold()
    during: list[tuple[int, tuple[int, ...]]] = []

    def progress(_strategy: str, fraction: float) -> None:
        if fraction < 1.0:
            during.append((gc.get_freeze_count(), gc.get_threshold()))

    run_strategy(
        load_scenario(small),
        strategy,  # type: ignore[arg-type]
        rules=shipped_rule_files(),
        workdir=tmp_path,
        duration=timedelta(hours=2),
        progress=progress,
    )
    assert during
    assert all(frozen > 0 and threshold[0] > before[0] for frozen, threshold in during)
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def test_unknown_strategy_is_refused(tmp_path: Path, small: Path) -> None:
    """A strategy name outside static/rules/oracle is a programming error, said so."""
    with pytest.raises(ValueError, match="unknown strategy"):
        run_strategy(load_scenario(small), "greedy", rules=[], workdir=tmp_path)  # type: ignore[arg-type]


def test_written_config_loads_with_the_scenario_campaigns(tmp_path: Path) -> None:
    """The simulator's config goes through load_settings: apply mode, scenario time zone."""
    scenario: Scenario = load_scenario("default")
    path = write_config(
        tmp_path, url="http://127.0.0.1:1/qm", scenario=scenario, rule_files=shipped_rule_files()
    )
    settings = load_settings(path, environ={})
    assert list(settings.campaigns) == list(scenario.campaigns)
    assert settings.qm.timezone == scenario.timezone
    assert settings.mode == "apply"
    assert settings.metrics is None
    assert path.stat().st_mode & 0o077 == 0


def test_progress_bar_draws_only_when_enabled() -> None:
    """A terminal gets a redrawn bar that is cleared at the end; a pipe gets nothing."""
    tty, pipe = io.StringIO(), io.StringIO()
    for stream, enabled in ((tty, True), (pipe, False)):
        bar = ProgressBar(stream, enabled=enabled)
        bar("rules", 0.0)
        bar("rules", 1.0)
        bar.close()
    assert "[" in tty.getvalue()
    assert "100%" in tty.getvalue()
    assert tty.getvalue().endswith("\r")
    assert pipe.getvalue() == ""


def test_simulate_command_prints_the_table(small: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``simulate`` prints the strategy-by-metric table and exits 0."""
    assert main(["simulate", "--scenario", str(small)]) == 0
    out = capsys.readouterr().out
    assert "ON TIME" in out
    assert "WRITES" in out
    assert all(any(line.startswith(s) for line in out.splitlines()) for s in STRATEGIES)


def test_simulate_command_json_and_output(
    small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--json`` prints the documented shape; ``--output`` keeps the rules run's log."""
    out_dir = tmp_path / "kept"
    assert main(["simulate", "--scenario", str(small), "--json", "--output", str(out_dir)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["scenario"] == "small"
    assert set(document["strategies"]) == {"static", "rules", "oracle"}
    assert all(set(v) >= KEYS for v in document["strategies"].values())
    assert (out_dir / "state" / "decisions.jsonl").stat().st_size > 0


def test_simulate_command_bad_scenario_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown scenario is exit 2 with one line naming it, no traceback."""
    assert main(["simulate", "--scenario", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "nope.yaml" in err[0]


def test_simulate_command_bad_rules_file_fails_before_simulating(
    small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken rules file or a glob matching nothing is reported, naming the file."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - name: x\n    when: unpulled >\n    set: {paused: true}\n")
    assert main(["simulate", "--scenario", str(small), "--rules", str(broken)]) in (1, 2)
    assert "broken.yaml" in capsys.readouterr().err
    assert main(["simulate", "--scenario", str(small), "--rules", str(tmp_path / "*.yml")]) == 2
    assert "no such rules file" in capsys.readouterr().err
