"""Settings: the typed, frozen models of the config file, and ``load_settings``.

Loading is a short sequence that collects every problem before giving up, so an operator
fixes the whole file at once: read the file; load its YAML once (``mixer.opsfiles``, with
the line of every key and duplicate keys); overlay the environment; normalise (drop keys
only the loader sets, find the password); validate the models. YAML syntax, duplicate
keys, unknown keys (with a suggestion), types, durations, ranges, time zone, URL and
password sources each become one line ``At 'qm.timeout': <reason> (line 12)``. Nothing
here touches the network.

Environment overrides (``AMO_MIXER_QM__URL=...``) are merged into the file's data before
validation, from the mapping the caller passes in (the process environment by default,
read at call time), so a reload sees the current environment and tests need not patch
``os.environ``. The same models give the JSON Schema for editors.
"""

from __future__ import annotations

import fnmatch
import glob
import ipaddress
import json
import os
import re
import stat
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from mixer.durations import format_duration
from mixer.errors import ConfigError
from mixer.opsfiles.fields import Duration, percent_step
from mixer.opsfiles.marked_yaml import duplicate_keys, key_lines, load_yaml, plain, syntax_error_at
from mixer.opsfiles.problems import Problem, closest, did_you_mean
from mixer.opsfiles.reading import UnreadableFile, read_text

ENV_PREFIX = "AMO_MIXER_"
PASSWORD_ENV = "AMO_MIXER_QM_PASSWORD"
CREDENTIAL_NAME = "qm_password"
# Variables with our prefix that are not settings: read elsewhere, never warned about.
NON_SETTING_ENV = frozenset({PASSWORD_ENV, "AMO_MIXER_CONFIG"})

PasswordSource = Literal["environment", "password_file", "credential", "literal", "none"]
Path_ = tuple[str | int, ...]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QMSettings(_Section):
    """How to reach QueueMetrics."""

    url: str = Field(description="Base URL of QueueMetrics, e.g. http://qm.example:8080/qm.")
    user: str = Field(min_length=1, description="QM user holding the USR_AMO key.")
    password: SecretStr | None = Field(
        None,
        description="Literal password (demo only; prefer AMO_MIXER_QM_PASSWORD, password_file "
        "or the systemd credential qm_password).",
    )
    password_file: Path | None = Field(
        None, description="File holding the password (trailing newline stripped)."
    )
    password_source: PasswordSource = Field(
        "none", description="Where the password came from (set by the loader)."
    )
    timezone: str = Field(
        "UTC",
        description="The QM server's IANA time zone: lastPull and deadlines are in it.",
    )
    timeout: Duration = Field(timedelta(seconds=10), description="Timeout of one HTTP call.")
    verify_tls: bool = Field(True, description="Verify the server's TLS certificate.")
    max_reply_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1024,
        description="Largest reply read from QM (bytes, after decompression): a larger one "
        "fails that campaign's read instead of filling memory.",
    )
    concurrency: int = Field(
        8,
        ge=1,
        le=64,
        description="QM requests (reads and writes together) in flight at once: each "
        "campaign's read, plan, write and verify run as one pipeline, this many at a time; "
        "1 runs campaigns in turn (an in-process emulator, or a QM that should see one "
        "request at a time).",
    )
    concurrent_reads: int | None = Field(
        None,
        ge=1,
        le=16,
        description="Deprecated: the former name of concurrency (used when concurrency is "
        "not given).",
    )

    @model_validator(mode="before")
    @classmethod
    def _concurrent_reads_alias(cls, data: Any) -> Any:
        if (
            isinstance(data, Mapping)
            and data.get("concurrent_reads") is not None
            and "concurrency" not in data
        ):
            return {**data, "concurrency": data["concurrent_reads"]}
        return data

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http(s) URL like http://qm.example:8080/qm")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "must not hold credentials: set qm.user and the password settings instead"
            )
        if parts.query or parts.fragment:
            raise ValueError("expected the QM base URL without '?query' or '#fragment'")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError("the port in the URL is not a number from 1 to 65535") from None
        return value.strip().rstrip("/")

    @field_validator("password", mode="before")
    @classmethod
    def _password_text(cls, value: object) -> object:
        if value is None or isinstance(value, str | SecretStr):
            return value
        raise ValueError("must be text: put it in quotes")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            close = closest(value, sorted(available_timezones()))
            hint = f"; did you mean '{close}'?" if close else " (e.g. Europe/Zurich)"
            raise ValueError(f"unknown time zone '{value}'{hint}") from None
        return value

    @field_validator("timeout")
    @classmethod
    def _positive_timeout(cls, value: timedelta) -> timedelta:
        return _positive(value)


