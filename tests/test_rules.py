"""Rule files: loading, every class of error collected with lines and carets, metadata."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mixer.commands.schema import rules_schema_with_facts
from mixer.engine.facts import FACT_TYPES
from mixer.opsfiles.problems import Problem
from mixer.rule_loading import load_rules
from mixer.rulefile import RuleLoadError, rules_json_schema

SHIPPED = sorted((Path(__file__).resolve().parent.parent / "rules").glob("*.yaml"))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(*paths: Path) -> list[Problem]:
    with pytest.raises(RuleLoadError) as caught:
        load_rules(list(paths))
    return caught.value.problems


def test_shipped_rules_load() -> None:
    """The rules in rules/ load without problems."""
    ruleset = load_rules(SHIPPED)
    assert len(ruleset.for_campaign("Sales").rules) >= 5


def test_valid_file_compiles_rules_in_order(tmp_path: Path) -> None:
    """Rules keep file order, with durations, match and set parsed."""
    path = write(
        tmp_path,
        "a.yaml",
        """
rules:
  - name: first
    match: {names: ["B2B*"], tags: [vip]}
    when: unpulled > 0
    for: 1h30m
    cooldown: 30s
    set: {weight: "base_weight * 2", paused: false}
    stop: true
  - name: second
    match: ["X*", "Y*"]
    set: {weight: 7}
