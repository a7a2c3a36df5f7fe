"""Rule unit tests (``amo-mixer test``): list snapshots at given times, expected decisions.

Each step runs the real pipeline — memory reconciliation, evaluation, guardrails
(``mixer.plan.plan_campaign``) — and then plays QM: the lists take the values the
mixer wrote, the memory is what the daemon would persist, each step's counters become a
history sample. So a test states only what changes (new counters, a human's edit) and
what it expects the mixer to decide. The format is described in docs/rules.md.
"""

from __future__ import annotations

import glob
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from mixer.config import GuardrailSettings, HistorySettings
from mixer.engine.facts import EngineSettings, localize
from mixer.engine.memory import HistorySample, ListMemory
from mixer.errors import MixerError
from mixer.guardrails import Limits
from mixer.opsfiles.marked_yaml import KeyPath, key_lines, load_yaml, plain, syntax_error_at
from mixer.opsfiles.problems import did_you_mean, key_path
from mixer.opsfiles.reading import UnreadableFile, read_text
from mixer.plan import CampaignPlan, Decision, plan_campaign
from mixer.rule_loading import load_rules
from mixer.rulefile import RuleLoadError
from mixer.snapshot import CampaignSnapshot, ListSnapshot


class RuleTestFileError(MixerError):
    """A test file that cannot be read, parsed or whose rule files do not load."""

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message, exit_code=2)
        self.problems = problems or []


# ---------------------------------------------------------------------------------------
# The test-file models


