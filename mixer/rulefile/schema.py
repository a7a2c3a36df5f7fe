"""The rule file's schema: the pydantic models a rules file validates against.

The same models give the JSON Schema editors use (``amo-mixer schema rules``) and the
keys a did-you-mean picks from. Pure: no file, no engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
)

from mixer.opsfiles.fields import Duration, parse_local_deadline

__all__ = [
    "FILE_KEYS",
    "ListEntryModel",
    "MatchSpec",
    "RuleModel",
    "RulesFileModel",
    "SetModel",
    "allowed_keys",
    "rules_json_schema",
]

FILE_KEYS = ("campaigns", "lists", "rules")


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
    pauses_campaign: StrictBool = Field(
        False,
        description="this rule's pause is meant to close the whole campaign when it pauses "
        "every list (office hours): the keep-one-reservable-list guardrail lets it through",
    )
    enabled: StrictBool = Field(True, description="false switches the rule off")


class ListEntryModel(BaseModel):
    """Facts QM does not carry, for lists whose name matches; custom facts go under
    ``facts:`` (another key is taken as one only when it cannot be a misspelt known key,
    with a deprecation warning)."""

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
    facts: dict[str, StrictStr | StrictBool | StrictInt | StrictFloat] = Field(
        default_factory=dict,
        description="custom facts for rules to read, e.g. {region: north} (scalars)",
    )

    @field_validator("deadline")
    @classmethod
    def _check_deadline(cls, value: object) -> object:
        if isinstance(value, str):
            parse_local_deadline(value)
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


def _model_keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


_KEYS_BY_PARENT: dict[str, Callable[[], list[str]]] = {
    "set": lambda: _model_keys(SetModel),
    "match": lambda: _model_keys(MatchSpec),
}


def allowed_keys(loc: Sequence[int | str]) -> list[str]:
    """The keys a file, rule, ``set`` or ``match`` allows at the parent of ``loc``."""
    if len(loc) == 1:
        return list(FILE_KEYS)
    if len(loc) == 3 and loc[0] == "rules":
        return _model_keys(RuleModel)
    parent = loc[-2]
    if isinstance(parent, str) and parent in _KEYS_BY_PARENT:
        return _KEYS_BY_PARENT[parent]()
    return []
