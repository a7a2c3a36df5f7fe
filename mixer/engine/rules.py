"""Rule files: the pydantic models, loading with line numbers, compiling, the rule set.

Loading never stops at the first mistake: every problem of every file (broken YAML,
unknown keys, wrong types, bad durations, duplicate names, expression errors) is
collected with its file, line, rule name and a caret under the spot, and raised at once
as ``RuleLoadError``. Expressions are compiled here, once; evaluation only calls them.
"""

from __future__ import annotations

import difflib
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from mixer.durations import HINT as DURATION_HINT
from mixer.durations import DurationTooLongError, parse_duration
from mixer.engine.expressions import (
    Expression,
    ExpressionError,
    ValueType,
    compile_expression,
)
from mixer.engine.facts import FACT_TYPES
from mixer.engine.format_specs import spec_problem
from mixer.engine.metadata import ListEntry, ListMetadata, Scalar, merge_metadata
from mixer.engine.names import glob_matches
from mixer.errors import MixerError
from mixer.yaml_aliases import NoAliasesMixin

__all__ = [
    "CampaignRules",
    "ListMetadata",
    "Rule",
    "RuleFile",
    "RuleLoadError",
    "RuleProblem",
    "RuleSet",
    "load_rules",
    "rules_json_schema",
]

# ---------------------------------------------------------------------------------------
# Problems


@dataclass(frozen=True)
class RuleProblem:
    """One mistake in a rule file, located for a person to fix."""

    file: str
    line: int
    rule: str | None
    message: str
    excerpt: str | None = None  # the source line and a caret line under the spot

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: "
        if self.rule is not None:
            where += f"rule '{self.rule}': "
        text = where + self.message
        if self.excerpt:
            text += "\n" + self.excerpt
        return text


class RuleLoadError(MixerError):
    """Rule files that cannot be used; ``problems`` lists every problem of every file."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        count = len(problems)
        first = problems[0] if problems else None
        where = f" (first: {first.file}:{first.line})" if first else ""
        super().__init__(
            f"{count} problem(s) in the rule files{where}: fix them, then run amo-mixer check"
        )
        self.problems = problems


# ---------------------------------------------------------------------------------------
# Durations: the grammar of mixer.durations (the same as in the config and on the
# command line), with messages that say what a rule file accepts.


def _duration(value: object) -> object:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"invalid duration {value!r}: {DURATION_HINT}")
    try:
        return parse_duration(value)
    except DurationTooLongError as exc:
        raise ValueError(f"invalid duration {value!r}: {exc.reason}") from None
    except ValueError:
        reason = DURATION_HINT if isinstance(value, str) else "it must be 0 or more seconds"
        raise ValueError(f"invalid duration {value!r}: {reason}") from None


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*)+$"},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*$"},
                {"type": "number", "minimum": 0},
            ],
            "description": "a duration: 90s, 15m, 1h, 2d, 1w or combined (1h30m); "
            "a plain number is seconds",
        }
    ),
]


# ---------------------------------------------------------------------------------------
# The file models (also the source of the JSON Schema)


def _names_match(value: object) -> object:
    if isinstance(value, str):
        return {"names": [value]}
    if isinstance(value, list):
        return {"names": value}
    return value


def _weight_value(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"weight must be a number or an expression string, not {value!r}")
    return value


_STRINGS_SCHEMA: dict[str, Any] = {"type": "array", "items": {"type": "string"}}


class MatchSpec(BaseModel):
    """Which lists a rule applies to: a name glob, a list of globs, or names and tags."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    names: list[str] = Field(default_factory=list, description="list-name globs (any)")
    tags: list[str] = Field(default_factory=list, description="tags from `lists:` (any)")


Match = Annotated[
    MatchSpec,
    BeforeValidator(_names_match),
    WithJsonSchema(
        {
            "description": "a list-name glob, a list of globs, or {names: [...], tags: [...]}",
            "anyOf": [
                {"type": "string"},
                _STRINGS_SCHEMA,
                {
                    "type": "object",
                    "properties": {"names": _STRINGS_SCHEMA, "tags": _STRINGS_SCHEMA},
                    "additionalProperties": False,
                },
            ],
        }
    ),
]