""",
    )
    rules = load_rules([path]).for_campaign("Any").rules
    assert [r.name for r in rules] == ["first", "second"]
    first, second = rules
    assert first.for_ == timedelta(hours=1, minutes=30)
    assert first.cooldown == timedelta(seconds=30)
    assert (first.names, first.tags, first.stop, first.line) == (("B2B*",), ("vip",), True, 3)
    assert (second.weight, second.names) == (7.0, ("X*", "Y*"))
    assert (second.when, second.when_source) == (None, "true")


def test_name_match_is_remembered_per_name_and_stays_bounded(tmp_path: Path) -> None:
    """Asked again and again, a rule answers as its globs say; its memory of names is capped."""
    from mixer.engine.rules import _NAME_HITS_KEPT

    path = write(
        tmp_path, "a.yaml", "rules:\n  - {name: r, match: ['X*', '*-b2b'], set: {weight: 7}}\n"
    )
    (rule,) = load_rules([path]).for_campaign("Any").rules
    names = [
        f"{'X' if i % 3 == 0 else 'Y'}{i}{'-b2b' if i % 5 == 0 else ''}" for i in range(12_000)
    ]
    for _ in range(2):
        got = [rule.matches(name, ()) for name in names]
        assert got == [n.startswith("X") or n.endswith("-b2b") for n in names]
        assert len(rule._name_hits) <= _NAME_HITS_KEPT
    assert rule.matches("x1", ()) is False  # globs are case-sensitive, cached or not


def test_files_apply_in_sorted_order_and_campaign_globs(tmp_path: Path) -> None:
    """Files apply in sorted path order; `campaigns` limits a file to matching campaigns."""
    b = write(
        tmp_path, "20-b.yaml", "campaigns: ['Sales*']\nrules: [{name: b, set: {weight: 1}}]\n"
    )
    a = write(tmp_path, "10-a.yaml", "rules: [{name: a, set: {weight: 2}}]\n")
    ruleset = load_rules([b, a])
    assert [r.name for r in ruleset.for_campaign("Sales EU").rules] == ["a", "b"]
    assert [r.name for r in ruleset.for_campaign("Support").rules] == ["a"]


@pytest.mark.parametrize(
    ("text", "line", "rule", "message"),
    [
        (
            "rules:\n  - name: r\n    whn: unpulled > 0\n    set: {paused: true}\n",
            3,
            "r",
            "unknown key 'whn' (did you mean 'when'?)",
        ),
        (
            "rules:\n  - name: r\n    set: {paused: true, wieght: 3}\n",
            3,
            "r",
            "unknown key 'wieght' (did you mean 'weight'?)",
        ),
        ("rulez: []\n", 1, None, "unknown key 'rulez' (did you mean 'rules'?)"),
        ("rules:\n  - name: r\n    set: {}\n", 3, "r", "set: give weight and/or paused"),
        ("rules:\n  - name: r\n    set: {weight: true}\n", 3, "r", "weight must be a number"),
        ("rules:\n  - name: r\n    set: {weight: [1]}\n", 3, "r", "weight must be a number"),
        (
            "rules:\n  - name: r\n    for: 15x\n    set: {paused: true}\n",
            3,
            "r",
            "invalid duration",
        ),
        ("rules:\n  - name: r\n    for: -5\n    set: {paused: true}\n", 3, "r", "invalid duration"),
        (
            "rules:\n  - name: r\n    cooldown: 1 hour\n    set: {paused: true}\n",
            3,
            "r",
            "invalid duration",
        ),
        ("rules:\n  - set: {paused: true}\n", 2, "#1", "missing required key 'name'"),
        ("rules:\n  - name: r\n", 2, "r", "missing required key 'set'"),
        ("rules:\n  - name: r\n    set: {paused: yes please}\n", 3, "r", "set.paused"),
        ("rules:\n  - name: r\n    stop: 1\n    set: {paused: true}\n", 3, "r", "stop"),
        ("rules: [\n", 2, None, "invalid YAML"),
        ("rules:\n  - name: a\n  bad indent: here\n", 3, None, "invalid YAML"),
        ("- 1\n- 2\n", 1, None, "a rules file must be a mapping"),
        ("rules: []\nrules: []\n", 2, None, "duplicate key 'rules'"),
        (
            "rules:\n  - {name: r, set: {paused: true}}\n  - {name: r, set: {paused: false}}\n",
            3,
            "r",
            "duplicate rule name (first defined at line 2)",
        ),
        (
            "rules:\n  - name: r\n    description: 'at {hours_to_dedline} h'\n"
            "    set: {paused: true}\n",
            3,
            "r",
            "unknown fact '{hours_to_dedline}' (did you mean 'hours_to_deadline'?)",
        ),
        (
            "lists:\n  - match: A\n    deadline: 2024-13-01 10:00\n",
            3,
            None,
            "invalid deadline",
        ),
        ("lists:\n  - match: A\n    unpulled: 3\n", 3, None, "is a built-in fact"),
        ("lists:\n  - match: A\n    when: 2024-04-01\n", 3, None, "quote dates"),
        ("lists:\n  - deadline: '2024-04-01'\n", 2, None, "missing required key 'match'"),
    ],
)
def test_each_class_of_error_is_located(
    tmp_path: Path, text: str, line: int, rule: str | None, message: str
) -> None:
    """Each kind of mistake is reported with its line, rule name and a clear message."""
    path = write(tmp_path, "r.yaml", text)
    problems = problems_of(path)
    assert len(problems) == 1, [str(p) for p in problems]
    problem = problems[0]
    assert (problem.file, problem.line, problem.rule) == (str(path), line, rule)
    assert message in problem.message


def test_expression_error_has_caret_under_the_spot(tmp_path: Path) -> None:
    """An unknown fact gets a did-you-mean and a caret under it in the file's own line."""
    path = write(
        tmp_path,
        "r.yaml",
        "rules:\n  - name: boost\n    when: unpulled > 0 and hours_to_dedline < 48\n"
        "    set: {weight: 3}\n",
    )
    (problem,) = problems_of(path)
    assert problem.line == 3
    assert "hours_to_deadline" in problem.message
    assert str(problem).startswith(f"{path}:3: rule 'boost': when: unknown name")
    source, caret = (problem.excerpt or "").split("\n")
    assert source.strip() == "when: unpulled > 0 and hours_to_dedline < 48"
    assert caret.index("^") == source.index("hours_to_dedline")
    assert caret.count("^") == len("hours_to_dedline")


