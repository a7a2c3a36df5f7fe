"""Scenario files: the lists, numbers, deadlines, agents and shifts an emulator run starts from.

A scenario is YAML validated by pydantic models (unknown keys are errors), so a typo in a
shipped or hand-written scenario fails loudly with the file and the field path instead of
silently running a different experiment. Times in a scenario are QM local time in the
scenario's ``timezone``.
"""

from __future__ import annotations

import typing
from datetime import UTC, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from mixer.deadline_tag import DEADLINE_TAG
from mixer.durations import parse_duration
from mixer.errors import ConfigError
from mixer.opsfiles.fields import Duration, parse_local_deadline
from mixer.opsfiles.marked_yaml import KeyPath, key_lines, load_yaml, syntax_error_at
from mixer.opsfiles.problems import did_you_mean, key_path
from mixer.opsfiles.reading import UnreadableFile, read_text

__all__ = [
    "AgentShift",
    "CampaignSpec",
    "HandlingTime",
    "ListSpec",
    "NumberBatch",
    "Outcomes",
    "Scenario",
    "load_scenario",
    "parse_local_time",
    "scenario_json_schema",
    "shipped_scenarios",
]


def parse_local_time(text: str) -> datetime:
    """``"YYYY-MM-DD HH:MM[:SS]"`` -> naive local datetime (ValueError if not)."""
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a local time like '2024-04-22 08:00'")


def _parse_deadline(text: str) -> datetime:
    """A deadline as rule files write one (a date alone is the end of that day), in QM
    local time: it also becomes the list's notes tag, which the mixer reads as local."""
    moment = parse_local_deadline(text)
    if moment.tzinfo is not None:
        raise ValueError(f"deadline {text.strip()!r}: leave out the UTC offset (QM local time)")
    return moment


def _parse_clock(text: str) -> time | None:
    """``"HH:MM"`` -> time; ``"24:00"`` -> None (end of day)."""
    if text.strip() == "24:00":
        return None
    try:
        return datetime.strptime(text.strip(), "%H:%M").time()
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a time of day like '08:00'") from exc