class SetModel(BaseModel):
    """What a firing rule sets: a weight (number or expression) and/or the paused flag."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weight: Annotated[float | str | None, BeforeValidator(_weight_value)] = Field(
        None, description="a number or an expression such as 'base_weight * 3'"
    )
    paused: StrictBool | None = Field(None, description="pause (true) or resume (false)")


class RuleModel(BaseModel):
    """One rule: when its condition holds for a matching list, it sets weight/paused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, description="unique name, used in logs")
    description: str | None = Field(
        None, description="one sentence for the decision log; {fact} placeholders allowed"
    )
    match: Match | None = Field(None, description="which lists (default: every list)")
    when: str | StrictBool = Field(
        True, description="a condition expression over facts (default: always)"
    )
    for_: Duration | None = Field(
        None, alias="for", description="the condition must hold this long before firing"
    )
    cooldown: Duration | None = Field(
        None, description="minimum time between this rule coming into and out of effect"
    )
    set_: SetModel = Field(alias="set", description="what the rule sets")
    stop: StrictBool = Field(False, description="no later rule is evaluated for the list")
    enabled: StrictBool = Field(True, description="false switches the rule off")


class ListEntryModel(BaseModel):
    """Facts QM does not carry, for lists whose name matches; extra scalar fields become
    facts of the same name."""

    model_config = ConfigDict(extra="allow", frozen=True)

    match: str | list[str] = Field(description="list-name glob(s)")
    deadline: str | datetime | date | None = Field(
        None, description="YYYY-MM-DD[ HH:MM] in QM local time; a date alone = end of day"
    )
    tags: list[str] = Field(default_factory=list, description="tags (they accumulate)")
    priority: StrictInt | None = Field(None, description="a rank for rules to read")
    standby: StrictBool | None = Field(
        None, description="a reserve list that rules may resume even though a human paused it"
    )
    weight: StrictInt | None = Field(None, ge=0, description="the baseline weight")

    @field_validator("deadline")
    @classmethod
    def _check_deadline(cls, value: object) -> object:
        if isinstance(value, str):
            _parse_local_deadline(value)
        return value