def test_caret_inside_quoted_weight_and_block_scalar(tmp_path: Path) -> None:
    """Carets land right in quoted strings and on the right line of a block scalar."""
    path = write(
        tmp_path,
        "r.yaml",
        "rules:\n"
        "  - name: quoted\n"
        '    set: {weight: "base_weight * bogus"}\n'
        "  - name: block\n"
        "    when: |\n"
        "      unpulled > 0 and\n"
        "      nonsense > 3\n"
        "    set: {paused: true}\n",
    )
    quoted, block = problems_of(path)
    source, caret = (quoted.excerpt or "").split("\n")
    assert caret.index("^") == source.index("bogus")
    assert (block.line, block.rule) == (7, "block")
    source, caret = (block.excerpt or "").split("\n")
    assert caret.index("^") == source.index("nonsense")


def test_type_error_in_weight_is_reported(tmp_path: Path) -> None:
    """A `when` that is not a condition, or a weight that is not a number, is an error."""
    path = write(
        tmp_path,
        "r.yaml",
        "rules:\n  - name: a\n    when: unpulled + 1\n    set: {paused: true}\n"
        '  - name: b\n    set: {weight: "unpulled > 1"}\n',
    )
    a, b = problems_of(path)
    assert (a.rule, a.line, b.rule, b.line) == ("a", 3, "b", 6)


def test_all_problems_of_all_files_are_collected(tmp_path: Path) -> None:
    """Problems from several files and several rules come back together, in order."""
    one = write(
        tmp_path,
        "10-one.yaml",
        "rules:\n  - name: a\n    whn: x\n    when: bogus > 1\n    set: {paused: true}\n"
        "  - name: b\n    set: {}\n",
    )
    two = write(tmp_path, "20-two.yaml", "rules: [\n")
    three = write(tmp_path, "30-three.yaml", "rules:\n  - name: a\n    set: {paused: true}\n")
    problems = problems_of(three, two, one)
    where = [(Path(p.file).name, p.line) for p in problems]
    assert where == [
        ("10-one.yaml", 3),  # unknown key whn
        ("10-one.yaml", 4),  # unknown name bogus: checked although the rule had a bad key
        ("10-one.yaml", 7),  # empty set
        ("20-two.yaml", 2),  # broken YAML
        ("30-three.yaml", 2),  # name already used in 10-one.yaml
    ]
    assert "already used at" in problems[-1].message


def test_missing_file_is_a_problem(tmp_path: Path) -> None:
    """A rule file that cannot be read is reported, not raised as OSError."""
    (problem,) = problems_of(tmp_path / "nope.yaml")
    assert "cannot read" in problem.message


def test_problem_str_format() -> None:
    """A rule-file Problem prints as file:line: rule 'name': message, then the excerpt."""
    problem = Problem("rules/x.yaml", 12, "boost", "bad", "    a\n    ^")
    assert str(problem) == "rules/x.yaml:12: rule 'boost': bad\n    a\n    ^"
    assert str(Problem("f.yaml", 1, None, "m")) == "f.yaml:1: m"


def test_error_message_is_one_line_with_count(tmp_path: Path) -> None:
    """RuleLoadError's message is one line naming the count and the first place."""
    path = write(tmp_path, "r.yaml", "rulez: []\n")
    with pytest.raises(RuleLoadError) as caught:
        load_rules([path])
    assert "\n" not in caught.value.message
    assert "1 problem(s)" in caught.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("1h30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
        ("1w", timedelta(weeks=1)),
        ("500ms", timedelta(milliseconds=500)),
        ("90", timedelta(seconds=90)),
        ('"90"', timedelta(seconds=90)),
    ],
)
def test_rule_durations_use_the_shared_grammar(
    tmp_path: Path, text: str, expected: timedelta
) -> None:
    """for: and cooldown: accept what mixer.durations accepts (a plain number is seconds)."""
    path = write(
        tmp_path,
        "r.yaml",
        f"rules:\n  - {{name: r, for: {text}, cooldown: {text}, set: {{weight: 1}}}}\n",
    )
    rule = load_rules([path]).for_campaign("Sales").rules[0]
    assert (rule.for_, rule.cooldown) == (expected, expected)


