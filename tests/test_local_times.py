"""Times shown to people are in qm.timezone unless --tz says otherwise; the log stays UTC."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mixer.cli import main
from mixer.decisions import DecisionLog
from tests.test_commands import emulator as emulator  # the fixture
from tests.test_commands import write_config

# 10:00 UTC on 10 April 2026 is 12:00 in Zurich (summer time, +02:00).
TS = "2026-04-10T10:00:00+00:00"
REPLY = {
    "amoCampaignName": "Sales",
    "lists": [
        {
            "listName": "Recalls May",
            "listNotes": "",
            "weight": "7",
            "listState": "open",
            "dialerState": "open",
            "dialerCanReserve": "open",
            "nNumbersAdded": 10,
            "nNumbersCompleted": 1,
            "nNumbersPulled": 2,
            "lastPull": "",
        }
    ],
}


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMO_MIXER_QM_PASSWORD", "bot")
    monkeypatch.delenv("AMO_MIXER_MODE", raising=False)


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    """A Zurich config whose decision log holds one cycle and one decision at TS."""
    config = write_config(tmp_path, "http://127.0.0.1:9/qm")
    with DecisionLog(tmp_path / "state" / "decisions.jsonl") as log:
        log.append(
            {"event": "cycle", "ts": TS, "cycle_id": "c1", "campaign": "Sales",
             "mode": "dry-run", "lists_seen": 1, "changes": 1, "applied": False,
             "outcome": "ok", "error": None, "duration_ms": 3.0, "lists": {}}
        )  # fmt: skip
        log.append(
            {"event": "decision", "ts": TS, "cycle_id": "c1", "campaign": "Sales",
             "list": "Recalls May", "mode": "dry-run", "before": {"weight": 7, "paused": False},
             "after": {"weight": 14, "paused": False}, "rules": ["boost-recalls"],
             "reason": "Recalls first.", "facts": {}, "applied": False}
        )  # fmt: skip
    return config


def test_log_table_is_in_the_qm_zone_unless_tz(
    logged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`log` heads its time column with qm.timezone and shows 12:00; --tz UTC shows 10:00."""
    assert main(["log", "-c", str(logged)]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.startswith("time (Europe/Zurich)")
    assert row.startswith("2026-04-10 12:00:00")
    assert main(["log", "-c", str(logged), "--tz", "UTC"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.startswith("time (UTC)")
    assert row.startswith("2026-04-10 10:00:00")


def test_since_without_offset_is_read_in_the_zone(
    logged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--since 2026-04-10T11:30` means 11:30 Zurich (09:30 UTC): the 10:00 UTC row shows."""
    assert main(["log", "-c", str(logged), "--since", "2026-04-10T11:30"]) == 0
    assert "Recalls May" in capsys.readouterr().out
    assert main(["log", "-c", str(logged), "--since", "2026-04-10T12:30"]) == 0
    assert "Recalls May" not in capsys.readouterr().out
    assert main(["log", "-c", str(logged), "--since", "2026-04-10T11:30", "--tz", "UTC"]) == 0
    assert "Recalls May" not in capsys.readouterr().out


def test_json_lines_stay_utc_and_csv_carries_the_offset(
    logged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--format json` keeps the stored UTC ts; CSV gives the local time with its offset."""
    assert main(["log", "-c", str(logged), "--format", "json", "--event", "decision"]) == 0
    assert json.loads(capsys.readouterr().out)["ts"] == TS
    assert main(["log", "-c", str(logged), "--format", "csv"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert row.startswith("2026-04-10T12:00:00+02:00,Sales,Recalls May")


def test_report_states_its_zone(logged: Path, tmp_path: Path) -> None:
    """The report header says which zone its times are in, and draws them in it."""
    page = tmp_path / "r.html"
    assert main(["report", "-c", str(logged), "-o", str(page), "--since", "3000d"]) == 0
    text = page.read_text(encoding="utf-8")
    assert "all times Europe/Zurich" in text
    assert "all times UTC" not in text
    assert main(["report", "-c", str(logged), "-o", str(page), "--tz", "UTC"]) == 0
    assert "all times UTC" in page.read_text(encoding="utf-8")


def test_explain_header_and_naive_at_use_the_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`explain --at 2024-05-02T10:00` is 10:00 Zurich, shown as such in the header."""
    saved = tmp_path / "reply.json"
    saved.write_text(json.dumps(REPLY), encoding="utf-8")
    config = write_config(tmp_path, "http://127.0.0.1:9/qm")
    args = ["explain", "-c", str(config), "--campaign", "Sales", "--list", "Recalls May",
            "--snapshot", str(saved), "--at", "2024-05-02T10:00"]  # fmt: skip
    assert main(args) == 0
    assert capsys.readouterr().out.startswith(
        "Sales / Recalls May at 2024-05-02 10:00:00 Europe/Zurich"
    )
    assert main([*args, "--tz", "UTC"]) == 0
    assert capsys.readouterr().out.startswith("Sales / Recalls May at 2024-05-02 10:00:00 UTC")


def test_once_header_shows_the_cycle_time_in_the_zone(
    tmp_path: Path, emulator: tuple[object, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`once` names the zone of its cycle time; --tz changes it."""
    _, url = emulator
    config = write_config(tmp_path, url)
    assert main(["once", "-c", str(config)]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(" Europe/Zurich")
    assert main(["once", "-c", str(config), "--tz", "UTC"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(" UTC")


def test_unknown_tz_is_a_usage_error_with_did_you_mean(
    logged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--tz Europe/Zurik` exits 2 suggesting Europe/Zurich."""
    assert main(["log", "-c", str(logged), "--tz", "Europe/Zurik"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'Europe/Zurich'?" in err
    assert err.count("\n") == 1


def test_manual_hold_end_is_shown_in_the_qm_zone(
    tmp_path: Path, emulator: tuple[Any, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """After a human change, `explain` names the hold's end in qm.timezone, not in UTC."""
    app, url = emulator
    config = write_config(tmp_path, url)
    assert main(["once", "-c", str(config), "--apply"]) == 0
    found = app.state.find_list("Sales", "Recalls Apr 24")
    found.weight = 33  # a person changes the weight in QM
    app.state.on_change()
    assert main(["once", "-c", str(config), "--apply"]) == 0
    capsys.readouterr()
    args = ["explain", "-c", str(config), "--campaign", "Sales", "--list", "Recalls Apr 24"]
    assert main(args) == 0
    guardrails = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("guardrails"))
    assert guardrails.startswith("guardrails: manual hold until ")
    assert guardrails.endswith(" Europe/Zurich")