class RulesFileModel(BaseModel):
    """A rules file: which campaigns it serves, list metadata and the rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaigns: str | list[str] | None = Field(
        None, description="campaign-name globs (default: every campaign)"
    )
    lists: list[ListEntryModel] = Field(default_factory=list, description="list metadata")
    rules: list[RuleModel] = Field(default_factory=list, description="the rules, in order")


def rules_json_schema() -> dict[str, Any]:
    """The JSON Schema of a rules file, from the models that validate it."""
    schema = RulesFileModel.model_json_schema(by_alias=True)
    schema["title"] = "amo-mixer rules file"
    return schema


def _parse_local_deadline(text: str) -> datetime:
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text) + timedelta(days=1), time())
        return datetime.fromisoformat(text.replace("T", " "))
    except ValueError:
        raise ValueError(
            f"invalid deadline {text!r}: use YYYY-MM-DD or YYYY-MM-DD HH:MM (QM local time)"
        ) from None


def _deadline_value(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else value
    if isinstance(value, date):
        return datetime.combine(value + timedelta(days=1), time())
    return _parse_local_deadline(str(value))


# ---------------------------------------------------------------------------------------
# Compiled rules and the rule set


@dataclass(frozen=True)
class Rule:
    """A compiled rule, ready to evaluate."""

    name: str
    file: str
    line: int
    description: str | None
    names: tuple[str, ...]  # name globs; empty = any name
    tags: tuple[str, ...]  # tags; empty = any tags
    when: Expression | None  # None = the constant in when_source ("true" or "false")
    when_source: str
    for_: timedelta | None
    cooldown: timedelta | None
    weight: float | Expression | None
    weight_source: str | None
    paused: bool | None
    stop: bool
    enabled: bool

    def matches(self, list_name: str, tags: Iterable[str]) -> bool:
        """Name matches one glob (if any given) and the list has one tag (if any given)."""
        if self.names:
            hits = self._name_hits
            hit = hits.get(list_name)
            if hit is None:
                hit = any(glob_matches(list_name, g) for g in self.names)
                if len(hits) >= _NAME_HITS_KEPT:  # list names come and go: stay bounded
                    hits.clear()
                hits[list_name] = hit
            if not hit:
                return False
        return not self.tags or not self.tag_set.isdisjoint(tags)

    # Derived once per rule (the rule is immutable) and kept: evaluation reads them for
    # every list of every cycle.

    @cached_property
    def _name_hits(self) -> dict[str, bool]:
        """Whether a list name matches the globs, per name seen: every cycle asks again."""
        return {}

    @cached_property
    def matches_every_list(self) -> bool:
        """No name glob and no tag: ``matches`` is true for every list."""
        return not self.names and not self.tags

    @cached_property
    def tag_set(self) -> frozenset[str]:
        return frozenset(self.tags)

    @cached_property
    def placeholders(self) -> tuple[str, ...]:
        """The description's ``{fact}`` placeholders, in order."""
        return tuple(description_fields(self.description))

    @cached_property
    def when_names(self) -> tuple[str, ...]:
        """The facts ``when`` reads, sorted."""
        return tuple(sorted(self.when.names)) if self.when is not None else ()

    @cached_property
    def weight_names(self) -> tuple[str, ...]:
        """The facts an expression ``set.weight`` reads, sorted."""
        return tuple(sorted(self.weight.names)) if isinstance(self.weight, Expression) else ()

    @cached_property
    def constant_effect(self) -> Mapping[str, object] | None:
        """What ``set`` does while the rule is in effect, when that reads no fact: the
        pause state, then the weight. None when ``set.weight`` is an expression or
        ``set`` is empty. Shared: read it, never change it."""
        if isinstance(self.weight, Expression):
            return None
        effect: dict[str, object] = {}
        if self.paused is not None:
            effect["paused"] = self.paused
        if self.weight is not None:
            effect["weight"] = self.weight
        return effect or None

    @cached_property
    def reads(self) -> frozenset[str]:
        """Every fact the rule's condition, weight and description read."""
        return frozenset(self.when_names) | frozenset(self.weight_names) | set(self.placeholders)

    @cached_property
    def sorted_reads(self) -> tuple[str, ...]:
        """``reads``, sorted: the order traces and decision records show them in."""
        return tuple(sorted(self.reads))


@dataclass(frozen=True)
class RuleFile:
    """One loaded file."""

    path: str
    campaigns: tuple[str, ...]  # globs; empty = every campaign
    lists: tuple[ListEntry, ...]
    rules: tuple[Rule, ...]

    def applies_to(self, campaign: str) -> bool:
        return not self.campaigns or any(glob_matches(campaign, g) for g in self.campaigns)


# At most this many list names keep their merged metadata per campaign, and their
# name-glob result per rule.
_METADATA_KEPT = _NAME_HITS_KEPT = 10_000


@dataclass(frozen=True)
class CampaignRules:
    """The rules and list metadata that apply to one campaign, in order."""

    campaign: str
    rules: tuple[Rule, ...]
    lists: tuple[ListEntry, ...] = ()
    fact_types: Mapping[str, ValueType] = field(default_factory=lambda: dict(FACT_TYPES))
    # Merged metadata per list name: the entries never change once loaded, and every
    # cycle asks for every list's (reconciliation and facts), so each is merged once.
    _metadata: dict[str, ListMetadata] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def metadata_for(self, list_name: str) -> ListMetadata:
        """Every ``lists:`` entry matching ``list_name``, merged (immutable, kept)."""
        found = self._metadata.get(list_name)
        if found is None:
            if len(self._metadata) >= _METADATA_KEPT:  # list names come and go: stay bounded
                self._metadata.clear()
            found = self._metadata[list_name] = merge_metadata(self.lists, list_name)
        return found


