"""The rule test runner and `amo-mixer test`: pass, fail, unreadable files, output."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixer.cli import main
from mixer.ruletests import RuleTestFileError, run_test_file

ROOT = Path(__file__).resolve().parent.parent

RULES = """
rules:
  - name: pause-exhausted
    description: "Nothing left"
    when: not can_reserve and unpulled == 0
    set: {paused: true}
  - name: boost
    match: "Boost*"
    set: {weight: "base_weight * 3"}
"""

PASSING = """
rules: [rules.yaml]
settings: {timezone: Europe/Zurich}
steps:
  - at: "2024-04-29 10:00"
    lists:
      A: {weight: 10, added: 10, pulled: 10, can_reserve: false}
      Boost me: {weight: 5, added: 100}
    expect:
      A: {paused: true, rules: [pause-exhausted]}
      Boost me: {weight: 15, rules: [boost]}
  - at: "2024-04-29 10:01"
    expect:
      A: {}
      Boost me: {no_change: true}
"""


def write(tmp_path: Path, test_text: str, rules_text: str = RULES) -> Path:
    (tmp_path / "rules.yaml").write_text(rules_text, encoding="utf-8")
    path = tmp_path / "case.yaml"
    path.write_text(test_text, encoding="utf-8")
    return path


def test_passing_file_counts_steps_and_expectations(tmp_path: Path) -> None:
    """A passing file reports its steps and expectations and no failure."""
    result = run_test_file(write(tmp_path, PASSING))
    assert (result.steps, result.expectations, result.ok) == (2, 4, True)
    assert result.summary().endswith("2 steps, 4 expectations, ok")


def test_writes_carry_over_so_no_change_is_expected(tmp_path: Path) -> None:
    """After a step, lists hold what the mixer wrote; unchanged lists give no decision."""
    result = run_test_file(write(tmp_path, PASSING))
    assert result.failures == []


def test_failing_expectation_prints_expected_and_got(tmp_path: Path) -> None:
    """A wrong expectation fails with expected vs got for that step and list."""
    text = PASSING.replace("{weight: 15, rules: [boost]}", "{weight: 16, rules: [boost]}")
    result = run_test_file(write(tmp_path, text))
    assert not result.ok
    (failure,) = result.failures
    text = str(failure)
    assert text.startswith("step 1 (at 2024-04-29 10:00), list 'Boost me': expected weight 16")
    assert "got weight 5 → 15" in text


def test_expected_change_that_did_not_happen(tmp_path: Path) -> None:
    """Expecting a change when the mixer leaves the list alone is a failure."""
    text = PASSING.replace("      A: {}\n", "      A: {paused: false}\n")
    (failure,) = run_test_file(write(tmp_path, text)).failures
    assert "got no change" in failure.message


def test_human_change_is_an_override_held_by_guardrails(tmp_path: Path) -> None:
    """The real pipeline runs: a human's weight edit is adopted and held (no decision)."""
    text = PASSING + (
        '  - at: "2024-04-29 10:02"\n'
        "    lists:\n"
        "      Boost me: {weight: 8}\n"
        "    expect:\n"
        "      Boost me: {}\n"
        '  - at: "2024-04-29 11:03"\n'
        "    expect:\n"
        "      Boost me: {weight: 24, rules: [boost]}\n"
    )
    result = run_test_file(write(tmp_path, text))
    assert result.failures == []


def test_facts_and_history_rates_from_earlier_steps(tmp_path: Path) -> None:
    """Each step's counters are a history sample, so rates appear after min_history."""
    text = """
rules: [rules.yaml]
steps:
  - at: "2024-04-29 10:00"
    lists: {A: {weight: 10, added: 100, pulled: 0}}
    expect: {A: {facts: {pull_rate_per_hour: null}}}
  - at: "2024-04-29 10:30"
    lists: {A: {pulled: 20}}
    expect: {A: {facts: {pull_rate_per_hour: 40, unpulled: 80}}}
"""
    result = run_test_file(write(tmp_path, text))
    assert (result.failures, result.expectations) == ([], 2)


