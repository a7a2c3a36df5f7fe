"""Messages an operator meets, through the command: what went wrong, where, what to do."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from mixer.cli import main
from tests.test_commands import emulator as emulator  # the fixture
from tests.test_commands import write_config
from tests.test_emulator_e2e import amo_mixer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMO_MIXER_QM_PASSWORD", "bot")
    monkeypatch.delenv("AMO_MIXER_MODE", raising=False)


def check_output(tmp_path: Path, rules: str, capsys: pytest.CaptureFixture[str]) -> str:
    config = write_config(tmp_path, "http://127.0.0.1:9/qm", rules=rules)
    assert main(["check", "-c", str(config)]) == 1
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_arrow_slip_says_to_write_ge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`hour => 9` is answered with "write '>='", not with the '==' advice."""
    out = check_output(
        tmp_path, "rules:\n  - name: a\n    when: hour => 9\n    set: {weight: 5}\n", capsys
    )
    assert "10-test.yaml:3: rule 'a': when: syntax error: write '>='" in out
    assert "'=='" not in out


def test_duration_with_a_unit_points_to_the_duration_function(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`hours_to_deadline < 2 days` says to write days(2) and names the docs."""
    rules = "rules:\n  - name: b\n    when: hours_to_deadline < 2 days\n    set: {weight: 5}\n"
    out = check_output(tmp_path, rules, capsys)
    assert "write days(2) for a duration" in out
    assert "docs/expressions.md" in out
    assert "invalid syntax" not in out


def test_rule_without_name_says_what_to_add(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rule without `name` gets a complete sentence with an example, not a cut-off ' in '."""
    out = check_output(tmp_path, "rules:\n  - when: hour > 3\n    set: {weight: 5}\n", capsys)
    line = next(x for x in out.splitlines() if "missing required key 'name'" in x)
    assert line.endswith("give the rule a unique name, e.g. 'name: pause-exhausted'")


def test_bad_yaml_indentation_has_line_column_and_plain_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mis-indented key gives file:line:column and says the indentation is off."""
    rules = (
        "rules:\n  - name: x\n    when: hour > 9\n    set:\n      weight: 5\n     paused: true\n"
    )
    out = check_output(tmp_path, rules, capsys)
    assert "10-test.yaml:6: invalid YAML at column 6: this line is indented differently" in out


def test_scenario_typo_names_line_and_the_key_meant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`wieght` in a scenario gives its line and "did you mean 'weight'", as rules do."""
    text = (ROOT / "mixer/emulator/scenarios/default.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    number = next(i for i, x in enumerate(lines) if x.strip() == "weight: 10")
    lines[number] = lines[number].replace("weight", "wieght")
    path = tmp_path / "typo.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    assert main(["emulator", "--scenario", str(path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert f"typo.yaml:{number + 1}: at 'campaigns.Sales.lists[0].wieght'" in err
    assert "did you mean 'weight'?" in err
    assert err.count("\n") == 1


def test_unreachable_qm_prints_no_raw_retry_events(tmp_path: Path) -> None:
    """`once` against a closed port: no stamina JSON lines, only the one-line error."""
    config = write_config(tmp_path, "http://127.0.0.1:9/qm")
    result = subprocess.run(
        [*amo_mixer(), "once", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "stamina" not in result.stderr
    assert "retry" not in result.stderr
    lines = result.stderr.splitlines()
    assert len([x for x in lines if x.startswith("amo-mixer: campaign 'Sales'")]) == 1
    assert all(x.startswith("amo-mixer: ") for x in lines)  # no raw event lines
    assert "no changes" not in result.stdout
    assert "Sales: error (see stderr)" in result.stdout


def test_log_event_cycle_shows_outcome_columns(
    tmp_path: Path, emulator: tuple[object, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`log --event cycle` shows mode, outcome, lists read and changes per campaign."""
    _, url = emulator
    config = write_config(tmp_path, url)
    assert main(["once", "-c", str(config), "--apply"]) == 0
    capsys.readouterr()
    assert main(["log", "-c", str(config), "--event", "cycle"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[2:7] == ["campaign", "mode", "outcome", "lists", "changes"]
    assert row.split()[2:7] == ["Sales", "apply", "ok", "5", "1"]


def test_emulator_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    """`emulator --help` states the default port, scenario, start and speed."""
    with pytest.raises(SystemExit):
        main(["emulator", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for default in ("(default: 8080)", "(default: default)", "(default: now)", "(default: 1.0)"):
        assert default in out


def test_emulator_banner_names_a_campaign_of_the_scenario() -> None:
    """The banner's curl line names the chosen scenario's campaign, not always "Sales"."""
    with subprocess.Popen(
        [*amo_mixer(), "emulator", "--port", "0", "--scenario", "deadline-crunch"],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            process.stdout.readline()
            curl = process.stdout.readline()
        finally:
            process.kill()
            process.wait(timeout=5)
    campaigns = yaml.safe_load(
        (ROOT / "mixer/emulator/scenarios/deadline-crunch.yaml").read_text(encoding="utf-8")
    )["campaigns"]
    assert json.dumps({"amoCampaignName": next(iter(campaigns))}) in curl
    assert '"Sales"' not in curl


def test_docs_say_what_once_does_and_where_scenarios_are_described() -> None:
    """README does not call `once` a dry-run cycle; backtests.md points to scenarios.md."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "one dry-run cycle" not in readme
    backtests = (ROOT / "docs/backtests.md").read_text(encoding="utf-8")
    assert "[scenarios.md](scenarios.md) for the format" in backtests


def test_scenario_schema_counts_max_attempts_as_calls(capsys: pytest.CaptureFixture[str]) -> None:
    """The schema says max_attempts counts calls (reschedules are one fewer), as the dialer."""
    assert main(["schema", "scenario"]) == 0
    schema = json.loads(capsys.readouterr().out)
    text = schema["properties"]["max_attempts"]["description"]
    assert "max_attempts - 1" in text


def test_rule_test_file_globs_line_numbers_and_did_you_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rules:` globs load every match; a typo names file:line and the key meant."""
    (tmp_path / "rules").mkdir()
    for name in ("10-office-hours.yaml", "20-exhausted.yaml"):
        (tmp_path / "rules" / name).write_text(
            (ROOT / "rules" / name).read_text(encoding="utf-8"), encoding="utf-8"
        )
    tests = tmp_path / "rules" / "tests"
    tests.mkdir()
    good = tests / "good.yaml"
    good.write_text(
        textwrap.dedent(
            """\
            rules: ["../*.yaml"]
            settings: {timezone: Europe/Zurich}
            steps:
              - at: "2024-04-29 08:30"
                lists:
                  B2B Leads: {weight: 5, added: 400}
                expect:
                  B2B Leads: {paused: true, rules: [b2b-office-hours]}
            """
        ),
        encoding="utf-8",
    )
    assert main(["test", str(good)]) == 0
    bad = tests / "bad.yaml"
    bad.write_text(good.read_text().replace("{paused: true,", "{pasued: true,"), encoding="utf-8")
    assert main(["test", str(bad)]) == 2
    none = tests / "none.yaml"
    none.write_text(good.read_text().replace("../*.yaml", "../nope-*.yaml"), encoding="utf-8")
    assert main(["test", str(none)]) == 2
    out = capsys.readouterr().out
    assert f"{bad}:8: steps[0].expect.B2B Leads.pasued: unknown key (did you mean 'paused'?)" in out
    assert f"{none}:1: rules: '../nope-*.yaml' matches no file" in out


def test_config_yaml_error_has_line_column_and_plain_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mis-indented config key gets line, column and the indentation hint."""
    config = tmp_path / "config.yaml"
    config.write_text("qm:\n  url: http://127.0.0.1:9/qm\n user: robot\n", encoding="utf-8")
    assert main(["check", "-c", str(config)]) == 2
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "At line 3, column 2: YAML syntax error:" in out
    assert "indented differently" in out