@dataclass(frozen=True)
class RuleSet:
    """Every loaded rule file, in the order they apply."""

    files: tuple[RuleFile, ...]
    fact_types: Mapping[str, ValueType] = field(default_factory=lambda: dict(FACT_TYPES))
    # One CampaignRules per campaign name, kept: the cycle asks every cycle, and the same
    # object keeps its merged metadata from cycle to cycle.
    _campaigns: dict[str, CampaignRules] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def for_campaign(self, campaign: str) -> CampaignRules:
        """The rules and ``lists:`` entries of the files that apply to ``campaign``, in
        order; the same object for the same name."""
        found = self._campaigns.get(campaign)
        if found is not None:
            return found
        chosen = [f for f in self.files if f.applies_to(campaign)]
        found = CampaignRules(
            campaign=campaign,
            rules=tuple(r for f in chosen for r in f.rules),
            lists=tuple(e for f in chosen for e in f.lists),
            fact_types=self.fact_types,
        )
        return self._campaigns.setdefault(campaign, found)


def description_fields(description: str | None) -> list[str]:
    """The ``{fact}`` placeholders of a description, in order."""
    if not description:
        return []
    try:
        return [f for _, f, _, _ in string.Formatter().parse(description) if f]
    except ValueError:
        return []


# ---------------------------------------------------------------------------------------
# YAML with positions


@dataclass(frozen=True)
class _Mark:
    line: int  # 1-based
    column: int  # 0-based
    style: str | None = None


class _LineDict(dict[Any, Any]):
    key_marks: dict[Any, _Mark]
    value_marks: dict[Any, _Mark]
    mark: _Mark


class _LineList(list[Any]):
    item_marks: list[_Mark]
    mark: _Mark


def _mark(node: yaml.Node) -> _Mark:
    style = getattr(node, "style", None)
    return _Mark(node.start_mark.line + 1, node.start_mark.column, style)


