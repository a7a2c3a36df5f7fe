"""``amo-mixer log``: filters, CSV columns, JSON Lines, table, missing log."""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mixer.cli import build_parser, main
from mixer.clock import FakeClock
from mixer.commands import log as log_command
from mixer.decisions import DECISION_CSV_COLUMNS, DecisionLog
from mixer.errors import MixerError, UsageError

NOW = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)


def decision(minutes_ago: int, campaign: str, name: str, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event": "decision",
        "ts": (NOW - timedelta(minutes=minutes_ago)).isoformat(),
        "cycle_id": "c1",
        "campaign": campaign,
        "list": name,
        "mode": "apply",
        "before": {"weight": 10, "paused": False},
        "after": {"weight": 30, "paused": False},
        "rules": ["boost-near-deadline", "cap"],
        "reason": "Deadline in 20.0 h, 120 unpulled: boosted.",
        "facts": {"hours_to_deadline": 20.0},
        "applied": True,
    }
    record.update(fields)
    return record


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config whose password file is unreadable, with a decision log of mixed events."""
    path = tmp_path / "config.yaml"
    path.write_text(
        "qm: {url: 'http://127.0.0.1:1/qm', user: r, password_file: /nonexistent/pw}\n"
        "campaigns: [Sales, B2B]\nstate_dir: st\n",
        encoding="utf-8",
    )
    with DecisionLog(tmp_path / "st" / "decisions.jsonl") as log:
        log.append(decision(60 * 30, "Sales", "Ancient"))
        log.append(decision(90, "Sales", "Recalls Apr"))
        log.append(
            decision(
                30,
                "B2B",
                "Office",
                before={"weight": 5, "paused": False},
                after={"weight": 5, "paused": True},
                rules=["b2b-office-hours"],
                reason='Closed, "after hours".',
                applied=False,
                mode="dry-run",
            )
        )
        log.append(
            {
                "event": "override",
                "ts": (NOW - timedelta(minutes=20)).isoformat(),
                "campaign": "Sales",
                "list": "Recalls Apr",
                "expected": {"weight": 30, "paused": False},
                "found": {"weight": 7, "paused": False},
                "reason": "A human changed the weight.",
            }
        )
        log.append(
            {"event": "cycle", "ts": (NOW - timedelta(minutes=20)).isoformat(),
             "campaign": "Sales", "outcome": "ok"}
        )  # fmt: skip
    return path


def run_log(config: Path, *options: str) -> str:
    args = build_parser().parse_args(["log", "-c", str(config), *options])
    out = io.StringIO()
    assert log_command.run(args, clock=FakeClock(NOW), out=out) == 0
    return out.getvalue()


def test_csv_columns_exact(config: Path) -> None:
    """CSV has exactly the SPEC columns, one row per decision, rules joined with ';'."""
    rows = list(csv.reader(io.StringIO(run_log(config, "--format", "csv"))))
    assert tuple(rows[0]) == DECISION_CSV_COLUMNS
    assert len(rows) == 4
    assert rows[2] == [
        (NOW - timedelta(minutes=90)).isoformat(),
        "Sales",
        "Recalls Apr",
        "apply",
        "10",
        "30",
        "false",
        "false",
        "boost-near-deadline;cap",
        "Deadline in 20.0 h, 120 unpulled: boosted.",
        "true",
    ]
    assert rows[3][8:] == ["b2b-office-hours", 'Closed, "after hours".', "false"]


def test_since_duration_and_globs(config: Path) -> None:
    """--since 24h drops old decisions; --campaign and --list are globs."""
    rows = list(csv.reader(io.StringIO(run_log(config, "--format", "csv", "--since", "24h"))))
    assert [r[2] for r in rows[1:]] == ["Recalls Apr", "Office"]
    rows = list(csv.reader(io.StringIO(run_log(config, "--format", "csv", "--campaign", "B*"))))
    assert [r[2] for r in rows[1:]] == ["Office"]
    rows = list(csv.reader(io.StringIO(run_log(config, "--format", "csv", "--list", "Rec*"))))
    assert [r[2] for r in rows[1:]] == ["Recalls Apr"]


def test_since_until_iso(config: Path) -> None:
    """--since and --until take ISO times (naive = UTC); until is exclusive."""
    since = (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    until = (NOW - timedelta(minutes=30)).isoformat()
    rows = list(
        csv.reader(io.StringIO(run_log(config, "--format", "csv", "--since", since,
                                       "--until", until)))
    )  # fmt: skip
    assert [r[2] for r in rows[1:]] == ["Recalls Apr"]


def test_json_is_all_events_by_default(config: Path) -> None:
    """json prints every matching record as JSON Lines, all events unless --event."""
    lines = run_log(config, "--format", "json", "--since", "24h").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == ["decision", "decision", "override", "cycle"]
    assert records[0]["facts"] == {"hours_to_deadline": 20.0}
    lines = run_log(config, "--format", "json", "--event", "override").splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["override"]


def test_event_filter_in_table(config: Path) -> None:
    """--event decision,override shows overrides as expected->found rows in the table."""
    text = run_log(config, "--event", "decision,override", "--since", "24h")
    override = [line for line in text.splitlines() if "[override]" in line]
    assert len(override) == 1
    assert "30→7" in override[0]


def test_table_readable(config: Path) -> None:
    """The table has a header, UTC times, a→b changes, rules and reasons."""
    lines = run_log(config).splitlines()
    assert lines[0].split() == [
        "time", "(UTC)", "campaign", "list", "weight", "paused", "rules", "applied", "reason",
    ]  # fmt: skip
    assert len(lines) == 4
    office = lines[3]
    assert office.startswith((NOW - timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M:%S"))
    assert "no→yes" in office
    assert "  5  " in office
    assert office.rstrip().endswith('Closed, "after hours".')
    assert "10→30" in lines[2]
    assert "boost-near-deadline,cap" in lines[2]


def test_table_ascii_fallback(config: Path) -> None:
    """On an output that cannot encode '→' the table uses '->'."""
    args = build_parser().parse_args(["log", "-c", str(config)])
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")
    assert log_command.run(args, clock=FakeClock(NOW), out=out) == 0
    assert b"10->30" in raw.getvalue()


def test_missing_log_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without a decision log, the command fails with one clear line naming the path."""
    config = tmp_path / "c.yaml"
    config.write_text("qm: {url: 'http://q/qm', user: r}\ncampaigns: [S]\n")
    assert main(["log", "-c", str(config)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "no decision log at" in err
    assert str(tmp_path / "state" / "decisions.jsonl") in err


def test_unknown_event_is_usage_error(config: Path) -> None:
    """An unknown --event name is a usage error listing the known ones."""
    with pytest.raises(UsageError, match="choose from decision"):
        run_log(config, "--event", "decisions")


def test_bad_since_is_usage_error(config: Path) -> None:
    """A --since that is neither a duration nor a time is a usage error."""
    with pytest.raises(UsageError, match="--since"):
        run_log(config, "--since", "yesterday")


def test_works_through_main_with_torn_tail(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The installed entry point reads a log whose last line is still being written."""
    log_path = config.parent / "st" / "decisions.jsonl"
    with open(log_path, "ab") as handle:
        handle.write(b'{"event":"decision","ts":"2026-')
    assert main(["log", "-c", str(config), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 5
    assert captured.err == ""


def test_skipped_lines_warned(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Unreadable lines are counted in a warning on stderr, the rest still shown."""
    log_path = config.parent / "st" / "decisions.jsonl"
    with open(log_path, "ab") as handle:
        handle.write(b"garbage\n")
    assert main(["log", "-c", str(config), "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert "1 unreadable line(s) skipped" in captured.err
    assert len(captured.out.splitlines()) == 4


def test_handler_registered() -> None:
    """`amo-mixer log` is discovered and dispatches to the log handler."""
    args = build_parser().parse_args(["log", "-c", "x.yaml", "--format", "json"])
    assert isinstance(args, argparse.Namespace)
    assert args.handler is log_command.run
    assert args.format == "json"


def test_no_decision_log_error_type(tmp_path: Path) -> None:
    """The missing-log failure is a MixerError (exit 1), not a crash."""
    config = tmp_path / "c.yaml"
    config.write_text("qm: {url: 'http://q/qm', user: r}\ncampaigns: [S]\n")
    with pytest.raises(MixerError) as info:
        run_log(config)
    assert info.value.exit_code == 1


def test_log_event_config_shows_loads_and_refusals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`log --event config` lists start-ups and reloads with the rule-set hash and errors."""
    from mixer.audit import fingerprint, loaded_record, refused_record
    from mixer.cli import main
    from mixer.decisions import DecisionLog

    config = tmp_path / "config.yaml"
    config.write_text(
        "qm: {url: 'http://127.0.0.1:1/qm', user: r}\n"
        "campaigns: [Sales]\nrules: [rules/*.yaml]\nstate_dir: state\n"
    )
    rule = tmp_path / "rules" / "10.yaml"
    rule.parent.mkdir()
    rule.write_text("rules: []\n")
    now = datetime(2024, 4, 29, 8, 0, tzinfo=UTC)
    with DecisionLog(tmp_path / "state" / "decisions.jsonl") as log:
        loaded = loaded_record(
            now,
            config,
            fingerprint(config, [rule]),
            rule_count=0,
            campaigns=["Sales"],
            mode="apply",
        )
        log.append(loaded.to_json())
        log.append(refused_record(now, config, ["rules/20.yaml:3: bad"]).to_json())
    assert main(["log", "-c", str(config), "--event", "config", "--since", "2024-01-01"]) == 0
    out = capsys.readouterr().out
    assert f"rules {loaded.rules_hash[:12]}" in out
    assert "reload refused, the running config stays: rules/20.yaml:3: bad" in out
