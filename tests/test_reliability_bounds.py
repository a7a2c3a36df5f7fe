"""Issue 12 item 10: work per cycle and per file stays bounded — over-wide format specs are
refused by `check` and capped at run time, and YAML aliases (the "billion laughs") are
refused in every operator file before anything is expanded."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mixer.config import load_settings
from mixer.emulator.scenario import load_scenario
from mixer.engine.format_specs import MAX_RENDERED_CHARS
from mixer.engine.trace import reason_sentence
from mixer.errors import ConfigError
from mixer.rule_loading import load_rules
from mixer.rulefile import RuleLoadError
from mixer.ruletests import RuleTestFileError, run_test_file

WIDE_RULE = """
rules:
  - name: idle
    description: "{spec}"
    when: unpulled > 0
    set: {{paused: true}}
"""


def alias_bomb(levels: int = 9) -> str:
    """The classic ~330-byte bomb: each level repeats the previous one nine times."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for code in range(ord("b"), ord("b") + levels - 1):
        name = chr(code)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "spec", ["{list:>100000000}", "{unpulled:.100000f}", "{list:x^101}", "{unpulled:999999,d}"]
)
def test_check_refuses_an_over_wide_format_spec(tmp_path: Path, spec: str) -> None:
    """A width or precision above 100 is a rule problem naming the placeholder."""
    path = tmp_path / "10-wide.yaml"
    path.write_text(WIDE_RULE.format(spec=spec), encoding="utf-8")
    with pytest.raises(RuleLoadError) as caught:
        load_rules([path])
    (problem,) = caught.value.problems
    assert problem.line == 4
    assert f"the format spec '{spec}' asks for more than 100 characters" in problem.message


def test_reasonable_format_specs_still_load(tmp_path: Path) -> None:
    """Widths and precisions up to 100 are fine."""
    path = tmp_path / "10-ok.yaml"
    path.write_text(WIDE_RULE.format(spec="{list:>20} {unpulled:.1f} {list:100}"), "utf-8")
    assert load_rules([path]).files


def test_render_caps_a_wide_spec_and_the_sentence_at_run_time(tmp_path: Path) -> None:
    """A rule compiled around the check (or a huge fact value) still renders a bounded
    sentence: an over-wide spec shows the bare value, the whole is cut at the cap."""
    path = tmp_path / "10-ok.yaml"
    path.write_text(WIDE_RULE.format(spec="Idle {list:>20}"), "utf-8")
    (rule,) = load_rules([path]).files[0].rules
    wide = dataclasses.replace(rule, description="Idle {list:>100000000}")
    assert reason_sentence([wide], {"list": "Recalls"}) == "Idle Recalls."
    sentence = reason_sentence([rule], {"list": "x" * 1_000_000})
    assert len(sentence) <= MAX_RENDERED_CHARS + 1


def test_an_alias_bomb_in_a_rule_file_is_one_located_problem(tmp_path: Path) -> None:
    """The rule loader stops at the first alias with file:line, nothing expanded."""
    path = tmp_path / "10-bomb.yaml"
    path.write_text(alias_bomb(), encoding="utf-8")
    assert len(path.read_bytes()) < 400
    with pytest.raises(RuleLoadError) as caught:
        load_rules([path])
    (problem,) = caught.value.problems
    assert problem.line == 2
    assert "YAML aliases (*a) are not allowed" in problem.message


def test_an_alias_in_the_config_is_refused(tmp_path: Path) -> None:
    """The config loader refuses aliases with line and column."""
    config = tmp_path / "config.yaml"
    config.write_text(
        'qm: &q {url: "http://127.0.0.1:9/qm", user: robot, timezone: UTC}\n'
        "campaigns: [Sales]\nrules: []\nstate_dir: state\nextra: *q\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={"AMO_MIXER_QM_PASSWORD": "x"})
    assert "line 5, column 8: YAML syntax error: YAML aliases (*q) are not allowed" in str(
        caught.value.problems
    )


def test_an_alias_bomb_in_a_rule_test_file_is_refused(tmp_path: Path) -> None:
    """`amo-mixer test` refuses an aliased test file in one line naming file and line."""
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(), encoding="utf-8")
    with pytest.raises(RuleTestFileError, match=r"bomb\.yaml:2:8: invalid YAML: YAML aliases"):
        run_test_file(path)


def test_an_alias_bomb_in_a_scenario_is_refused(tmp_path: Path) -> None:
    """The emulator's scenario loader refuses aliases in one line."""
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    assert "bomb.yaml:2:8: scenario is not valid YAML: YAML aliases (*a)" in caught.value.message
    assert "\n" not in caught.value.message