class _Loader(NoAliasesMixin, yaml.SafeLoader):
    """A safe loader that remembers where each key and value is, and duplicate keys."""

    duplicates: list[tuple[str, _Mark]]


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    result = _LineDict()
    result.key_marks, result.value_marks, result.mark = {}, {}, _mark(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        value = loader.construct_object(value_node, deep=True)
        if key in result:
            loader.duplicates.append((str(key), _mark(key_node)))
        try:
            result[key] = value
        except TypeError:  # an unhashable key: report it as a string key
            key = str(key)
            result[key] = value
        result.key_marks[key] = _mark(key_node)
        result.value_marks[key] = _mark(value_node)
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    result = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.item_marks = [_mark(child) for child in node.value]
    result.mark = _mark(node)
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _load_yaml(text: str) -> tuple[Any, list[tuple[str, _Mark]]]:
    loader = _Loader(text)
    loader.duplicates = []
    try:
        return loader.get_single_data(), loader.duplicates
    finally:
        loader.dispose()


def _locate(data: Any, loc: Sequence[int | str]) -> tuple[_Mark | None, bool]:
    """The mark of the deepest element of ``loc`` found, and whether it is a key."""
    mark: _Mark | None = getattr(data, "mark", None)
    is_key = False
    node = data
    for part in loc:
        if isinstance(node, _LineDict) and part in node:
            mark, is_key = node.value_marks[part], False
            node = node[part]
        elif isinstance(node, _LineDict) and part in node.key_marks:
            mark, is_key = node.key_marks[part], True
            break
        elif isinstance(node, _LineList) and isinstance(part, int) and part < len(node):
            mark, is_key = node.item_marks[part], False
            node = node[part]
        else:
            break
    return mark, is_key


def _key_mark(data: Any, loc: Sequence[int | str]) -> _Mark | None:
    """The mark of the key at the end of ``loc``."""
    parent, _ = _walk(data, loc[:-1])
    if isinstance(parent, _LineDict):
        return parent.key_marks.get(loc[-1])
    return None


def _without(raw: Any, locs: Iterable[tuple[int | str, ...]]) -> Any:
    """A deep copy of ``raw`` without the keys at ``locs`` (the broken ones)."""
    import copy

    trimmed = copy.deepcopy(raw)
    for loc in locs:
        if not loc:
            continue
        parent, found = _walk(trimmed, loc[:-1])
        if found and isinstance(parent, dict) and loc[-1] in parent:
            del parent[loc[-1]]
    return trimmed


def _walk(data: Any, loc: Sequence[int | str]) -> tuple[Any, bool]:
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if not (in_dict or in_list):
            return None, False
        node = node[part]
    return node, True


# ---------------------------------------------------------------------------------------
# Loading


def load_rules(paths: Sequence[Path], *, extra_texts: Sequence[tuple[str, str]] = ()) -> RuleSet:
    """Load, validate and compile rule files (applied in sorted path order).

    ``extra_texts`` are ``(name, YAML text)`` pairs applied after the files (``amo-mixer
    test`` passes a test file's own ``lists:`` this way). Raises ``RuleLoadError`` listing
    every problem of every file.
    """
    loader = _FileLoader()
    ordered = [str(p) for p in sorted(Path(p) for p in paths)]
    parsed = [loader.parse(Path(p)) for p in ordered]
    parsed += [loader.parse_text(name, text) for name, text in extra_texts]
    ordered += [name for name, _ in extra_texts]
    fact_types = dict(FACT_TYPES)
    fact_types.update(loader.extra_types)
    files = [loader.compile(item, fact_types) for item in parsed if item is not None]
    if loader.problems:
        order = {name: i for i, name in enumerate(ordered)}
        problems = sorted(loader.problems, key=lambda p: (order.get(p.file, -1), p.line))
        raise RuleLoadError(problems)
    return RuleSet(files=tuple(files), fact_types=fact_types)


@dataclass
class _Parsed:
    path: str
    lines: list[str]
    data: Any
    model: RulesFileModel | None
    campaigns: tuple[str, ...]
    entries: list[ListEntry]
    rules: list[tuple[int, RuleModel]]
    salvaged: set[int] = field(default_factory=set)  # rules valid once broken keys dropped


_FILE_KEYS = ("campaigns", "lists", "rules")


class _FileLoader:
    def __init__(self) -> None:
        self.problems: list[RuleProblem] = []
        self.extra_types: dict[str, ValueType] = {}
        self._extra_where: dict[str, str] = {}
        self._rule_where: dict[str, str] = {}

    def problem(
        self,
        path: str,
        lines: list[str],
        mark: _Mark | None,
        rule: str | None,
        message: str,
        width: int = 1,
    ) -> None:
        line = mark.line if mark else 1
        excerpt = None
        if mark is not None and 0 < mark.line <= len(lines):
            excerpt = _excerpt(lines[mark.line - 1], mark.column, width)
        self.problems.append(RuleProblem(path, line, rule, message, excerpt))

    # -- pass 1: YAML and models --------------------------------------------------------

    def parse(self, path: Path) -> _Parsed | None:
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            self.problems.append(RuleProblem(name, 1, None, f"cannot read: {exc.strerror}"))
            return None
        except UnicodeDecodeError:
            self.problems.append(RuleProblem(name, 1, None, "not UTF-8 text"))
            return None
        return self.parse_text(name, text)

    def parse_text(self, name: str, text: str) -> _Parsed | None:
        lines = text.splitlines()
        try:
            data, duplicates = _load_yaml(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = _Mark(mark.line + 1, mark.column) if mark else None
            what = exc.problem or exc.context or "unreadable"
            self.problem(name, lines, where, None, f"invalid YAML: {what}")
            return None
        except yaml.YAMLError as exc:
            self.problems.append(RuleProblem(name, 1, None, f"invalid YAML: {exc}"))
            return None
        for key, key_mark in duplicates:
            self.problem(name, lines, key_mark, None, f"duplicate key '{key}'", len(key))
        if data is None:
            data = _LineDict()
            data.key_marks, data.value_marks, data.mark = {}, {}, _Mark(1, 0)
        if not isinstance(data, dict):
            self.problem(
                name,
                lines,
                getattr(data, "mark", _Mark(1, 0)),
                None,
                "a rules file must be a mapping with campaigns, lists and rules",
            )
            return None
        parsed = _Parsed(name, lines, data, None, (), [], [])
        try:
            parsed.model = RulesFileModel.model_validate(data)
        except ValidationError as exc:
            self._report_validation(parsed, exc)
            self._salvage(parsed)
        else:
            campaigns = parsed.model.campaigns
            parsed.campaigns = (
                (campaigns,) if isinstance(campaigns, str) else tuple(campaigns or ())
            )
            parsed.rules = list(enumerate(parsed.model.rules))
            for index, entry in enumerate(parsed.model.lists):
                self._entry(parsed, index, entry)
        return parsed

    def _salvage(self, parsed: _Parsed) -> None:
        """After validation errors, keep the parts that are valid so their expressions
        are checked too."""
        data = parsed.data
        campaigns = data.get("campaigns")
        if isinstance(campaigns, str):
            parsed.campaigns = (campaigns,)
        elif isinstance(campaigns, list):
            parsed.campaigns = tuple(str(c) for c in campaigns)
        raw_rules = data.get("rules")
        for index, raw in enumerate(raw_rules if isinstance(raw_rules, list) else ()):
            try:
                parsed.rules.append((index, RuleModel.model_validate(raw)))
            except ValidationError as exc:
                # Already reported: check the rest of the rule (its expressions, its name)
                # without the broken keys, so one typo does not hide the next problem.
                trimmed = _without(raw, [tuple(e["loc"]) for e in exc.errors()])
                try:
                    parsed.rules.append((index, RuleModel.model_validate(trimmed)))
                    parsed.salvaged.add(index)
                except ValidationError:
                    continue
        raw_lists = data.get("lists")
        for index, raw in enumerate(raw_lists if isinstance(raw_lists, list) else ()):
            try:
                self._entry(parsed, index, ListEntryModel.model_validate(raw))
            except ValidationError:
                continue

    def _report_validation(self, parsed: _Parsed, exc: ValidationError) -> None:
        for error in exc.errors():
            loc = tuple(error["loc"])
            rule = _rule_name(parsed.data, loc)
            kind = error["type"]
            if kind == "extra_forbidden":
                key = str(loc[-1])
                message = f"unknown key '{key}'" + _did_you_mean(key, _allowed_keys(loc))
                mark = _key_mark(parsed.data, loc)
                self.problem(parsed.path, parsed.lines, mark, rule, message, len(key))
                continue
            if kind == "missing":
                parent_loc = loc[:-1]
                mark, _ = _locate(parsed.data, parent_loc)
                message = f"missing required key '{loc[-1]}'"
                if parent_loc:
                    message += f" in {_path(parent_loc)}"
                self.problem(parsed.path, parsed.lines, mark, rule, message)
                continue
            mark, _ = _locate(parsed.data, loc)
            text = str(error["msg"]).removeprefix("Value error, ")
            message = f"{_path(loc)}: {text}" if _path(loc) else text
            self.problem(parsed.path, parsed.lines, mark, rule, message)

    def _entry(self, parsed: _Parsed, index: int, model: ListEntryModel) -> None:
        raw = parsed.data["lists"][index]
        extra: dict[str, Scalar] = {}
        for key, value in (model.model_extra or {}).items():
            mark = raw.key_marks.get(key) if isinstance(raw, _LineDict) else None
            where = f"lists[{index}].{key}"
            if not isinstance(key, str) or not key.isidentifier() or key in FACT_TYPES:
                reason = "is a built-in fact" if key in FACT_TYPES else "is not a valid fact name"
                self.problem(
                    parsed.path,
                    parsed.lines,
                    mark,
                    None,
                    f"{where}: extra field '{key}' {reason}",
                    len(str(key)),
                )
                continue
            kind = _scalar_type(value)
            if kind is None:
                self.problem(
                    parsed.path,
                    parsed.lines,
                    mark,
                    None,
                    f"{where}: an extra field must be a string, a number or true/false "
                    "(quote dates)",
                    len(key),
                )
                continue
            known = self.extra_types.get(key)
            if known is not None and known != kind:
                self.problem(
                    parsed.path,
                    parsed.lines,
                    mark,
                    None,
                    f"{where}: '{key}' is a {kind} here but a {known} at {self._extra_where[key]}",
                    len(key),
                )
                continue
            self.extra_types.setdefault(key, kind)
            line = mark.line if mark else 1
            self._extra_where.setdefault(key, f"{parsed.path}:{line}")
            extra[key] = value
        names = (model.match,) if isinstance(model.match, str) else tuple(model.match)
        line = raw.mark.line if isinstance(raw, _LineDict) else 1
        parsed.entries.append(
            ListEntry(
                names=names,
                file=parsed.path,
                line=line,
                deadline=_deadline_value(model.deadline),
                tags=tuple(model.tags),
                priority=model.priority,
                standby=model.standby,
                weight=model.weight,
                extra=extra,
            )
        )

    # -- pass 2: rules and their expressions --------------------------------------------

    def compile(self, parsed: _Parsed, fact_types: Mapping[str, ValueType]) -> RuleFile:
        seen: dict[str, int] = {}
        rules: list[Rule] = []
        for index, model in parsed.rules:
            raw = parsed.data["rules"][index]
            rule_mark = parsed.data["rules"].item_marks[index]
            name_mark = raw.value_marks.get("name", rule_mark)
            if model.name in seen:
                self.problem(
                    parsed.path,
                    parsed.lines,
                    name_mark,
                    model.name,
                    f"duplicate rule name (first defined at line {seen[model.name]})",
                    len(model.name),
                )
                continue
            seen[model.name] = name_mark.line
            if model.name in self._rule_where:
                self.problem(
                    parsed.path,
                    parsed.lines,
                    name_mark,
                    model.name,
                    f"rule name already used at {self._rule_where[model.name]}: rule names "
                    "must be unique across rule files",
                    len(model.name),
                )
                continue
            self._rule_where[model.name] = f"{parsed.path}:{name_mark.line}"
            rule = self._compile_rule(
                parsed, raw, rule_mark, model, fact_types, salvaged=index in parsed.salvaged
            )
            if rule is not None:
                rules.append(rule)
        return RuleFile(
            path=parsed.path,
            campaigns=parsed.campaigns,
            lists=tuple(parsed.entries),
            rules=tuple(rules),
        )

    def _compile_rule(
        self,
        parsed: _Parsed,
        raw: _LineDict,
        rule_mark: _Mark,
        model: RuleModel,
        fact_types: Mapping[str, ValueType],
        *,
        salvaged: bool,
    ) -> Rule | None:
        ok = True
        name = model.name
        setting = model.set_
        raw_set = raw.get("set")
        set_mark = raw.value_marks.get("set", rule_mark)
        if setting.weight is None and setting.paused is None and not salvaged:
            self.problem(
                parsed.path,
                parsed.lines,
                set_mark,
                name,
                "set: give weight and/or paused (it sets nothing)",
            )
            ok = False

        when: Expression | None = None
        when_source = "true"
        if isinstance(model.when, str):
            when_source = model.when
            compiled = self._expression(
                parsed, raw, "when", model.when, name, fact_types, ValueType.BOOL
            )
            ok = ok and compiled is not None
            when = compiled
        elif model.when is False:
            when_source = "false"

        weight: float | Expression | None = None
        weight_source: str | None = None
        if isinstance(setting.weight, str):
            weight_source = setting.weight
            holder = raw_set if isinstance(raw_set, _LineDict) else raw
            compiled = self._expression(
                parsed, holder, "weight", setting.weight, name, fact_types, ValueType.NUMBER
            )
            ok = ok and compiled is not None
            weight = compiled
        elif setting.weight is not None:
            weight = float(setting.weight)
            weight_source = f"{setting.weight:g}"

        for placeholder in description_fields(model.description):
            if not placeholder.isidentifier() or placeholder not in fact_types:
                mark = raw.value_marks.get("description", rule_mark)
                self.problem(
                    parsed.path,
                    parsed.lines,
                    mark,
                    name,
                    f"description: unknown fact '{{{placeholder}}}'"
                    + _did_you_mean(placeholder, fact_types),
                )
                ok = False
        if model.description is not None and not _format_ok(model.description):
            mark = raw.value_marks.get("description", rule_mark)
            self.problem(
                parsed.path,
                parsed.lines,
                mark,
                name,
                "description: unbalanced { } (write {{ or }} for a literal brace)",
            )
            ok = False
        elif model.description is not None and (wide := spec_problem(model.description)):
            mark = raw.value_marks.get("description", rule_mark)
            self.problem(parsed.path, parsed.lines, mark, name, wide)
            ok = False
        if not ok:
            return None
        match = model.match or MatchSpec()
        return Rule(
            name=name,
            file=parsed.path,
            line=rule_mark.line,
            description=model.description,
            names=tuple(match.names),
            tags=tuple(match.tags),
            when=when,
            when_source=when_source,
            for_=model.for_,
            cooldown=model.cooldown,
            weight=weight,
            weight_source=weight_source,
            paused=setting.paused,
            stop=model.stop,
            enabled=model.enabled,
        )

    def _expression(
        self,
        parsed: _Parsed,
        holder: _LineDict,
        key: str,
        source: str,
        rule: str,
        fact_types: Mapping[str, ValueType],
        expect: ValueType,
    ) -> Expression | None:
        try:
            return compile_expression(source, fact_types, expect=expect)
        except ExpressionError as exc:
            mark = holder.value_marks.get(key) or holder.mark
            line, excerpt = _expression_excerpt(parsed.lines, mark, source, exc)
            message = getattr(exc, "message", None) or str(exc)
            prefix = "when" if key == "when" else "set.weight"
            self.problems.append(
                RuleProblem(parsed.path, line, rule, f"{prefix}: {message}", excerpt)
            )
            return None


def _expression_excerpt(
    lines: list[str], mark: _Mark, source: str, exc: ExpressionError
) -> tuple[int, str]:
    """The file line holding the error and a caret under it; the expression alone with
    its caret when the file text cannot be matched (folded or escaped strings)."""
    offset = int(getattr(exc, "offset", 0) or 0)
    length = max(int(getattr(exc, "length", 1) or 1), 1)
    offset = min(max(offset, 0), len(source))
    before = source[:offset]
    src_line_index = before.count("\n")
    src_line = source.split("\n")[src_line_index]
    col_in_line = offset - (before.rfind("\n") + 1)
    start = mark.line - 1
    if mark.style in ("'", '"', None) and 0 <= start < len(lines) and "\n" not in source:
        column = mark.column + (1 if mark.style in ("'", '"') else 0)
        if lines[start][column : column + len(source)] == source:
            return mark.line, _excerpt(lines[start], column + offset, length)
    if src_line.strip():
        for index in range(max(start, 0), min(start + 1 + source.count("\n") + 2, len(lines))):
            found = lines[index].find(src_line)
            if found >= 0:
                return index + 1, _excerpt(lines[index], found + col_in_line, length)
    return mark.line, exc.caret(source)


def _excerpt(text: str, column: int, width: int = 1) -> str:
    column = min(max(column, 0), len(text))
    pad = "".join("\t" if ch == "\t" else " " for ch in text[:column])
    return f"{_INDENT}{text}\n{_INDENT}{pad}{'^' * max(width, 1)}"


_INDENT = "    "


def _format_ok(description: str) -> bool:
    try:
        list(string.Formatter().parse(description))
    except ValueError:
        return False
    return True


def _scalar_type(value: object) -> ValueType | None:
    if isinstance(value, bool):
        return ValueType.BOOL
    if isinstance(value, int | float):
        return ValueType.NUMBER
    if isinstance(value, str):
        return ValueType.STRING
    return None


def _rule_name(data: Any, loc: Sequence[int | str]) -> str | None:
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        node, found = _walk(data, loc[:2])
        if found and isinstance(node, dict) and isinstance(node.get("name"), str):
            return str(node["name"])
        return f"#{loc[1] + 1}"
    return None


def _path(loc: Sequence[int | str]) -> str:
    """``('rules', 2, 'set', 'weight')`` → ``set.weight``; list paths keep their index."""
    parts = list(loc)
    if len(parts) >= 2 and parts[0] == "rules" and isinstance(parts[1], int):
        parts = parts[2:]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _model_keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


_KEYS_BY_PARENT: dict[str, Callable[[], list[str]]] = {
    "set": lambda: _model_keys(SetModel),
    "match": lambda: _model_keys(MatchSpec),
}


def _allowed_keys(loc: Sequence[int | str]) -> list[str]:
    if len(loc) == 1:
        return list(_FILE_KEYS)
    if len(loc) == 3 and loc[0] == "rules":
        return _model_keys(RuleModel)
    parent = loc[-2]
    if isinstance(parent, str) and parent in _KEYS_BY_PARENT:
        return _KEYS_BY_PARENT[parent]()
    return []


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
