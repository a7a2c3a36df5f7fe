"""``amo-mixer scenario fit``: a scenario fitted to recorded cycles reproduces the centre."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixer.cli import main
from mixer.decisions import read_records
from mixer.emulator.scenario import Scenario, load_scenario
from mixer.recorded import recorded_cycles
from mixer.scenario_fit import FitResult, fit_scenario, render_yaml
from mixer.simulate.backtest import StrategyResult, run_strategy

NEVER_FIRES = """
rules:
  - name: never
    description: "Never fires: the weights stay static."
    when: added < 0
    set: {weight: 1}
"""
# Tolerances the validation reaches (docs/backtests.md, "Fitted scenarios").
COMPLETED_TOLERANCE = 0.05  # relative, completed numbers per day
ON_TIME_TOLERANCE = 0.05  # absolute, on-time ratio under static weights
HOUR_TOLERANCE = 0.15  # relative, each hour with at least 20 pulls
PROFILE_TOLERANCE = 0.08  # sum of |differences| over the day's pulls

KNOWN: dict[str, Any] = {
    "description": "The known centre the validation fits: capacity that changes at noon, "
    "a deadline the static weights miss, a refill, reschedules.",
    "start": "2024-04-22 07:00",
    "duration": "1d",
    "timezone": "Europe/Zurich",
    "seed": 3,
    "campaigns": {
        "Outbound": {
            "lists": [
                {"name": "Due Today", "numbers": 900, "weight": 10, "deadline": "2024-04-22 16:00"},
                {"name": "Promo", "numbers": 1500, "weight": 20},
                {
                    "name": "Refills",
                    "numbers": 200,
                    "weight": 10,
                    "add": [{"at": "2024-04-22 13:00", "numbers": 300}],
                },
            ]
        }
    },
    "agents": [
        {"campaign": "Outbound", "from": "08:00", "to": "12:00", "count": 6},
        {"campaign": "Outbound", "from": "12:00", "to": "18:00", "count": 10},
    ],
    "handling_time": {"min": "3m", "max": "5m"},
    "outcomes": {"success": 0.7, "reschedule": 0.2, "fail": 0.1},
    "reschedule_after": "2h",
}


def _static_run(scenario: Scenario, folder: Path) -> tuple[StrategyResult, FitResult]:
    """Static weights with the real cycle code recording (one rule that never fires: a
    config needs an enabled rule), and what the recording says (the fit's figures)."""
    none = folder / "never.yaml"
    none.parent.mkdir(parents=True, exist_ok=True)
    none.write_text(NEVER_FIRES, encoding="utf-8")
    result = run_strategy(scenario, "rules", rules=[none], workdir=folder)
    assert result.writes == 0
    since, until = scenario.start.astimezone(UTC), scenario.end.astimezone(UTC)
    records = read_records(folder / "state" / "decisions.jsonl", event="cycle")
    fitted = fit_scenario(recorded_cycles(records), tz=scenario.tz, since=since, until=until)
    return result, fitted


def test_a_fitted_scenario_reproduces_the_known_centres_figures(tmp_path: Path) -> None:
    """Simulate a known scenario, fit one from its decision log, simulate that: completed
    per day, the static on-time ratio and the pulls-per-hour profile agree within the
    stated tolerances, and the agents per hour are the known ones."""
    known = Scenario.model_validate(KNOWN)
    original, fit = _static_run(known, tmp_path / "original")
    assert fit.agents["Outbound"][(0, 9)] == 6
    assert fit.agents["Outbound"][(0, 14)] == 10
    path = tmp_path / "fitted.yaml"
    path.write_text(render_yaml(fit), encoding="utf-8")
    fitted_scenario = load_scenario(path)
    again, refit = _static_run(fitted_scenario, tmp_path / "fitted")

    assert abs(again.completed - original.completed) <= COMPLETED_TOLERANCE * original.completed
    assert original.on_time_ratio is not None
    assert again.on_time_ratio is not None
    assert abs(again.on_time_ratio - original.on_time_ratio) <= ON_TIME_TOLERANCE
    before, after = fit.pulls_by_hour, refit.pulls_by_hour
    for hour in range(24):
        if before[hour] >= 20:
            assert abs(after[hour] - before[hour]) <= HOUR_TOLERANCE * before[hour], hour
    assert sum(abs(a - b) for a, b in zip(after, before, strict=True)) <= PROFILE_TOLERANCE * sum(
        before
    )


T0 = datetime(2024, 4, 22, 6, 0, tzinfo=UTC)  # Monday 08:00 in Zurich


def _cycle(minute: int, lists: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "event": "cycle",
        "ts": (T0 + timedelta(minutes=minute)).isoformat(),
        "cycle_id": f"c{minute}",
        "campaign": "Sales",
        "mode": "dry-run",
        "outcome": "ok",
        "lists": lists,
    }


def _entry(added: int, pulled: int, completed: int, **extra: Any) -> dict[str, Any]:
    return {
        "weight": 10,
        "paused": False,
        "added": added,
        "pulled": pulled,
        "completed": completed,
        "can_reserve": True,
        **extra,
    }


def test_fit_reads_lists_refills_deadlines_and_late_lists_from_the_counters() -> None:
    """Numbers as first seen, a deadline from the notes' tag, rises of added within ten
    minutes merged into one refill, a list first seen later starting empty."""
    records = []
    for minute in range(30):
        added = 100 + (50 if minute >= 10 else 0) + (20 if minute >= 12 else 0)
        lists = {"A": _entry(added, 3, 1, notes="deadline: 2024-04-23 12:00")}
        if minute >= 20:
            lists["Late"] = _entry(40, 0, 0)
        records.append(_cycle(minute, lists))
    zurich = load_scenario("default").tz
    fit = fit_scenario(recorded_cycles(records), tz=zurich, since=T0, until=T0 + timedelta(hours=1))
    specs = {spec["name"]: spec for spec in fit.document["campaigns"]["Sales"]["lists"]}
    assert specs["A"]["numbers"] == 100
    assert specs["A"]["completed"] == 1
    assert specs["A"]["deadline"] == "2024-04-23 12:00"
    assert specs["A"]["add"] == [{"at": "2024-04-22 08:10", "numbers": 70}]
    assert specs["Late"]["numbers"] == 0
    assert specs["Late"]["add"] == [{"at": "2024-04-22 08:20", "numbers": 40}]
    Scenario.model_validate(fit.document)  # the document is a valid scenario


def test_capacity_in_an_hour_with_nothing_reservable_is_the_busy_lower_bound() -> None:
    """Agents idle when lists cannot reserve: such an hour gets the most agents seen
    busy, not the mean, and an hour with a reservable list the mean of calls in progress."""
    records = []
    for minute in range(120):
        in_call = 4 if minute < 60 else (3 if minute % 2 else 1)
        entry = _entry(1000, 100 + in_call, 100, can_reserve=minute < 60)
        records.append(_cycle(minute, {"A": entry}))
    zurich = load_scenario("default").tz
    fit = fit_scenario(recorded_cycles(records), tz=zurich, since=T0, until=T0 + timedelta(hours=2))
    assert fit.agents["Sales"][(0, 8)] == 4
    assert fit.agents["Sales"][(0, 9)] == 3


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "config.yaml"
    document = {
        "qm": {"url": "http://127.0.0.1:9/qm", "user": "u", "timezone": "Europe/Zurich"},
        "campaigns": ["Sales"],
        "rules": [],
        "state_dir": "state",
    }
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    return config


def test_scenario_fit_writes_a_scenario_simulate_can_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command writes the fitted file with its method as comments and names the next
    step; the file loads as a scenario."""
    config = _config(tmp_path)
    (tmp_path / "state").mkdir()
    lines = [_cycle(m, {"A": _entry(100, 2 + m, m)}) for m in range(60)]
    log = tmp_path / "state" / "decisions.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    out = tmp_path / "centre.yaml"
    args = ["scenario", "fit", "-c", str(config), "--since", T0.isoformat()]
    code = main([*args, "--until", (T0 + timedelta(hours=1)).isoformat(), "-o", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert f"amo-mixer simulate --scenario {out}" in printed
    text = out.read_text(encoding="utf-8")
    assert "# Limits:" in text
    assert load_scenario(out).campaigns["Sales"].lists[0].numbers == 100


def test_scenario_fit_with_nothing_recorded_in_range_fails_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A range with no cycles: exit 1, one line, and no file written."""
    config = _config(tmp_path)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "decisions.jsonl").write_text("", encoding="utf-8")
    out = tmp_path / "centre.yaml"
    code = main(["scenario", "fit", "-c", str(config), "--since", "14d", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert "cannot fit a scenario" in err
    assert not out.exists()