Span = Annotated[Duration, Field(description="a duration like '3m', '2h', '1d 4h'")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NumberBatch(_Model):
    """Numbers added to a list later in the run (an operator uploading a refill)."""

    at: str = Field(
        description="when: local 'YYYY-MM-DD HH:MM', or an offset from start like '2d 3h'"
    )
    numbers: int = Field(ge=1, description="how many numbers are added")

    @field_validator("at")
    @classmethod
    def _check_at(cls, value: str) -> str:
        try:
            parse_local_time(value)
        except ValueError:
            parse_duration(value)
        return value

    def when(self, start_local: datetime) -> datetime:
        """The naive local time of this batch given the scenario's naive local start."""
        try:
            return parse_local_time(self.at)
        except ValueError:
            return start_local + parse_duration(self.at)


class ListSpec(_Model):
    """One call list at the start of the run."""

    name: str = Field(min_length=1)
    numbers: int = Field(ge=0, description="numbers in the list at start")
    weight: int = Field(default=10, ge=0, description="the mixer weight QM starts with")
    paused: bool = False
    notes: str = ""
    deadline: str | None = Field(
        default=None,
        description="local 'YYYY-MM-DD[ HH:MM]' (date only = end of that day); also "
        "written into listNotes as a 'deadline: ...' tag",
    )
    tags: list[str] = Field(default_factory=list)
    standby: bool = Field(default=False, description="a paused reserve rules may resume")
    completed: int = Field(default=0, ge=0, description="numbers already final at start")
    first_number_id: int | None = Field(
        default=None, ge=1, description="numberId of the first number (ids are consecutive)"
    )
    add: list[NumberBatch] = Field(default_factory=list)

    @field_validator("deadline")
    @classmethod
    def _check_deadline(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_deadline(value)
        return value

    @model_validator(mode="after")
    def _check_completed(self) -> ListSpec:
        if self.completed > self.numbers:
            raise ValueError("'completed' cannot exceed 'numbers'")
        return self

    def deadline_local(self) -> datetime | None:
        return None if self.deadline is None else _parse_deadline(self.deadline)

    def notes_with_deadline(self) -> str:
        """The listNotes QM shows: the notes plus a ``deadline: ...`` tag the mixer reads."""
        if self.deadline is None or DEADLINE_TAG.search(self.notes):
            return self.notes
        tag = f"deadline: {self.deadline.strip()}"
        return f"{self.notes}; {tag}" if self.notes else tag


class CampaignSpec(_Model):
    lists: list[ListSpec] = Field(default_factory=list)

    @field_validator("lists")
    @classmethod
    def _unique_names(cls, value: list[ListSpec]) -> list[ListSpec]:
        seen: set[str] = set()
        for item in value:
            if item.name in seen:
                raise ValueError(f"list {item.name!r} appears twice")
            seen.add(item.name)
        return value


class AgentShift(_Model):
    """``count`` agents working ``from``-``to`` local time on ``weekdays`` (0 = Monday)."""

    campaign: str | None = Field(default=None, description="omit: the agents serve every campaign")
    start: str = Field(alias="from", description="'HH:MM' local")
    end: str = Field(alias="to", description="'HH:MM' local ('24:00' = midnight)")
    count: int = Field(ge=0)
    weekdays: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])

    @field_validator("start", "end")
    @classmethod
    def _check_clock(cls, value: str) -> str:
        _parse_clock(value)
        return value

    @field_validator("weekdays")
    @classmethod
    def _check_weekdays(cls, value: list[int]) -> list[int]:
        if any(day < 0 or day > 6 for day in value):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        return sorted(set(value))

    @model_validator(mode="after")
    def _check_order(self) -> AgentShift:
        if self.start_offset() >= self.end_offset():
            raise ValueError("'to' must be later than 'from' on the same day")
        return self

    def start_offset(self) -> timedelta:
        moment = _parse_clock(self.start)
        assert moment is not None  # "24:00" as a start fails the order check anyway
        return timedelta(hours=moment.hour, minutes=moment.minute)

    def end_offset(self) -> timedelta:
        moment = _parse_clock(self.end)
        if moment is None:
            return timedelta(days=1)
        return timedelta(hours=moment.hour, minutes=moment.minute)


class HandlingTime(_Model):
    """A uniform range of call handling times."""

    min: Span
    max: Span

    @model_validator(mode="after")
    def _check_order(self) -> HandlingTime:
        if self.min > self.max or self.min <= timedelta(0):
            raise ValueError("need 0 < min <= max")
        return self


class Outcomes(_Model):
    """Probabilities of each call's outcome; normalised to sum 1."""

    success: float = Field(default=0.7, ge=0)
    reschedule: float = Field(default=0.2, ge=0)
    fail: float = Field(default=0.1, ge=0)

    @model_validator(mode="after")
    def _check_sum(self) -> Outcomes:
        if self.success + self.reschedule + self.fail <= 0:
            raise ValueError("outcome probabilities must not all be 0")
        return self