class RuleTestSettings(BaseModel):
    """The test's settings: the QM time zone, the campaign, and the config's own
    ``history:`` and ``guardrails:`` sections (same keys, defaults and checks)."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "UTC"
    campaign: str = "Sales"
    history: HistorySettings = Field(default_factory=HistorySettings)
    guardrails: GuardrailSettings = Field(default_factory=GuardrailSettings)


class Expectation(BaseModel):
    """What the mixer must decide for one list; empty = no change."""

    model_config = ConfigDict(extra="forbid")

    weight: int | None = None
    paused: StrictBool | None = None
    rules: list[str] | None = None
    no_change: StrictBool = False
    reason_contains: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict)

    @property
    def expects_change(self) -> bool:
        return not self.no_change and (
            self.weight is not None or self.paused is not None or self.rules is not None
        )


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: str
    lists: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    expect: dict[str, Expectation | None] = Field(default_factory=dict)
    stopped: StrictBool | None = Field(None, description="expect a campaign guardrail stop")


class RuleTestFile(BaseModel):
    """A rule test file: the rule files it loads, settings, extra ``lists:``, the steps."""

    model_config = ConfigDict(extra="forbid")

    rules: list[str]
    settings: RuleTestSettings = Field(default_factory=RuleTestSettings)
    lists: list[dict[str, Any]] = Field(default_factory=list)
    steps: list[Step]


# ---------------------------------------------------------------------------------------
# Results


@dataclass
class Failure:
    step: int
    at: str
    list: str | None
    message: str

    def __str__(self) -> str:
        where = f"step {self.step} (at {self.at})"
        if self.list is not None:
            where += f", list {self.list!r}"
        return f"{where}: {self.message}"


@dataclass
class RuleTestResult:
    """How one test file went: steps run, expectations checked, what failed."""

    path: str
    steps: int = 0
    expectations: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        head = f"{self.path}: {self.steps} steps, {self.expectations} expectations"
        if self.ok:
            return f"{head}, ok"
        return f"{head}, FAILED ({len(self.failures)} failed)"


# ---------------------------------------------------------------------------------------
# Running

_FIELDS: dict[str, str] = {
    "listNotes": "notes",
    "notes": "notes",
    "weight": "weight",
    "listState": "list_state",
    "list_state": "list_state",
    "paused": "paused",
    "dialerState": "dialer_state",
    "dialer_state": "dialer_state",
    "dialerCanReserve": "can_reserve_state",
    "can_reserve": "can_reserve",
    "nNumbersAdded": "added",
    "added": "added",
    "nNumbersCompleted": "completed",
    "completed": "completed",
    "nNumbersPulled": "pulled",
    "pulled": "pulled",
    "lastPull": "last_pull",
    "last_pull": "last_pull",
}

_NEW_LIST = ListSnapshot(
    name="",
    notes="",
    weight=10,
    list_state="open",
    dialer_state="open",
    can_reserve_state="open",
    added=0,
    completed=0,
    pulled=0,
    last_pull=None,
)


def run_test_file(path: Path) -> RuleTestResult:
    """Run one test file; raises ``RuleTestFileError`` when it cannot be run at all."""
    spec, lines = _read(path)
    tz = _timezone(spec.settings.timezone, f"{path}:{_line(lines, ('settings', 'timezone'))}")
    rule_paths = _rule_paths(spec.rules, path, lines)
    extra: list[tuple[str, str]] = []
    if spec.lists:
        extra.append((f"{path} (lists)", yaml.safe_dump({"lists": spec.lists})))
    try:
        ruleset = load_rules(rule_paths, extra_texts=extra)
    except RuleLoadError as exc:
        raise RuleTestFileError(
            f"{path}: the rule files do not load", [str(p) for p in exc.problems]
        ) from None
    settings = EngineSettings(
        timezone=tz,
        history_window=spec.settings.history.window,
        min_history=spec.settings.history.min_history,
    )
    limits = _limits(spec.settings.guardrails)
    rules = ruleset.for_campaign(spec.settings.campaign)

    result = RuleTestResult(str(path))
    state: dict[str, ListSnapshot] = {}
    memory: dict[str, ListMemory] = {}
    history: dict[str, list[HistorySample]] = {}
    previous: datetime | None = None
    for number, step in enumerate(spec.steps, start=1):
        now = _parse_at(step.at, tz, f"{path}:{_line(lines, ('steps', number - 1, 'at'))}", number)
        if previous is not None and now <= previous:
            raise RuleTestFileError(f"{path}: step {number}: 'at' must be after the step before")
        previous = now
        state = _apply_lists(state, step.lists, tz, path, number, lines)
        snapshot = CampaignSnapshot(spec.settings.campaign, tuple(state.values()), now)
        for item in snapshot.lists:
            history.setdefault(item.name, []).append(
                HistorySample(
                    ts=now, pulled=item.pulled, completed=item.completed, added=item.added
                )
            )
        plan = plan_campaign(rules, snapshot, memory, history, now, settings, limits)
        result.steps += 1
        _check(result, number, step, plan)
        memory = plan.memory_after(plan.update_names)
        for update in plan.updates:
            current = state[update.name]
            state[update.name] = replace(
                current, weight=update.weight, list_state="paused" if update.paused else "open"
            )
    return result


def _rule_paths(patterns: Sequence[str], path: Path, lines: dict[KeyPath, int]) -> list[Path]:
    """``rules:`` entries relative to the test file, globs expanded as the config does:
    each match once, sorted; an entry matching no file is an error naming its line."""
    found: list[Path] = []
    for index, pattern in enumerate(patterns):
        full = path.parent / pattern
        matches = sorted(Path(m) for m in glob.glob(str(full), recursive=True) if Path(m).is_file())
        if not matches:
            what = "matches no file" if glob.has_magic(pattern) else "is not a file"
            raise RuleTestFileError(
                f"{path}:{_line(lines, ('rules', index))}: rules: {pattern!r} {what} (paths "
                f"are relative to the test file's directory, {path.parent})"
            )
        found.extend(m for m in matches if m not in found)
    return found


def _line(lines: dict[KeyPath, int], where: KeyPath) -> int:
    """The line of ``where`` in the test file, or of its nearest ancestor there (else 1)."""
    for depth in range(len(where), 0, -1):
        line = lines.get(tuple(where[:depth]))
        if line is not None:
            return line
    return 1


def _read(path: Path) -> tuple[RuleTestFile, dict[KeyPath, int]]:
    try:
        text = read_text(path)
    except UnreadableFile as exc:
        reason = exc.reason if exc.not_text else f"cannot read: {exc.reason}"
        raise RuleTestFileError(f"{path}: {reason}") from None
    try:
        data, _ = load_yaml(text)
    except yaml.YAMLError as exc:
        mark, what = syntax_error_at(exc)
        if not isinstance(exc, yaml.MarkedYAMLError):
            raise RuleTestFileError(f"{path}: invalid YAML: {what}") from None
        where = f"{mark.line}:{mark.column + 1}" if mark else "1"
        raise RuleTestFileError(f"{path}:{where}: invalid YAML: {what}") from None
    lines = key_lines(data)
    try:
        return RuleTestFile.model_validate(plain(data)), lines
    except ValidationError as exc:
        problems = [_validation_problem(e, path, lines) for e in exc.errors()]
        raise RuleTestFileError(f"{path}: not a valid test file", problems) from None


_MODEL_BELOW: dict[str, type[BaseModel]] = {
    "settings": RuleTestSettings,
    "history": HistorySettings,
    "guardrails": GuardrailSettings,
    "steps": Step,
}


def _validation_problem(error: Mapping[str, Any], path: Path, lines: dict[KeyPath, int]) -> str:
    """``file:line: steps[0].expect.B2B.weigth: unknown key (did you mean 'weight'?)``."""
    loc: KeyPath = tuple(error["loc"])
    where = f"{path}:{_line(lines, loc)}: {key_path(loc)}"
    if error["type"] == "extra_forbidden":
        hint = did_you_mean(str(loc[-1]), _keys_beside(loc))
        return f"{where}: unknown key" + (f" ({hint})" if hint else "")
    return f"{where}: {str(error['msg']).removeprefix('Value error, ')}"


def _keys_beside(loc: KeyPath) -> list[str]:
    """The keys the test-file schema allows where the last part of ``loc`` stands."""
    named = [p for p in loc[:-1] if isinstance(p, str)]
    model: type[BaseModel] = RuleTestFile
    if len(named) >= 2 and named[-2] == "expect":
        model = Expectation
    elif named:
        model = _MODEL_BELOW.get(named[-1], RuleTestFile)
    return [info.alias or name for name, info in model.model_fields.items()]


def _timezone(name: str, path: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RuleTestFileError(
            f"{path}: settings.timezone {name!r} is not a time zone (e.g. Europe/Zurich)"
        ) from None


def _limits(g: GuardrailSettings) -> Limits:
    return Limits(
        min_weight=g.min_weight,
        max_weight=g.max_weight,
        manual_hold=g.manual_hold,
        max_step=g.max_step,
        max_step_percent=g.max_step_percent,
        max_changes_per_day=g.max_changes_per_day,
    )


def _parse_at(text: str, tz: ZoneInfo, path: str, number: int) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise RuleTestFileError(
            f"{path}: step {number}: at {text!r} is not 'YYYY-MM-DD HH:MM' (QM local time)"
        ) from None
    return localize(moment, tz).astimezone(ZoneInfo("UTC"))


def _apply_lists(
    state: Mapping[str, ListSnapshot],
    changes: Mapping[str, Mapping[str, Any] | None],
    tz: ZoneInfo,
    path: Path,
    number: int,
    lines: dict[KeyPath, int],
) -> dict[str, ListSnapshot]:
    result = dict(state)
    for name, fields in changes.items():
        if fields is None:  # the list vanished from QM
            result.pop(name, None)
            continue
        values: dict[str, Any] = {}
        for key, value in fields.items():
            target = _FIELDS.get(key)
            if target is None:
                hint = did_you_mean(key, _FIELDS)
                hint = f" ({hint})" if hint else ""
                line = _line(lines, ("steps", number - 1, "lists", name, key))
                raise RuleTestFileError(
                    f"{path}:{line}: step {number}: list {name!r}: unknown field '{key}'{hint}"
                )
            values[target] = value
        try:
            result[name] = _snapshot(result.get(name) or replace(_NEW_LIST, name=name), values, tz)
        except (TypeError, ValueError) as exc:
            line = _line(lines, ("steps", number - 1, "lists", name))
            raise RuleTestFileError(f"{path}:{line}: step {number}: list {name!r}: {exc}") from None
    return result


def _snapshot(base: ListSnapshot, values: Mapping[str, Any], tz: ZoneInfo) -> ListSnapshot:
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key == "paused":
            changes["list_state"] = "paused" if _bool(value, key) else "open"
        elif key == "can_reserve":
            changes["can_reserve_state"] = "open" if _bool(value, key) else "closed"
        elif key in ("list_state", "dialer_state", "can_reserve_state"):
            changes[key] = str(value).strip().lower()
        elif key == "notes":
            changes[key] = "" if value is None else str(value)
        elif key == "last_pull":
            changes[key] = _last_pull(value, tz)
        elif key in ("weight", "added", "completed", "pulled"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{key} must be a whole number, not {value!r}")
            changes[key] = value
    return replace(base, **changes)


def _bool(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, not {value!r}")
    return value


def _last_pull(value: object, tz: ZoneInfo) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return localize(value, tz)
    return localize(datetime.fromisoformat(str(value).strip()), tz)


def _check(result: RuleTestResult, number: int, step: Step, plan: CampaignPlan) -> None:
    decisions = {d.list: d for d in plan.decisions}
    if step.stopped is not None:
        result.expectations += 1
        if step.stopped != plan.stopped:
            said = "a guardrail stop" if step.stopped else "no guardrail stop"
            got = "; ".join(s.reason for s in plan.stops) or "no stop"
            result.failures.append(Failure(number, step.at, None, f"expected {said}, got: {got}"))
    for name, raw in step.expect.items():
        expectation = raw or Expectation()
        result.expectations += 1
        if plan.snapshot.get(name) is None:
            result.failures.append(Failure(number, step.at, name, "no such list in this step"))
            continue
        problem = _compare(expectation, decisions.get(name), plan, name)
        if problem is not None:
            result.failures.append(Failure(number, step.at, name, problem))


def _compare(
    expected: Expectation, decision: Decision | None, plan: CampaignPlan, name: str
) -> str | None:
    got = _describe_got(decision, plan, name)
    if not expected.expects_change:
        if decision is not None:
            return f"expected no change; got {got}"
        return _compare_facts(expected, plan, name)
    if decision is None:
        return f"expected {_describe_expected(expected)}; got no change ({got})"
    mismatch = (
        (expected.weight is not None and expected.weight != decision.after_weight)
        or (expected.paused is not None and expected.paused != decision.after_paused)
        or (expected.rules is not None and tuple(expected.rules) != decision.rules)
        or (
            expected.reason_contains is not None and expected.reason_contains not in decision.reason
        )
    )
    if mismatch:
        return f"expected {_describe_expected(expected)}; got {got}"
    return _compare_facts(expected, plan, name)


def _compare_facts(expected: Expectation, plan: CampaignPlan, name: str) -> str | None:
    facts = plan.evaluation.facts[name]
    wrong = []
    for fact, want in expected.facts.items():
        if fact not in facts:
            wrong.append(f"{fact}: no such fact")
            continue
        have = facts[fact]
        if not _same(want, have):
            wrong.append(f"{fact}: expected {want!r}, got {_show(have)}")
    return "facts " + "; ".join(wrong) if wrong else None


def _same(want: object, have: object) -> bool:
    if isinstance(want, bool) or isinstance(have, bool) or want is None or have is None:
        return want is have or want == have
    if isinstance(want, int | float) and isinstance(have, int | float):
        return math.isclose(want, have, rel_tol=1e-3, abs_tol=1e-3)
    if isinstance(have, tuple) and isinstance(want, list):
        return list(have) == want
    if isinstance(have, datetime):
        return str(want) in (have.strftime("%Y-%m-%d %H:%M"), have.isoformat())
    return str(want) == str(have)


def _show(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return repr(value)


def _describe_expected(expected: Expectation) -> str:
    parts = []
    if expected.weight is not None:
        parts.append(f"weight {expected.weight}")
    if expected.paused is not None:
        parts.append(f"paused {'yes' if expected.paused else 'no'}")
    if expected.rules is not None:
        parts.append(f"rules [{', '.join(expected.rules)}]")
    if expected.reason_contains is not None:
        parts.append(f"reason containing {expected.reason_contains!r}")
    return ", ".join(parts)


def _describe_got(decision: Decision | None, plan: CampaignPlan, name: str) -> str:
    if decision is None:
        item = plan.snapshot.get(name)
        evaluated = plan.evaluation.lists.get(name)
        if item is None or evaluated is None:
            return "nothing"
        return (
            f"weight {item.weight}, paused {'yes' if item.paused else 'no'}, "
            f"rules [{', '.join(evaluated.fired)}]"
        )
    return (
        f"weight {decision.before_weight} → {decision.after_weight}, paused "
        f"{'yes' if decision.before_paused else 'no'} → "
        f"{'yes' if decision.after_paused else 'no'}, rules [{', '.join(decision.rules)}] "
        f"({decision.reason})"
    )


def run_test_files(paths: Sequence[Path]) -> list[RuleTestResult | RuleTestFileError]:
    """Run every file; an unreadable file is returned as its error, the others still run."""
    results: list[RuleTestResult | RuleTestFileError] = []
    for path in paths:
        try:
            results.append(run_test_file(path))
        except RuleTestFileError as exc:
            results.append(exc)
    return results
