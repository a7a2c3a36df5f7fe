"""`explain` knows what it explains: campaigns of the config only, and whether the rules on
disk are the ones the running daemon loaded."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mixer.audit import fingerprint, loaded_record
from mixer.cli import main
from mixer.decisions import DecisionLog
from tests.test_commands import emulator as emulator  # the fixture
from tests.test_commands import write_config


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMO_MIXER_QM_PASSWORD", "bot")
    monkeypatch.delenv("AMO_MIXER_MODE", raising=False)


def explain(config: Path, campaign: str = "Sales", *extra: str) -> list[str]:
    return ["explain", "-c", str(config), "--campaign", campaign, "--list", "Recalls Apr 24",
            *extra]  # fmt: skip


def log_config_event(tmp_path: Path, **fields: object) -> None:
    with DecisionLog(tmp_path / "state" / "decisions.jsonl") as log:
        log.append({"event": "config", "ts": "2026-04-10T08:00:00+00:00",
                    "outcome": "loaded", **fields})  # fmt: skip


def test_campaign_not_in_the_config_is_exit_2_with_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--campaign Sale` exits 2, says it is not in the config and suggests 'Sales'."""
    config = write_config(tmp_path, "http://127.0.0.1:9/qm")
    assert main(explain(config, "Sale")) == 2
    err = capsys.readouterr().err
    assert "campaign 'Sale' is not in" in err
    assert "(did you mean 'Sales'?)" in err
    assert err.count("\n") == 1


def test_rules_changed_since_the_daemon_loaded_them_is_said_on_top(
    tmp_path: Path, emulator: tuple[object, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """When the newest config event's rules_hash differs from the files, a note leads."""
    _, url = emulator
    config = write_config(tmp_path, url)
    log_config_event(tmp_path, rules_hash="0" * 64)
    assert main(explain(config)) == 0
    out = capsys.readouterr().out
    assert out.startswith("note: the rule files on disk differ from the rule set the running")
    assert main(explain(config, "Sales", "--json")) == 0
    assert json.loads(capsys.readouterr().out)["warnings"][0].startswith("the rule files")


def test_no_note_when_the_daemon_loaded_these_rules_or_nothing_is_known(
    tmp_path: Path, emulator: tuple[object, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """No config event, or one the daemon wrote for these very files: no note; after the
    file is edited on disk: the note."""
    _, url = emulator
    config = write_config(tmp_path, url)
    assert main(explain(config)) == 0
    assert not capsys.readouterr().out.startswith("note:")
    rule_file = tmp_path / "rules" / "10-test.yaml"
    started = loaded_record(
        datetime(2026, 4, 10, 8, tzinfo=UTC),
        config,
        fingerprint(config, [rule_file]),
        rule_count=1,
        campaigns=["Sales"],
        mode="dry-run",
    )
    with DecisionLog(tmp_path / "state" / "decisions.jsonl") as log:
        log.append(started.to_json())
    assert main(explain(config)) == 0
    assert not capsys.readouterr().out.startswith("note:")
    rule_file.write_text(rule_file.read_text() + "\n# edited\n", encoding="utf-8")
    assert main(explain(config)) == 0
    assert capsys.readouterr().out.startswith("note:")