def test_metadata_merge_order_override_and_tag_accumulation(tmp_path: Path) -> None:
    """Entries merge in file order: later fields override, tags accumulate, extras kept."""
    a = write(
        tmp_path,
        "10-a.yaml",
        """
lists:
  - match: "Recalls*"
    deadline: "2024-04-30 18:00"
    tags: [recall]
    priority: 1
    region: north
  - match: ["Recalls Apr*", "Other"]
    tags: [april, recall]
    weight: 20
""",
    )
    b = write(
        tmp_path,
        "20-b.yaml",
        "lists:\n  - match: '*'\n    deadline: 2024-05-02\n    priority: 3\n    standby: true\n",
    )
    rules = load_rules([b, a]).for_campaign("Sales")
    meta = rules.metadata_for("Recalls Apr 24")
    assert meta.deadline == datetime(2024, 5, 3, 0, 0)  # date only: end of that day
    assert meta.tags == ("recall", "april")
    assert (meta.priority, meta.standby, meta.weight) == (3, True, 20)
    assert dict(meta.extra) == {"region": "north"}
    other = rules.metadata_for("Unrelated")
    assert (other.tags, other.weight, other.priority) == ((), None, 3)


def test_campaign_rules_and_merged_metadata_are_kept_between_cycles(tmp_path: Path) -> None:
    """for_campaign gives the same object per campaign; metadata_for merges once per list."""
    path = write(tmp_path, "a.yaml", "lists:\n  - match: 'A*'\n    tags: [x]\n")
    ruleset = load_rules([path])
    sales = ruleset.for_campaign("Sales")
    assert ruleset.for_campaign("Sales") is sales
    assert ruleset.for_campaign("Support") is not sales
    first = sales.metadata_for("A1")
    assert first.tags == ("x",)
    assert sales.metadata_for("A1") is first
    assert sales.metadata_for("B1").tags == ()


def test_extra_metadata_fields_become_typed_facts(tmp_path: Path) -> None:
    """An extra field is a fact rules can read, typed from its value."""
    path = write(
        tmp_path,
        "a.yaml",
        "lists:\n  - {match: A, region: north, score: 3}\n"
        "rules:\n  - {name: r, when: \"region == 'north' and score > 2\", set: {weight: 5}}\n",
    )
    ruleset = load_rules([path])
    assert ruleset.fact_types["region"] == "string"
    assert ruleset.fact_types["score"] == "number"


def test_extra_field_with_conflicting_types_is_an_error(tmp_path: Path) -> None:
    """The same extra field cannot be a string in one entry and a number in another."""
    path = write(tmp_path, "a.yaml", "lists:\n  - {match: A, score: 3}\n  - {match: B, score: x}\n")
    (problem,) = problems_of(path)
    assert problem.line == 3
    assert "score" in problem.message


def test_json_schema_comes_from_the_models() -> None:
    """The rules JSON Schema names the file keys and forbids unknown rule keys."""
    schema = rules_json_schema()
    assert set(schema["properties"]) == {"campaigns", "lists", "rules"}
    rule = schema["$defs"]["RuleModel"]
    assert rule["additionalProperties"] is False
    assert {"for", "set", "when", "cooldown", "stop", "enabled"} <= set(rule["properties"])
    assert "pauses_campaign" in rule["properties"]


def test_json_schema_lists_every_fact_with_its_type() -> None:
    """Editors see every built-in fact, the pacing facts of issue 15 included, typed."""
    facts = rules_schema_with_facts()["$defs"]["Facts"]["properties"]
    assert set(facts) == set(FACT_TYPES)
    assert facts["overdue"]["type"] == ["boolean", "null"]
    assert facts["campaign_max_base_weight"]["type"] == ["number", "null"]
    assert facts["tags"]["type"] == "array"
