"""A decision's reason carries only the rules whose effect it keeps; rules a later rule
overrode are shown apart ("overridden: …") in once, log, explain and report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixer.cli import main
from tests.test_commands import emulator as emulator  # the fixture
from tests.test_commands import write_config

RULES = """
rules:
  - name: boost-recalls
    description: "Recalls first."
    match: "Recalls*"
    when: unpulled > 0
    set: {weight: 40}
  - name: cap-recalls
    description: "Capped at 25."
    match: "Recalls*"
    when: unpulled > 0
    set: {weight: 25}
"""


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMO_MIXER_QM_PASSWORD", "bot")
    monkeypatch.delenv("AMO_MIXER_MODE", raising=False)


@pytest.fixture
def config(tmp_path: Path, emulator: tuple[object, str]) -> Path:
    _, url = emulator
    return write_config(tmp_path, url, rules=RULES)


def test_once_names_the_carried_rule_and_the_overridden_one(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`once` shows cap-recalls with "(overridden: boost-recalls)" and only its reason."""
    assert main(["once", "-c", str(config)]) == 0
    row = next(x for x in capsys.readouterr().out.splitlines() if "Recalls Apr 24" in x)
    assert "cap-recalls (overridden: boost-recalls)" in row
    assert row.endswith("Capped at 25.")
    assert main(["once", "-c", str(config), "--json"]) == 0
    (change,) = json.loads(capsys.readouterr().out)["campaigns"]["Sales"]["changes"]
    assert (change["rules"], change["overridden"]) == (["cap-recalls"], ["boost-recalls"])
    assert change["reason"] == "Capped at 25."


def test_log_and_report_keep_overridden_apart(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The decision log record, the log table and the report data list the overridden rule."""
    assert main(["once", "-c", str(config), "--apply"]) == 0
    capsys.readouterr()
    assert main(["log", "-c", str(config), "--format", "json", "--event", "decision"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["rules"], record["overridden"]) == (["cap-recalls"], ["boost-recalls"])
    assert main(["log", "-c", str(config)]) == 0
    assert "cap-recalls (overridden: boost-recalls)" in capsys.readouterr().out
    page = tmp_path / "r.html"
    assert main(["report", "-c", str(config), "-o", str(page)]) == 0
    assert '"overridden":["boost-recalls"]' in page.read_text(encoding="utf-8")


def test_explain_marks_the_overridden_rule(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`explain` says which fired rule was overridden and lists it under the reason."""
    args = ["explain", "-c", str(config), "--campaign", "Sales", "--list", "Recalls Apr 24"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Overridden: a later rule set the same again." in out
    assert "reason:     Capped at 25.\noverridden: boost-recalls" in out


def test_resume_reason_names_the_rule_that_stopped_applying(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The shipped rules' resume at 9:00 says b2b-office-hours no longer applies."""
    path = Path(__file__).resolve().parent.parent / "rules/tests/office-hours-resume.yaml"
    assert main(["test", str(path)]) == 0
    assert "ok" in capsys.readouterr().out