def test_wrong_fact_fails(tmp_path: Path) -> None:
    """A fact expectation that does not hold is reported with both values."""
    text = PASSING.replace("      A: {}\n", "      A: {facts: {unpulled: 3}}\n")
    (failure,) = run_test_file(write(tmp_path, text)).failures
    assert "unpulled: expected 3, got 0" in failure.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [rules.yaml]\nsteps: [\n", "invalid YAML"),
        ("rules: [rules.yaml]\nstepz: []\n", "not a valid test file"),
        ("rules: [missing.yaml]\nsteps: []\n", "rules: 'missing.yaml' is not a file"),
        (
            "rules: [rules.yaml]\nsettings: {timezone: Mars/Base}\nsteps: []\n",
            "not a time zone",
        ),
        (
            "rules: [rules.yaml]\nsteps:\n  - at: soon\n",
            "is not 'YYYY-MM-DD HH:MM'",
        ),
        (
            "rules: [rules.yaml]\nsteps:\n  - at: '2024-04-29 10:00'\n    lists: {A: {pulld: 3}}\n",
            "unknown field 'pulld' (did you mean 'pulled'?)",
        ),
    ],
)
def test_unreadable_files_raise(tmp_path: Path, text: str, message: str) -> None:
    """Files that cannot be run raise RuleTestFileError (exit code 2) with a clear line."""
    with pytest.raises(RuleTestFileError) as caught:
        run_test_file(write(tmp_path, text))
    assert message in caught.value.message + " ".join(caught.value.problems)
    assert caught.value.exit_code == 2


def test_command_exit_codes_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """amo-mixer test exits 0 when all pass, 1 on a failure, 2 on an unreadable file."""
    good = write(tmp_path, PASSING)
    assert main(["test", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: 2 steps, 4 expectations, ok\n"

    bad = tmp_path / "bad.yaml"
    bad.write_text(PASSING.replace("weight: 15,", "weight: 16,"), encoding="utf-8")
    assert main(["test", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}: 2 steps, 4 expectations, FAILED (1 failed)" in out
    assert "  step 1 (at 2024-04-29 10:00), list 'Boost me'" in out

    broken = tmp_path / "broken.yaml"
    broken.write_text("steps: [", encoding="utf-8")
    assert main(["test", str(bad), str(broken)]) == 2
    assert "error:" in capsys.readouterr().out


def test_shipped_rule_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    """Every file in rules/tests passes, as CI runs it."""
    files = sorted(str(p) for p in (ROOT / "rules" / "tests").glob("*.yaml"))
    assert len(files) >= 4
    assert main(["test", *files]) == 0
    assert capsys.readouterr().out.count(", ok\n") == len(files)


def test_guardrails_take_the_configs_keys_and_percent_step(tmp_path: Path) -> None:
    """settings.guardrails reads as the config's: max_step '20%' moves 5 to 6, then 6 to 8."""
    text = PASSING.replace(
        "settings: {timezone: Europe/Zurich}",
        "settings: {timezone: Europe/Zurich, guardrails: {max_step: '20%'}}",
    ).replace("Boost me: {weight: 15, rules: [boost]}", "Boost me: {weight: 6, rules: [boost]}")
    result = run_test_file(write(tmp_path, text))
    (failure,) = result.failures
    assert (failure.step, failure.list) == (2, "Boost me")
    assert "got weight 6 → 8" in failure.message


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("guardrails: {min_weight: 50, max_weight: 10}", "is lower than min_weight (50)"),
        ("guardrails: {max_step: 'a lot'}", "guardrails.max_step: expected a number"),
        ("history: {window: 10m, min_history: 1h}", "is longer than history.window"),
    ],
)
def test_settings_the_config_refuses_are_refused(
    tmp_path: Path, settings: str, message: str
) -> None:
    """A test's guardrails and history are checked as the config checks them."""
    text = PASSING.replace(
        "settings: {timezone: Europe/Zurich}", f"settings: {{timezone: Europe/Zurich, {settings}}}"
    )
    with pytest.raises(RuleTestFileError) as caught:
        run_test_file(write(tmp_path, text))
    assert message in " ".join(caught.value.problems)