class Scenario(_Model):
    """A whole emulator run. ``start`` is timezone-aware once validated."""

    description: str = ""
    start: datetime = Field(
        description="QM local time 'YYYY-MM-DD HH:MM', or 'now' (the moment it is loaded)"
    )
    duration: Span = Field(default=timedelta(days=1))
    timezone: str = "Europe/Zurich"
    seed: int = 1
    campaigns: dict[str, CampaignSpec]
    agents: list[AgentShift] = Field(default_factory=list)
    handling_time: HandlingTime = Field(
        default_factory=lambda: HandlingTime(min=timedelta(minutes=3), max=timedelta(minutes=3))
    )
    outcomes: Outcomes = Field(default_factory=Outcomes)
    reschedule_after: Span = Field(default=timedelta(hours=2))
    max_attempts: int = Field(
        default=3,
        ge=1,
        description="calls per number at most: the call that reaches this many attempts is "
        "final, so a number is rescheduled at most max_attempts - 1 times",
    )
    _name: str = PrivateAttr(default="")

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value
        if str(value).strip().lower() == "now":  # the moment the file is loaded
            return datetime.now(UTC).replace(second=0, microsecond=0)
        return parse_local_time(str(value))

    @field_validator("handling_time", mode="before")
    @classmethod
    def _handling(cls, value: Any) -> Any:
        if isinstance(value, str | int | float):
            span = parse_duration(value)
            return {"min": span, "max": span}
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _localise(self) -> Scenario:
        if self.start.tzinfo is None:
            self.start = self.start.replace(tzinfo=self.tz)
        for index, shift in enumerate(self.agents):
            if shift.campaign is not None and shift.campaign not in self.campaigns:
                raise ValueError(
                    f"agents[{index}].campaign {shift.campaign!r} is not a campaign here"
                )
        return self

    @property
    def name(self) -> str:
        """The file stem it was loaded from ("" when built in code)."""
        return self._name

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def end(self) -> datetime:
        return self.start + self.duration

    def local(self, naive: datetime) -> datetime:
        """Attach the scenario time zone to a naive local time."""
        return naive.replace(tzinfo=self.tz)


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema of scenario files, for ``amo-mixer schema`` and editors."""
    return Scenario.model_json_schema(by_alias=True, mode="validation")


def _scenario_dir() -> Path:
    return Path(str(resources.files("mixer.emulator").joinpath("scenarios")))


def shipped_scenarios() -> list[str]:
    """Names of the scenarios shipped in the package, sorted."""
    return sorted(path.stem for path in _scenario_dir().glob("*.yaml"))


def _scenario_problem(path: Path, lines: dict[KeyPath, int], error: Any) -> str:
    """``file:line: at 'path': message``, with "did you mean" for an unknown key."""
    loc: KeyPath = tuple(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        hint = did_you_mean(str(loc[-1]), _keys_beside(loc))
        message = f"unknown key '{loc[-1]}'" + (f" ({hint})" if hint else "")
    line = next((lines[loc[:d]] for d in range(len(loc), 0, -1) if loc[:d] in lines), 1)
    return f"{path}:{line}: at '{key_path(loc) or '(top level)'}': {message}"


def _keys_beside(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the scenario schema allows where the last part of ``loc`` stands."""
    model: type[BaseModel] = Scenario
    for part in loc[:-1]:
        if isinstance(part, int) or part not in model.model_fields:
            continue  # a list index, or a campaign name (a dict key)
        found = _model_in(model.model_fields[part].annotation)
        if found is None:
            return []
        model = found
    return [info.alias or name for name, info in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, directly or inside list[...] / dict[str, ...] / Optional."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A shipped scenario by name (``"deadline-crunch"``) or a YAML file by path."""
    path = Path(name_or_path)
    if isinstance(name_or_path, str) and name_or_path in shipped_scenarios():
        path = _scenario_dir() / f"{name_or_path}.yaml"
    elif not path.is_file():
        raise ConfigError(
            f"scenario {str(name_or_path)!r} not found: give a YAML path or one of "
            f"{', '.join(shipped_scenarios())}"
        )
    try:
        raw, _ = load_yaml(read_text(path))
    except UnreadableFile as exc:
        raise ConfigError(f"cannot read scenario {path}: {exc.reason}") from exc
    except yaml.YAMLError as exc:
        mark, what = syntax_error_at(exc)
        where = f"{path}:{mark.line}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: scenario is not valid YAML: {what}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a scenario must be a YAML mapping (start, campaigns, ...)")
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        problems = [_scenario_problem(path, key_lines(raw), err) for err in exc.errors()]
        if len(problems) == 1:
            raise ConfigError(f"invalid scenario {problems[0]}") from exc
        raise ConfigError(f"invalid scenario {path}: {len(problems)} problems", problems) from exc
    scenario._name = path.stem
    return scenario
