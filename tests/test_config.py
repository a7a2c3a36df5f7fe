"""Loading settings: file, environment overrides, password sources, paths, problems."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from mixer.config import Settings, load_settings, settings_json_schema
from mixer.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
MINIMAL = """\
qm:
  url: http://127.0.0.1:8080/qm
  user: robot
campaigns: [Sales]
"""


def write(tmp_path: Path, text: str = MINIMAL, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=environ or {})
    assert info.value.exit_code == 2
    return info.value.problems


def test_example_config_loads() -> None:
    """The shipped config.example.yaml is valid as it stands."""
    settings = load_settings(REPO / "config.example.yaml", environ={})
    assert settings.campaigns == ("Sales",)
    assert settings.mode == "dry-run"
    assert settings.qm.timezone == "Europe/Zurich"
    assert settings.metrics is not None
    assert settings.metrics.port == 9864


def test_defaults(tmp_path: Path) -> None:
    """Keys left out take the documented defaults."""
    settings = load_settings(write(tmp_path), environ={})
    assert settings.mode == "dry-run"
    assert settings.interval == timedelta(seconds=60)
    assert settings.qm.timeout == timedelta(seconds=10)
    assert settings.qm.verify_tls is True
    assert settings.qm.concurrency == 8
    assert settings.guardrails.min_weight == 1
    assert settings.guardrails.max_weight == 100
    assert settings.guardrails.manual_hold == timedelta(hours=1)
    assert settings.guardrails.max_step is None
    assert settings.guardrails.max_step_percent is None
    assert settings.guardrails.max_changes_per_day is None
    assert settings.history.window == timedelta(minutes=60)
    assert settings.history.min_history == timedelta(minutes=15)
    assert settings.metrics is None
    assert settings.qm.password is None
    assert settings.qm.password_source == "none"
    assert settings.warnings == ()


def test_settings_are_frozen(tmp_path: Path) -> None:
    """Settings cannot be changed after loading."""
    settings = load_settings(write(tmp_path), environ={})
    with pytest.raises(ValueError, match="frozen"):
        settings.mode = "apply"  # type: ignore[misc]


# -- password sources -------------------------------------------------------------


def _password_setup(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    (tmp_path / "secret").write_text("from-file\n", encoding="utf-8")
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "qm_password").write_text("from-credential\n", encoding="utf-8")
    config = write(
        tmp_path,
        MINIMAL.replace(
            "  user: robot\n", "  user: robot\n  password: literal\n  password_file: secret\n"
        ),
    )
    environ = {"AMO_MIXER_QM_PASSWORD": "from-env", "CREDENTIALS_DIRECTORY": str(credentials)}
    return config, environ


def test_password_environment_wins(tmp_path: Path) -> None:
    """AMO_MIXER_QM_PASSWORD beats every other source."""
    config, environ = _password_setup(tmp_path)
    qm = load_settings(config, environ=environ).qm
    assert qm.password is not None
    assert qm.password.get_secret_value() == "from-env"
    assert qm.password_source == "environment"


def test_password_file_second_with_newline_stripped(tmp_path: Path) -> None:
    """Without the variable, password_file wins (relative to the config, newline stripped)."""
    config, environ = _password_setup(tmp_path)
    del environ["AMO_MIXER_QM_PASSWORD"]
    qm = load_settings(config, environ=environ).qm
    assert qm.password is not None
    assert qm.password.get_secret_value() == "from-file"
    assert qm.password_source == "password_file"
    assert qm.password_file == tmp_path / "secret"


def test_password_credential_third(tmp_path: Path) -> None:
    """Without variable and file, the systemd credential in CREDENTIALS_DIRECTORY is used."""
    config, environ = _password_setup(tmp_path)
    del environ["AMO_MIXER_QM_PASSWORD"]
    config.write_text(config.read_text().replace("  password_file: secret\n", ""))
    qm = load_settings(config, environ=environ).qm
    assert qm.password is not None
    assert qm.password.get_secret_value() == "from-credential"
    assert qm.password_source == "credential"


def test_password_literal_last(tmp_path: Path) -> None:
    """The literal password is used only when nothing else is there."""
    config, _ = _password_setup(tmp_path)
    config.write_text(config.read_text().replace("  password_file: secret\n", ""))
    qm = load_settings(config, environ={"CREDENTIALS_DIRECTORY": str(tmp_path / "none")}).qm
    assert qm.password is not None
    assert qm.password.get_secret_value() == "literal"
    assert qm.password_source == "literal"


def test_credentials_directory_read_from_given_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CREDENTIALS_DIRECTORY comes from the environ passed in, not the process environment."""
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "qm_password").write_text("cred\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    config = write(tmp_path)
    assert load_settings(config, environ={}).qm.password_source == "none"
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    qm = load_settings(config, environ={"CREDENTIALS_DIRECTORY": str(credentials)}).qm
    assert qm.password_source == "credential"


def test_process_environment_used_when_none_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """environ=None reads os.environ at call time."""
    monkeypatch.setenv("AMO_MIXER_QM_PASSWORD", "late")
    qm = load_settings(write(tmp_path)).qm
    assert qm.password is not None
    assert qm.password.get_secret_value() == "late"


def test_unreadable_password_file_is_a_problem_without_secret(tmp_path: Path) -> None:
    """A missing password_file is reported at qm.password_file."""
    config = write(tmp_path, MINIMAL.replace("user: robot", "user: robot\n  password_file: nope"))
    problems = problems_of(config)
    assert len(problems) == 1
    assert problems[0].startswith("At 'qm.password_file': cannot read")


def test_empty_password_file_is_a_problem(tmp_path: Path) -> None:
    """A password_file holding only a newline is reported, not used as an empty password."""
    (tmp_path / "secret").write_text("\n")
    config = write(tmp_path, MINIMAL.replace("user: robot", "user: robot\n  password_file: secret"))
    assert any("is empty" in p for p in problems_of(config))


def test_read_secrets_false_skips_password_files(tmp_path: Path) -> None:
    """Commands that need no password load a config whose password_file they cannot read."""
    config = write(tmp_path, MINIMAL.replace("user: robot", "user: robot\n  password_file: nope"))
    settings = load_settings(config, environ={}, read_secrets=False)
    assert settings.qm.password is None
    assert settings.qm.password_source == "none"


def test_password_never_in_problems(tmp_path: Path) -> None:
    """A problem in the qm section never echoes the password."""
    config = write(
        tmp_path,
        "qm:\n  url: http://robot:hunter2@qm/qm\n  user: robot\n  password: hunter2\n"
        "  timeout: nope\ncampaigns: [S]\n",
    )
    problems = problems_of(config, {"AMO_MIXER_QM_PASSWORD": "s3cret"})
    assert problems
    assert not any("hunter2" in p or "s3cret" in p for p in problems)


def test_world_readable_literal_password_warns(tmp_path: Path) -> None:
    """A literal password in a file others can read gives a warning; chmod 600 silences it."""
    config = write(tmp_path, MINIMAL.replace("user: robot", "user: robot\n  password: bot"))
    assert load_settings(config, environ={}).warnings == ()
    config.chmod(0o644)
    warnings = load_settings(config, environ={}).warnings
    assert len(warnings) == 1
    assert "readable by other users" in warnings[0]
    assert "bot" not in warnings[0].replace("robot", "")


# -- environment overrides --------------------------------------------------------


def test_environment_overrides(tmp_path: Path) -> None:
    """AMO_MIXER_<KEY>__<SUB> overrides top-level and nested keys, including '25%'."""
    settings = load_settings(
        write(tmp_path),
        environ={
            "AMO_MIXER_MODE": "apply",
            "AMO_MIXER_QM__URL": "https://qm.example/qm/",
            "AMO_MIXER_QM__TIMEOUT": "30s",
            "AMO_MIXER_QM__VERIFY_TLS": "false",
            "AMO_MIXER_GUARDRAILS__MAX_STEP": "25%",
            "AMO_MIXER_GUARDRAILS__MAX_CHANGES_PER_DAY": "6",
            "AMO_MIXER_CAMPAIGNS": "Sales, B2B",
            "AMO_MIXER_METRICS__LISTEN": "[::1]:9100",
            "AMO_MIXER_HISTORY": '{"window": "2h", "min_history": "30m"}',
        },
    )
    assert settings.mode == "apply"
    assert settings.qm.url == "https://qm.example/qm"
    assert settings.qm.timeout == timedelta(seconds=30)
    assert settings.qm.verify_tls is False
    assert settings.guardrails.max_step is None
    assert settings.guardrails.max_step_percent == 25.0
    assert settings.guardrails.max_changes_per_day == 6
    assert settings.campaigns == ("Sales", "B2B")
    assert settings.metrics is not None
    assert (settings.metrics.host, settings.metrics.port) == ("::1", 9100)
    assert settings.history.window == timedelta(hours=2)


def test_environment_json_list_and_null(tmp_path: Path) -> None:
    """A JSON array sets a list; 'null' clears a nullable key."""
    config = write(tmp_path, MINIMAL + "guardrails: {max_step: 10}\nmetrics: {}\n")
    settings = load_settings(
        config,
        environ={
            "AMO_MIXER_CAMPAIGNS": '["A,1", "B"]',
            "AMO_MIXER_GUARDRAILS__MAX_STEP": "null",
            "AMO_MIXER_METRICS": "null",
        },
    )
    assert settings.campaigns == ("A,1", "B")
    assert settings.guardrails.max_step is None
    assert settings.metrics is None


def test_absolute_max_step(tmp_path: Path) -> None:
    """max_step: 10 is an absolute step; the percentage form stays unset."""
    settings = load_settings(write(tmp_path, MINIMAL + "guardrails: {max_step: 10}\n"), environ={})
    assert settings.guardrails.max_step == 10
    assert settings.guardrails.max_step_percent is None


def test_unknown_environment_variable_warns(tmp_path: Path) -> None:
    """A prefixed variable that is no setting is named in a warning, not silently used."""
    settings = load_settings(
        write(tmp_path), environ={"AMO_MIXER_MODDE": "apply", "AMO_MIXER_CONFIG": "x"}
    )
    assert settings.mode == "dry-run"
    assert settings.warnings == ("environment variable AMO_MIXER_MODDE is not a setting: ignored",)


def test_concurrent_reads_is_a_deprecated_alias_of_concurrency(tmp_path: Path) -> None:
    """The former ``qm.concurrent_reads`` still sets ``qm.concurrency``, with a warning
    saying to rename it; ``concurrency`` wins when both are given."""
    old = MINIMAL.replace("  user: robot\n", "  user: robot\n  concurrent_reads: 3\n")
    settings = load_settings(write(tmp_path, old), environ={})
    assert settings.qm.concurrency == 3
    assert settings.warnings == ("qm.concurrent_reads is deprecated: rename it to qm.concurrency",)
    both = old.replace("  concurrent_reads: 3\n", "  concurrent_reads: 3\n  concurrency: 5\n")
    assert load_settings(write(tmp_path, both), environ={}).qm.concurrency == 5


def test_environment_problem_names_the_variable(tmp_path: Path) -> None:
    """A bad value from the environment is reported with the variable's name."""
    problems = problems_of(write(tmp_path), {"AMO_MIXER_INTERVAL": "soon"})
    assert problems == [
        "At 'interval': 'soon' is not a duration: use seconds or units s, m, h, d, w, "
        "e.g. 90s, 15m, 1h30m, 2d (from AMO_MIXER_INTERVAL)"
    ]


# -- paths --------------------------------------------------------------------------


def test_relative_paths_resolve_against_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rules, state_dir and password_file are relative to the config file; decision_log to
    state_dir; the working directory does not matter."""
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "rules").mkdir()
    for name in ("b.yaml", "a.yaml"):
        (folder / "rules" / name).write_text("rules: []\n")
    config = write(
        folder, MINIMAL + "rules: [rules/*.yaml, rules/a.yaml]\nstate_dir: ./var/state\n"
    )
    monkeypatch.chdir(tmp_path)
    settings = load_settings(Path("etc/config.yaml"), environ={})
    assert settings.config_path == config
    assert settings.rules == (str(folder / "rules/*.yaml"), str(folder / "rules/a.yaml"))
    assert settings.rule_files() == [folder / "rules/a.yaml", folder / "rules/b.yaml"]
    assert settings.state_dir == folder / "var/state"
    assert settings.decision_log == folder / "var/state/decisions.jsonl"


def test_absolute_decision_log_kept(tmp_path: Path) -> None:
    """An absolute decision_log is used as it is."""
    target = tmp_path / "logs" / "d.jsonl"
    settings = load_settings(write(tmp_path, MINIMAL + f"decision_log: {target}\n"), environ={})
    assert settings.decision_log == target


# -- problems -----------------------------------------------------------------------


def test_every_problem_listed_with_key_paths(tmp_path: Path) -> None:
    """One load reports every problem, each at its key path with its line."""
    config = write(
        tmp_path,
        """\
qm:
  url: ftp://qm
  usr: robot
  timezone: Europe/Zurch
  timeout: 10x
campaigns: []
mode: aply
interval: 0
guardrails: {min_weight: 50, max_weight: 10, max_step: abc, max_changes_per_day: 0}
history: {window: 10m, min_history: 15m}
metrics: {listen: nope}
stat_dir: ./state
""",
    )
    problems = problems_of(config)
    expected = [
        "At 'qm.url': expected an http(s) URL like http://qm.example:8080/qm (line 2)",
        "At 'qm.user': required key is missing (line 1)",
        "At 'qm.timezone': unknown time zone 'Europe/Zurch'; did you mean 'Europe/Zurich'? "
        "(line 4)",
        "At 'qm.timeout': '10x' is not a duration",
        "At 'qm.usr': unknown key; did you mean 'user'? (line 3)",
        "At 'campaigns': list at least one campaign (line 6)",
        "At 'mode': Input should be 'dry-run' or 'apply' (line 7)",
        "At 'interval': 0 has no unit: write 60s or 1m (line 8)",
        "At 'guardrails.max_weight': is lower than min_weight (50) (line 9)",
        "At 'guardrails.max_step': expected a number of weight points",
        "At 'guardrails.max_changes_per_day': Input should be greater than or equal to 1",
        "At 'history.min_history': is longer than history.window",
        "At 'metrics.listen': expected host:port like 127.0.0.1:9864 (line 11)",
        "At 'stat_dir': unknown key; did you mean 'state_dir'? (line 12)",
    ]
    assert len(problems) == len(expected), problems
    for want in expected:
        assert any(p.startswith(want) for p in problems), (want, problems)


def test_duplicate_key_reported(tmp_path: Path) -> None:
    """A key given twice is a problem at its second line (YAML would keep the last)."""
    problems = problems_of(write(tmp_path, MINIMAL + "mode: dry-run\nmode: apply\n"))
    assert problems == ["At 'mode': key given more than once (line 6)"]


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    """Broken YAML is one problem with its line and column."""
    problems = problems_of(write(tmp_path, "campaigns: [S]\nqm:\n\turl: x\n"))
    assert len(problems) == 1
    assert problems[0].startswith("At line 3, column 1: ")
    assert "YAML syntax error" in problems[0]


def test_missing_file(tmp_path: Path) -> None:
    """A missing config file is one ConfigError line saying how to point at one."""
    with pytest.raises(ConfigError, match="no such file") as info:
        load_settings(tmp_path / "absent.yaml", environ={})
    assert "AMO_MIXER_CONFIG" in info.value.message
    assert info.value.problems == [], "the headline says it all; no repeated line"


def test_not_a_mapping(tmp_path: Path) -> None:
    """A file holding a list instead of keys is one clear problem."""
    assert problems_of(write(tmp_path, "- a\n- b\n")) == [
        "At '<top>': expected a mapping of keys (qm:, campaigns:, ...)"
    ]


def test_empty_file_lists_required_keys(tmp_path: Path) -> None:
    """An empty file reports the keys that must be given."""
    problems = problems_of(write(tmp_path, ""))
    assert problems == [
        "At 'qm': required key is missing",
        "At 'campaigns': required key is missing",
    ]


@pytest.mark.parametrize(
    ("snippet", "problem"),
    [
        ("qm: {url: 'http://a:b@qm/qm', user: r}", "At 'qm.url': must not hold credentials"),
        ("qm: {url: 'http://qm:99999/qm', user: r}", "At 'qm.url': the port in the URL"),
        ("qm: {url: 'http://qm/qm?x=1', user: r}", "At 'qm.url': expected the QM base URL"),
        ("qm: {url: 'http://qm/qm', user: r, password: 1234}", "At 'qm.password': must be text"),
        ("qm: {url: 'http://qm/qm', user: r, verify_tls: maybe}", "At 'qm.verify_tls': "),
        ("qm: {url: 'http://qm/qm', user: r, concurrent_reads: 0}", "At 'qm.concurrent_reads': "),
        ("qm: {url: 'http://qm/qm', user: r, concurrent_reads: 99}", "At 'qm.concurrent_reads': "),
        ("qm: {url: 'http://qm/qm', user: r, concurrency: 0}", "At 'qm.concurrency': "),
        ("qm: {url: 'http://qm/qm', user: r, concurrency: 65}", "At 'qm.concurrency': "),
        ("qm: {url: 'http://qm/qm', user: r}\nguardrails: {max_step: '0%'}", "more than 0%"),
        ("qm: {url: 'http://qm/qm', user: r}\nguardrails: {max_step: 0}", "must be at least 1"),
        ("qm: {url: 'http://qm/qm', user: r}\nguardrails: {max_step_percent: 5}", "unknown key"),
        ("qm: {url: 'http://qm/qm', user: r}\nhistory: {window: -5m}", "not a duration"),
        ("qm: {url: 'http://qm/qm', user: r}\nrules: ['']", "At 'rules': holds an empty name"),
        ("qm: {url: 'http://qm/qm', user: r}\nwarnings: [x]", "At 'warnings': unknown key"),
        ("qm: just-a-string", "At 'qm': expected a mapping of keys"),
    ],
)
def test_single_problems(tmp_path: Path, snippet: str, problem: str) -> None:
    """Each kind of bad value is reported at its key with a readable reason."""
    problems = problems_of(write(tmp_path, snippet + "\ncampaigns: [S]\n"))
    assert any(problem in p for p in problems), problems


def test_campaign_given_as_string_and_deduplicated(tmp_path: Path) -> None:
    """campaigns: Sales is a one-item list; repeated names are kept once."""
    text = MINIMAL.replace("campaigns: [Sales]", "campaigns: Sales")
    assert load_settings(write(tmp_path, text), environ={}).campaigns == ("Sales",)
    text = MINIMAL.replace("[Sales]", "[Sales, B2B, Sales]")
    assert load_settings(write(tmp_path, text), environ={}).campaigns == ("Sales", "B2B")


def test_tz_property(tmp_path: Path) -> None:
    """qm.tz is the ZoneInfo of qm.timezone."""
    text = MINIMAL.replace("user: robot", "user: robot\n  timezone: Europe/Zurich")
    assert str(load_settings(write(tmp_path, text), environ={}).qm.tz) == "Europe/Zurich"


def test_json_schema_describes_file_keys_only() -> None:
    """The schema lists the file's keys with descriptions and leaves loader fields out."""
    schema = settings_json_schema()
    assert set(schema["properties"]) == {
        "qm", "campaigns", "agent_pools", "rules", "mode", "interval", "state_dir",
        "decision_log", "guardrails", "history", "metrics",
    }  # fmt: skip
    assert schema["required"] == ["qm", "campaigns"]
    qm = schema["$defs"]["QMSettings"]["properties"]
    assert "password_source" not in qm
    assert "max_step_percent" not in schema["$defs"]["GuardrailSettings"]["properties"]
    assert schema["properties"]["interval"]["default"] == "1m"
    for definition in schema["$defs"].values():
        for name, prop in definition["properties"].items():
            assert prop.get("description"), name


def test_settings_never_read_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an explicit environ, AMO_MIXER_* in os.environ has no effect."""
    monkeypatch.setenv("AMO_MIXER_MODE", "apply")
    assert load_settings(write(tmp_path), environ={}).mode == "dry-run"
    assert isinstance(load_settings(write(tmp_path), environ=dict(os.environ)), Settings)


def test_models_never_read_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only load_settings applies AMO_MIXER_* variables; building Settings ignores them."""
    monkeypatch.setenv("AMO_MIXER_MODE", "apply")
    settings = Settings(qm={"url": "http://qm/qm", "user": "r"}, campaigns=["S"])
    assert settings.mode == "dry-run"


def test_nested_duplicate_key_is_placed_by_its_path_and_line(tmp_path: Path) -> None:
    """A key repeated inside a section is one problem naming the section's key and line."""
    text = MINIMAL + "guardrails:\n  min_weight: 2\n  min_weight: 3\n"
    assert problems_of(write(tmp_path, text)) == [
        "At 'guardrails.min_weight': key given more than once (line 7)"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1", "1 has no unit: write 60s or 1m"),
        ("0.01", "0.01 has no unit: write 60s or 1m"),
        ("'60'", "'60' has no unit: write 60s or 1m"),
        ("1ms", "1ms is under 1s: every cycle reads every campaign from QM"),
        ("500ms", "500ms is under 1s"),
    ],
)
def test_an_interval_without_unit_or_under_a_second_is_refused(
    tmp_path: Path, value: str, message: str
) -> None:
    """`interval: 1` (meant as a minute) or `1ms` would hammer QM: an error at its line."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"qm: {{url: 'http://qm.test/qm', user: r}}\ncampaigns: [Sales]\ninterval: {value}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    (problem,) = caught.value.problems
    assert problem.startswith(f"At 'interval': {message}")
    assert problem.endswith("(line 3)")


def test_an_interval_under_ten_seconds_is_a_warning(tmp_path: Path) -> None:
    """Short intervals serve tests and demos: accepted, with a warning."""
    config = tmp_path / "config.yaml"
    config.write_text("qm: {url: 'http://qm.test/qm', user: r}\ncampaigns: [Sales]\ninterval: 5s\n")
    settings = load_settings(config, environ={})
    assert settings.interval.total_seconds() == 5
    assert any(w.startswith("interval 5s is under 10s") for w in settings.warnings)
    config.write_text("qm: {url: 'http://qm.test/qm', user: r}\ncampaigns: [Sales]\ninterval: 1m\n")
    assert not load_settings(config, environ={}).warnings