MaxStep = Annotated[
    int | None,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*%\s*$"},
                {"type": "null"},
            ]
        }
    ),
]


class GuardrailSettings(_Section):
    """Limits every plan passes through."""

    min_weight: int = Field(1, ge=1, description="Lowest weight the mixer writes.")
    max_weight: int = Field(100, ge=1, description="Highest weight the mixer writes.")
    manual_hold: Duration = Field(
        timedelta(hours=1),
        description="How long a list a human changed is left alone.",
    )
    max_step: MaxStep = Field(
        None,
        description="Most a weight moves per cycle: weight points (10) or a percentage of the "
        "current weight ('25%'); null = no limit.",
    )
    max_step_percent: float | None = Field(
        None, description="The percentage form of max_step (set by the loader)."
    )
    max_changes_per_day: int | None = Field(
        None, ge=1, description="Most changes to one list per QM local day; null = no limit."
    )

    @model_validator(mode="before")
    @classmethod
    def _split_percent_step(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            percent = percent_step(data.get("max_step"))
            if percent is not None and percent > 0:
                return {**data, "max_step": None, "max_step_percent": percent}
        return data

    @field_validator("max_step", mode="before")
    @classmethod
    def _step(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("expected a number of weight points like 10 or a percentage '25%'")
        if isinstance(value, str):
            if percent_step(value) is not None:
                raise ValueError("a percentage step must be more than 0%")
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError(
                    "expected a number of weight points like 10 or a percentage like '25%'"
                ) from None
        if isinstance(value, int) and value < 1:
            raise ValueError("must be at least 1 (use null for no limit)")
        return value

    @field_validator("max_weight")
    @classmethod
    def _max_over_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_weight")
        if isinstance(low, int) and value < low:
            raise ValueError(f"is lower than min_weight ({low})")
        return value


class HistorySettings(_Section):
    """The window of counters behind the rate facts."""

    window: Duration = Field(
        timedelta(minutes=60), description="Span over which pull and completion rates are taken."
    )
    min_history: Duration = Field(
        timedelta(minutes=15),
        description="Rates stay null until the history spans at least this long.",
    )

    @field_validator("window")
    @classmethod
    def _positive_window(cls, value: timedelta) -> timedelta:
        return _positive(value)

    @field_validator("min_history")
    @classmethod
    def _within_window(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        window = info.data.get("window")
        if isinstance(window, timedelta) and value > window:
            raise ValueError("is longer than history.window: rates would never be known")
        return value


class MetricsSettings(_Section):
    """The Prometheus endpoint and the status page (one listener, no auth of its own)."""

    # Declared before `listen`, whose check reads it.
    allow_remote: bool = Field(
        False,
        description="Allow a non-loopback listen address. The listener has no auth: put it "
        "behind a reverse proxy with auth instead when you can (docs/operations.md).",
    )
    listen: str = Field(
        "127.0.0.1:9864",
        description="host:port of /metrics and the status page ([::1]:9864 for IPv6); "
        "loopback unless allow_remote is true.",
    )
    per_list: bool = Field(
        True,
        description="Export the per-list gauges (7 series per list, labelled campaign and "
        "list); turn off for very many lists.",
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str, info: ValidationInfo) -> str:
        host = _split_listen(value)[0]
        if not info.data.get("allow_remote") and not is_loopback(host):
            raise ValueError(
                f"{value!r} is not a loopback address, and the status page and /metrics have "
                "no auth: listen on 127.0.0.1 behind a reverse proxy with auth "
                "(docs/operations.md), or set metrics.allow_remote: true"
            )
        return value

    @property
    def host(self) -> str:
        return _split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return _split_listen(self.listen)[1]


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: reachable from this host only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("expected host:port like 127.0.0.1:9864")
    return host, int(port)


MIN_INTERVAL = timedelta(seconds=1)
QUIET_INTERVAL = timedelta(seconds=10)  # below it: a warning (tests and demos go faster)
_BARE_NUMBER = re.compile(r"^\s*\d+(\.\d+)?\s*$")


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return value


def _in_group(campaign: str, group: tuple[str, ...]) -> bool:
    """A campaign named by an ``agent_pools`` group (names or fnmatch globs)."""
    return any(fnmatch.fnmatchcase(campaign, pattern) for pattern in group)


def _one_or_many(value: object) -> object:
    if isinstance(value, str):
        return (value,)
    return value


class Settings(BaseModel):
    """Everything the mixer is configured with, paths made absolute."""

    # A plain model: load_settings overlays the environment it is given on the file's
    # data, so the model itself never reads os.environ behind the caller's back.
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    config_path: Path = Field(Path("."), description="The file these settings came from.")
    qm: QMSettings = Field(description="How to reach QueueMetrics.")
    campaigns: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = Field(
        description="Names of the AMO campaigns the mixer manages."
    )
    agent_pools: tuple[tuple[str, ...], ...] = Field(
        (),
        description="Groups of campaigns (names or globs) whose agents are shared: QM's "
        "dialer draws their lists by weight against each other, so the rules' pool_* facts "
        "aggregate over every list of the group and its campaigns are planned together. "
        "A campaign in no group is its own pool.",
    )
    rules: Annotated[tuple[str, ...], BeforeValidator(_one_or_many)] = Field(
        ("rules/*.yaml",),
        description="Glob patterns of rule files, relative to the config file's folder.",
    )
    mode: Literal["dry-run", "apply"] = Field(
        "dry-run", description="dry-run writes nothing to QM; apply writes the plan."
    )
    interval: Duration = Field(timedelta(seconds=60), description="Time between cycles.")
    state_dir: Path = Field(
        Path("state"), description="Folder of the state store and the decision log."
    )
    decision_log: Path = Field(
        Path("decisions.jsonl"), description="The decision log, relative to state_dir."
    )
    guardrails: GuardrailSettings = Field(
        default_factory=GuardrailSettings, description="Limits every plan passes through."
    )
    history: HistorySettings = Field(
        default_factory=HistorySettings, description="Counters history for rate facts."
    )
    metrics: MetricsSettings | None = Field(
        None, description="Prometheus /metrics endpoint; omit to disable."
    )
    warnings: tuple[str, ...] = Field((), description="Notes from loading (set by the loader).")

    @field_validator("campaigns", "rules")
    @classmethod
    def _no_blanks(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if not value and info.field_name == "campaigns":
            raise ValueError("list at least one campaign")
        if any(not item.strip() for item in value):
            raise ValueError("holds an empty name")
        return tuple(dict.fromkeys(value))

    @field_validator("agent_pools")
    @classmethod
    def _pools(
        cls, value: tuple[tuple[str, ...], ...], info: ValidationInfo
    ) -> tuple[tuple[str, ...], ...]:
        for group in value:
            if not group:
                raise ValueError("holds an empty group: list the campaigns that share agents")
            if any(not item.strip() for item in group):
                raise ValueError("holds an empty campaign name")
        for campaign in info.data.get("campaigns", ()):
            groups = [i + 1 for i, group in enumerate(value) if _in_group(campaign, group)]
            if len(groups) > 1:
                numbers = " and ".join(map(str, groups))
                raise ValueError(
                    f"campaign {campaign!r} is in groups {numbers}: a campaign's agents "
                    "belong to one pool; merge the groups that share it"
                )
        return value

    def pools(self) -> tuple[tuple[str, ...], ...]:
        """Every configured campaign in exactly one pool, in config order: the campaigns of
        an ``agent_pools`` group together, each other campaign alone."""
        found: dict[object, list[str]] = {}
        for campaign in self.campaigns:
            group = next(
                (i for i, g in enumerate(self.agent_pools) if _in_group(campaign, g)), None
            )
            found.setdefault(campaign if group is None else group, []).append(campaign)
        return tuple(tuple(campaigns) for campaigns in found.values())

    def unmatched_pool_names(self) -> list[str]:
        """The ``agent_pools`` names or globs that match no configured campaign."""
        return [
            name
            for group in self.agent_pools
            for name in group
            if not any(_in_group(c, (name,)) for c in self.campaigns)
        ]

    @field_validator("interval", mode="before")
    @classmethod
    def _interval_has_a_unit(cls, value: object) -> object:
        # `interval: 1` meant as one minute would be a cycle a second: say so.
        if (isinstance(value, int | float) and not isinstance(value, bool)) or (
            isinstance(value, str) and _BARE_NUMBER.match(value)
        ):
            raise ValueError(f"{value!r} has no unit: write 60s or 1m")
        return value

    @field_validator("interval")
    @classmethod
    def _sane_interval(cls, value: timedelta) -> timedelta:
        if value < MIN_INTERVAL:
            raise ValueError(
                f"{format_duration(value)} is under 1s: every cycle reads every campaign "
                "from QM; write 60s (the usual) or at least 1s"
            )
        return value

    def rule_files(self) -> list[Path]:
        """Rule files matching ``rules``: sorted, each once."""
        found: set[Path] = set()
        for pattern in self.rules:
            for name in glob.glob(pattern, recursive=True):
                if os.path.isfile(name):
                    found.add(Path(name))
        return sorted(found)


# Fields the loader fills in: not keys of the config file.
_DERIVED: dict[Path_, frozenset[str]] = {
    (): frozenset({"config_path", "warnings"}),
    ("qm",): frozenset({"password_source"}),
    ("guardrails",): frozenset({"max_step_percent"}),
}
_SECTIONS: dict[Path_, type[BaseModel]] = {
    (): Settings,
    ("qm",): QMSettings,
    ("guardrails",): GuardrailSettings,
    ("history",): HistorySettings,
    ("metrics",): MetricsSettings,
}


def _file_keys(section: Path_) -> list[str]:
    model = _SECTIONS[section]
    derived = _DERIVED.get(section, frozenset())
    return [name for name in model.model_fields if name not in derived]


def load_settings(
    path: Path, *, environ: Mapping[str, str] | None = None, read_secrets: bool = True
) -> Settings:
    """Read the config file at ``path``, apply the environment, validate, resolve paths.

    ``read_secrets=False`` skips reading password files and credentials (commands that
    only need the state folder, like ``log``, work for users who may not read them).
    Raises ``ConfigError`` listing every problem found.
    """
    env = os.environ if environ is None else environ
    path = Path(path).expanduser()
    config_path = Path(os.path.abspath(path))
    try:
        text = read_text(config_path)
    except UnreadableFile as exc:
        reason = (
            "no such file (pass -c PATH or set AMO_MIXER_CONFIG)" if exc.missing else exc.reason
        )
        raise _unreadable(path, reason) from None

    problems = _Problems()
    data = _load_yaml(text, problems)  # 1. the YAML, once, with the line of every key
    if data is None:
        raise ConfigError(f"invalid config {path}: {problems.summary()}", problems.lines())
    warnings: list[str] = []
    literal_in_file = isinstance(data.get("qm"), dict) and data["qm"].get("password") is not None
    _overlay_environment(data, env, problems, warnings)  # 2. AMO_MIXER_* over the file
    _drop_derived_keys(data, problems)  # 3. normalise: keys only the loader sets
    base = config_path.parent
    password, source = _resolve_password(data, base, env, problems, read_secrets, warnings)

    settings: Settings | None = None
    try:
        settings = Settings(**data)  # 4. validate
    except ValidationError as exc:
        problems.add_validation_errors(exc)
    if problems.found or settings is None:
        raise ConfigError(f"invalid config {path}: {problems.summary()}", problems.lines())

    if settings.interval < QUIET_INTERVAL:
        warnings.append(
            f"interval {format_duration(settings.interval)} is under 10s: each cycle reads "
            "every campaign from QM, which loads a production server; 60s is usual"
        )
    if literal_in_file and _readable_by_others(config_path):
        warnings.append(
            f"{config_path} holds a literal qm.password and is readable by other users: "
            f"chmod 600 it, or use qm.password_file or {PASSWORD_ENV}"
        )
    if settings.qm.concurrent_reads is not None:
        warnings.append("qm.concurrent_reads is deprecated: rename it to qm.concurrency")
    for name in settings.unmatched_pool_names():
        warnings.append(
            f"agent_pools: {name!r} matches none of the configured campaigns "
            f"({', '.join(settings.campaigns)}): check the name (matching is case-sensitive)"
        )
    qm = settings.qm.model_copy(
        update={
            "password": SecretStr(password) if password else None,
            "password_source": source,
            "password_file": _absolute(base, settings.qm.password_file)
            if settings.qm.password_file
            else None,
        }
    )
    state_dir = _absolute(base, settings.state_dir)
    decision_log = settings.decision_log.expanduser()
    return settings.model_copy(
        update={
            "config_path": config_path,
            "qm": qm,
            "rules": tuple(str(_absolute(base, Path(p))) for p in settings.rules),
            "state_dir": state_dir,
            "decision_log": Path(os.path.normpath(state_dir / decision_log)),
            "warnings": tuple(warnings),
        }
    )


def _duration_defaults(node: object) -> None:
    """Show duration defaults as the file spells them (``1m``), not ISO 8601 (``PT1M``)."""
    if isinstance(node, dict):
        default = node.get("default")
        kinds = node.get("anyOf", [])
        if isinstance(default, str) and any(
            isinstance(k, dict) and "(ms|s|m|h|d|w)" in k.get("pattern", "") for k in kinds
        ):
            node["default"] = format_duration(TypeAdapter(timedelta).validate_python(default))
        for value in node.values():
            _duration_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _duration_defaults(value)


def _unreadable(path: Path, reason: str) -> ConfigError:
    # The headline already says everything: a problem list would repeat it.
    return ConfigError(f"cannot read config {path}: {reason}")


def settings_json_schema() -> dict[str, Any]:
    """The JSON Schema of the config file (loader-set fields left out)."""
    schema = Settings.model_json_schema()
    definitions = schema.get("$defs", {})
    for section, names in _DERIVED.items():
        node = schema if not section else definitions.get(_SECTIONS[section].__name__, {})
        for name in names:
            node.get("properties", {}).pop(name, None)
            if name in node.get("required", []):
                node["required"].remove(name)
    _duration_defaults(schema)
    schema["title"] = "amo-mixer configuration"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


# -- loading steps ------------------------------------------------------------------


class _Problems:
    """The problems found so far, each placed by its key's line or environment variable."""

    def __init__(self) -> None:
        self.found: list[Problem] = []
        self.key_lines: dict[Path_, int] = {}
        self.from_env: dict[Path_, str] = {}

    def add(self, where: Path_, reason: str) -> None:
        line, origin = 0, None
        for depth in range(len(where), 0, -1):
            prefix = where[:depth]
            if prefix in self.from_env:
                origin = self.from_env[prefix]
                break
            if prefix in self.key_lines:
                line = self.key_lines[prefix]
                break
        self.found.append(Problem("", line, None, reason, path=where, origin=origin))

    def add_validation_errors(self, error: ValidationError) -> None:
        for item in error.errors(include_url=False, include_input=False):
            where: Path_ = tuple(item["loc"])
            kind = item["type"]
            if kind == "extra_forbidden":
                reason = "unknown key" + _unknown_key_hint(str(where[-1]), where[:-1])
            elif kind == "missing":
                reason = "required key is missing"
            elif kind in ("model_type", "dict_type", "model_attributes_type"):
                reason = "expected a mapping of keys"
            else:
                reason = str(item["msg"]).removeprefix("Value error, ")
            self.add(where, reason)

    def lines(self) -> list[str]:
        return [problem.at_path() for problem in self.found]

    def summary(self) -> str:
        count = len(self.found)
        return f"{count} problem{'s' if count != 1 else ''}"


def _load_yaml(text: str, problems: _Problems) -> dict[str, Any] | None:
    """The file's mapping with text keys, or None (and the problem) when there is none."""
    try:
        data, _ = load_yaml(text)
    except yaml.YAMLError as exc:
        mark, what = syntax_error_at(exc)
        line, column = (mark.line, mark.column) if mark else (0, None)
        problems.found.append(Problem("", line, None, f"YAML syntax error: {what}", column=column))
        return None
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.add((), "expected a mapping of keys (qm:, campaigns:, ...)")
        return None
    problems.key_lines = key_lines(data)
    for repeated, mark in duplicate_keys(data):
        problems.key_lines[repeated] = mark.line
        problems.add(repeated, "key given more than once")
    return _string_keys(plain(data))


def _overlay_environment(
    data: dict[str, Any], environ: Mapping[str, str], problems: _Problems, warnings: list[str]
) -> None:
    """``AMO_MIXER_QM__URL=...`` sets ``qm.url``: each variable naming a setting replaces
    the file's value; one with the prefix naming nothing is a warning."""
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in NON_SETTING_ENV:
            continue
        where: Path_ = tuple(name[len(ENV_PREFIX) :].lower().split("__"))
        annotation = _annotation_at(where)
        if annotation is None:
            warnings.append(f"environment variable {name} is not a setting: ignored")
            continue
        problems.from_env[where] = name
        value = _env_value(where, environ[name], annotation, problems)
        node = data
        for key in map(str, where[:-1]):
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[str(where[-1])] = value


def _env_value(where: Path_, text: str, annotation: Any, problems: _Problems) -> object:
    nullable = type(None) in get_args(annotation)
    if nullable and text.strip().lower() in ("", "null", "none"):
        return None
    is_section = any(
        isinstance(a, type) and issubclass(a, BaseModel)
        for a in (annotation, *get_args(annotation))
    )
    if is_section or (get_origin(annotation) is tuple and text.lstrip().startswith("[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            problems.add(where, f"not valid JSON: {exc.msg}")
            return None
    if get_origin(annotation) is tuple:
        return tuple(item.strip() for item in text.split(",") if item.strip())
    return text


def _drop_derived_keys(data: dict[str, Any], problems: _Problems) -> None:
    """Keys only the loader sets (``warnings``, ``max_step_percent``…) are unknown keys."""
    for section, names in _DERIVED.items():
        node: Any = data
        for key in section:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        for name in names & node.keys():
            problems.add((*section, name), "unknown key" + _unknown_key_hint(name, section))
            del node[name]


def _string_keys(data: dict[Any, Any]) -> dict[str, Any]:
    """YAML allows `1: x`; as keyword names they must be text (then reported unknown)."""
    return {
        str(key): _string_keys(value) if isinstance(value, dict) else value
        for key, value in data.items()
    }


def _annotation_at(where: Path_) -> Any:
    """The field annotation at a file key path, or None when the path is not a key."""
    section: Path_ = ()
    for depth, key in enumerate(where):
        if section not in _SECTIONS or key not in _file_keys(section):
            return None
        field = _SECTIONS[section].model_fields[str(key)]
        if depth == len(where) - 1:
            return field.annotation
        section = (*section, key)
    return None


def _unknown_key_hint(name: str, section: Path_) -> str:
    if section not in _SECTIONS:
        return ""
    hint = did_you_mean(name, _file_keys(section))
    return f"; {hint}" if hint else ""


def _resolve_password(
    data: dict[str, Any],
    base: Path,
    environ: Mapping[str, str],
    problems: _Problems,
    read_secrets: bool,
    warnings: list[str],
) -> tuple[str | None, PasswordSource]:
    """First found wins: environment, password_file, systemd credential, literal."""
    section = data.get("qm")
    qm: dict[str, Any] = section if isinstance(section, dict) else {}
    if environ.get(PASSWORD_ENV):
        return environ[PASSWORD_ENV], "environment"
    password_file = qm.get("password_file")
    if isinstance(password_file, str) and password_file.strip():
        if not read_secrets:
            return None, "none"
        secret_path = _absolute(base, Path(password_file))
        secret = _read_secret(secret_path, ("qm", "password_file"), problems)
        if secret is not None and _readable_by_others(secret_path):
            warnings.append(f"{secret_path} (qm.password_file) is readable by other users")
        return secret, "password_file" if secret is not None else "none"
    credentials = environ.get("CREDENTIALS_DIRECTORY")
    if credentials and read_secrets:
        credential = Path(credentials) / CREDENTIAL_NAME
        if credential.exists():
            secret = _read_secret(credential, ("qm", "password"), problems)
            return secret, "credential" if secret is not None else "none"
    literal = qm.get("password")
    if isinstance(literal, str) and literal:
        return literal, "literal"
    return None, "none"


def _read_secret(path: Path, where: Path_, problems: _Problems) -> str | None:
    try:
        secret = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        problems.add(where, f"cannot read {path}: {exc.strerror or exc}")
        return None
    except UnicodeDecodeError:
        problems.add(where, f"{path} is not UTF-8 text")
        return None
    if not secret:
        problems.add(where, f"{path} is empty")
        return None
    return secret


def _absolute(base: Path, path: Path) -> Path:
    path = path.expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else base / path))


def _readable_by_others(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))
    except OSError:
        return False
