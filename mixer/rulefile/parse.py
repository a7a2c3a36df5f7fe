"""Parsing a rules file: text in, a validated file with marks and problems out.

Pure (no file, no clock, no engine), like Prometheus' ``rulefmt``: the YAML is read with
the line and column of every key; duplicate keys, unknown keys (with a suggestion), wrong
types, bad durations and deadlines become ``Problem``s located with a caret. A rule with
a broken key is kept without it ("salvaged"), so the engine still checks its expressions
and one typo does not hide the next problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from mixer.errors import MixerError
from mixer.opsfiles.fields import DurationError
from mixer.opsfiles.marked_yaml import (
    Mark,
    empty_mapping,
    key_mark,
    load_yaml,
    locate,
    syntax_error_at,
    walk,
    without,
)
from mixer.opsfiles.problems import Problem, caret_excerpt, did_you_mean, key_path
from mixer.rulefile.schema import ListEntryModel, RuleModel, RulesFileModel, allowed_keys

__all__ = ["ParsedRules", "RuleLoadError", "parse_rules"]


class RuleLoadError(MixerError):
    """Rule files that cannot be used; ``problems`` lists every problem of every file.
    Exit code 2, like an invalid config: nothing reaches QM."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        count = len(problems)
        first = problems[0] if problems else None
        where = f" (first: {first.file}:{first.line})" if first else ""
        super().__init__(
            f"{count} problem(s) in the rule files{where}: fix them, then run amo-mixer check"
        )
        self.problems = problems


@dataclass
class ParsedRules:
    """One rules file, parsed: its marked data and what of it is valid.

    ``data`` is None when nothing of the file is usable (unreadable, broken YAML, not a
    mapping). ``rules`` and ``lists`` are the valid entries with their index in the file;
    ``salvaged`` the indexes of rules valid only once their broken keys were dropped.
    """

    path: str
    lines: list[str]
    data: Any = None
    campaigns: tuple[str, ...] = ()
    rules: list[tuple[int, RuleModel]] = field(default_factory=list)
    lists: list[tuple[int, ListEntryModel]] = field(default_factory=list)
    salvaged: set[int] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)

    def problem(self, mark: Mark | None, rule: str | None, message: str, width: int = 1) -> Problem:
        """A problem at ``mark`` in this file, with the line and a caret under the spot."""
        line = mark.line if mark else 1
        excerpt = None
        if mark is not None and 0 < mark.line <= len(self.lines):
            excerpt = caret_excerpt(self.lines[mark.line - 1], mark.column, width)
        return Problem(
            self.path, line, rule, message, excerpt, column=mark.column if mark else None
        )

    def add(self, mark: Mark | None, rule: str | None, message: str, width: int = 1) -> None:
        self.problems.append(self.problem(mark, rule, message, width))


def unreadable(path: str, reason: str) -> ParsedRules:
    """A file that could not be read: nothing usable, one problem saying why."""
    return ParsedRules(path, [], problems=[Problem(path, 1, None, reason)])


def parse_rules(name: str, text: str) -> ParsedRules:
    """Parse and validate the rules file ``name`` holding ``text``; never raises."""
    parsed = ParsedRules(name, text.splitlines())
    try:
        data, duplicates = load_yaml(text)
    except yaml.YAMLError as exc:
        where, what = syntax_error_at(exc)
        if isinstance(exc, yaml.MarkedYAMLError):
            column = f" at column {where.column + 1}" if where else ""
            parsed.add(where, None, f"invalid YAML{column}: {what}")
        else:
            parsed.problems.append(Problem(name, 1, None, f"invalid YAML: {exc}"))
        return parsed
    for duplicate in duplicates:
        parsed.add(duplicate.mark, None, f"duplicate key '{duplicate.key}'", len(duplicate.key))
    if data is None:
        data = empty_mapping()
    if not isinstance(data, dict):
        parsed.add(
            getattr(data, "mark", Mark(1, 0)),
            None,
            "a rules file must be a mapping with campaigns, lists and rules",
        )
        return parsed
    parsed.data = data
    try:
        model = RulesFileModel.model_validate(data)
    except ValidationError as exc:
        _report_validation(parsed, exc)
        _salvage(parsed)
    else:
        campaigns = model.campaigns
        parsed.campaigns = (campaigns,) if isinstance(campaigns, str) else tuple(campaigns or ())
        parsed.rules = list(enumerate(model.rules))
        parsed.lists = list(enumerate(model.lists))
    return parsed


def _salvage(parsed: ParsedRules) -> None:
    """After validation errors, keep the parts that are valid so their expressions are
    checked too."""
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
            trimmed = without(raw, [tuple(e["loc"]) for e in exc.errors()])
            try:
                parsed.rules.append((index, RuleModel.model_validate(trimmed)))
                parsed.salvaged.add(index)
            except ValidationError:
                continue
    raw_lists = data.get("lists")
    for index, raw in enumerate(raw_lists if isinstance(raw_lists, list) else ()):
        try:
            parsed.lists.append((index, ListEntryModel.model_validate(raw)))
        except ValidationError:
            continue


def _report_validation(parsed: ParsedRules, exc: ValidationError) -> None:
    for error in exc.errors():
        loc = tuple(error["loc"])
        rule = _rule_name(parsed.data, loc)
        kind = error["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            hint = did_you_mean(key, allowed_keys(loc))
            message = f"unknown key '{key}'" + (f" ({hint})" if hint else "")
            parsed.add(key_mark(parsed.data, loc), rule, message, len(key))
            continue
        if kind == "missing":
            parent_loc = loc[:-1]
            mark, _ = locate(parsed.data, parent_loc)
            parsed.add(mark, rule, _missing_key_message(str(loc[-1]), _path(parent_loc)))
            continue
        mark, _ = locate(parsed.data, loc)
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, DurationError):
            text = f"invalid duration {cause.value!r}: {cause.reason}"
        else:
            text = str(error["msg"]).removeprefix("Value error, ")
        message = f"{_path(loc)}: {text}" if _path(loc) else text
        parsed.add(mark, rule, message)


def _rule_name(data: Any, loc: Sequence[int | str]) -> str | None:
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        node, found = walk(data, loc[:2])
        if found and isinstance(node, dict) and isinstance(node.get("name"), str):
            return str(node["name"])
        return f"#{loc[1] + 1}"
    return None


def _path(loc: Sequence[int | str]) -> str:
    """``('rules', 2, 'set', 'weight')`` → ``set.weight``: a rule's own keys, since the
    problem already names the rule; other paths keep their index."""
    parts = list(loc)
    if len(parts) >= 2 and parts[0] == "rules" and isinstance(parts[1], int):
        parts = parts[2:]
    return key_path(parts)


def _missing_key_message(key: str, parent: str) -> str:
    """What is missing, where (when below the rule itself), and what to add."""
    if parent:
        return f"missing required key '{key}' in {parent}"
    hint = {
        "name": ": give the rule a unique name, e.g. 'name: pause-exhausted'",
        "set": ": say what the rule changes, e.g. 'set: {paused: true}' or 'set: {weight: 5}'",
    }.get(key, "")
    return f"missing required key '{key}'{hint}"
