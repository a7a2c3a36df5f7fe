"""once, check, explain and schema as an operator runs them, against a loopback emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mixer.cli import main
from mixer.emulator.app import EmulatorApp, create_app
from mixer.emulator.server import serve
from mixer.lock import StateLock

BOOST_RULES = """
rules:
  - name: boost-recalls
    description: "Recalls first."
    match: "Recalls*"
    when: unpulled > 0
    set: {weight: "base_weight * 2"}
"""


@pytest.fixture
def emulator() -> Iterator[tuple[EmulatorApp, str]]:
    app = create_app("default", dialer=False)
    with serve(app, host="127.0.0.1", port=0) as base_url:
        yield app, base_url


def write_config(tmp_path: Path, url: str, rules: str = BOOST_RULES, **extra: object) -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "10-test.yaml").write_text(textwrap.dedent(rules), encoding="utf-8")
    config: dict[str, object] = {
        "qm": {"url": url, "user": "robot", "timezone": "Europe/Zurich", "timeout": "3s"},
        "campaigns": ["Sales"],
        "rules": ["rules/*.yaml"],
        "state_dir": "state",
    }
    config.update(extra)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMO_MIXER_QM_PASSWORD", "bot")
    monkeypatch.delenv("AMO_MIXER_MODE", raising=False)


def test_once_dry_run_prints_the_plan_and_writes_nothing(
    tmp_path: Path, emulator: tuple[EmulatorApp, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`once` shows campaign, list, weight before→after and the rule; dry-run writes nothing."""
    app, url = emulator
    config = write_config(tmp_path, url)
    assert main(["once", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "Recalls Apr 24" in out
    assert "10→20" in out
    assert "boost-recalls" in out
    assert "dry-run: nothing was written" in out
    assert app.stats.update_calls == 0


def test_once_apply_json_writes_and_reports(
    tmp_path: Path, emulator: tuple[EmulatorApp, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`once --apply --json` writes the change and prints a machine-readable plan."""
    app, url = emulator
    config = write_config(tmp_path, url)
    assert main(["once", "-c", str(config), "--apply", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    sales = document["campaigns"]["Sales"]
    assert document["mode"] == "apply"
    assert sales["outcome"] == "ok"
    assert sales["applied"] is True
    assert sales["changes"][0]["weight"] == [10, 20]
    found = app.state.find_list("Sales", "Recalls Apr 24")
    assert found is not None
    assert found.weight == 20


def test_once_apply_refuses_a_state_dir_held_by_a_daemon(
    tmp_path: Path, emulator: tuple[EmulatorApp, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`once --apply` on a running daemon's state directory exits 1 naming the lock."""
    _, url = emulator
    config = write_config(tmp_path, url)
    with StateLock(tmp_path / "state"):
        code = subprocess.run(
            [sys.executable, "-m", "mixer", "once", "-c", str(config), "--apply"],
            capture_output=True,
            text=True,
            env={**os.environ},
            check=False,
        )
    assert code.returncode == 1
    assert "amo-mixer.lock" in code.stderr
    assert "Traceback" not in code.stderr


def test_once_unreachable_qm_is_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unreachable QM gives exit 1 and one stderr line naming the campaign and host."""
    config = write_config(tmp_path, "http://127.0.0.1:9/qm")
    assert main(["once", "-c", str(config)]) == 1
    captured = capsys.readouterr()
    assert "Sales: error (see stderr)" in captured.out
    (line,) = [x for x in captured.err.splitlines() if x.startswith("amo-mixer: campaign")]
    assert line.startswith("amo-mixer: campaign 'Sales': QM at 127.0.0.1:9 ")
    assert "Traceback" not in captured.err


def test_check_ok_and_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`check` validates offline and says how many rules apply to each campaign."""
    config = write_config(tmp_path, "http://127.0.0.1:9/qm")
    assert main(["check", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "campaign 'Sales': 1 rule(s)" in out
    assert "rules ok: 1 file(s)" in out


def test_check_reports_rule_errors_with_file_line_and_caret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo in a rule is reported as file:line: rule 'name': message, with a caret."""
    broken = BOOST_RULES.replace("unpulled > 0", "unpuled > 0")
    config = write_config(tmp_path, "http://127.0.0.1:9/qm", rules=broken)
    assert main(["check", "-c", str(config)]) == 1
    out = capsys.readouterr().out
    assert "10-test.yaml:6: rule 'boost-recalls'" in out
    assert "unpulled" in out, "did-you-mean suggestion"
    assert "^" in out


def test_check_invalid_config_exits_2_with_key_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Invalid config exits 2 listing every problem by key path."""
    config = write_config(tmp_path, "http://127.0.0.1:9/qm", mode="sometimes", interval="soon")
    assert main(["check", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "mode" in err
    assert "interval" in err


def test_explain_live_traces_every_rule(
    tmp_path: Path, emulator: tuple[EmulatorApp, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`explain` lists each rule with the facts it read and the final result."""
    _, url = emulator
    config = write_config(tmp_path, url)
    code = main(["explain", "-c", str(config), "--campaign", "Sales", "--list", "Recalls Apr 24"])
    assert code == 0
    out = capsys.readouterr().out
    assert "[FIRED] boost-recalls" in out
    assert "unpulled=" in out
    assert "result:     weight 20, paused no" in out


def test_explain_from_saved_snapshot_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`explain --snapshot` works offline from a saved reply, and --json is parseable."""
    reply = {
        "amoCampaignName": "Sales",
        "lists": [
            {
                "listName": "Recalls May",
                "listNotes": "",
                "weight": "7",
                "listState": "OPEN",
                "dialerState": "open",
                "dialerCanReserve": "open",
                "nNumbersAdded": 10,
                "nNumbersCompleted": 1,
                "nNumbersPulled": 2,
                "lastPull": "",
            }
        ],
    }
    saved = tmp_path / "reply.json"
    saved.write_text(json.dumps(reply), encoding="utf-8")
    config = write_config(tmp_path, "http://127.0.0.1:9/qm")
    code = main(
        [
            "explain",
            "-c",
            str(config),
            "--campaign",
            "Sales",
            "--list",
            "Recalls May",
            "--snapshot",
            str(saved),
            "--at",
            "2024-05-02T10:00:00+02:00",
            "--json",
        ]
    )
    assert code == 0
    trace = json.loads(capsys.readouterr().out)
    assert trace["after_guardrails"] == {"weight": 14, "paused": False}
    assert trace["facts"]["idle_minutes"] is None
    assert [r["rule"] for r in trace["rules"]] == ["boost-recalls"]


def test_explain_unknown_list_is_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Asking about a list QM does not have exits 2 and lists what exists."""
    saved = tmp_path / "reply.json"
    saved.write_text(
        json.dumps(
            [
                {
                    "listName": "A",
                    "weight": 1,
                    "listState": "open",
                    "dialerState": "open",
                    "dialerCanReserve": "open",
                    "nNumbersAdded": 0,
                    "nNumbersCompleted": 0,
                    "nNumbersPulled": 0,
                }
            ]
        ),
        encoding="utf-8",
    )
    config = write_config(tmp_path, "http://127.0.0.1:9/qm")
    code = main(
        [
            "explain",
            "-c",
            str(config),
            "--campaign",
            "Sales",
            "--list",
            "B",
            "--snapshot",
            str(saved),
        ]
    )
    assert code == 2
    assert "lists: A" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["config", "rules", "scenario"])
def test_schema_kinds_are_json_schemas(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`schema KIND` prints a JSON Schema object with properties."""
    assert main(["schema", kind]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["type"] == "object"
    assert schema["properties"]


def test_schema_output_dir_writes_three_files(tmp_path: Path) -> None:
    """`schema --output-dir` writes one file per kind, for editor settings."""
    assert main(["schema", "--output-dir", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["config.schema.json", "rules.schema.json", "scenario.schema.json"]
    rules = json.loads((tmp_path / "rules.schema.json").read_text())
    assert "rules" in rules["properties"]
