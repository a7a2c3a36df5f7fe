"""Compiled rules and the rule set: what the engine evaluates, built from parsed files.

The file format (schema, YAML, validation) is ``mixer.rulefile``; this module compiles a
parsed file: list metadata with its extra facts, rule names unique across files, every
expression compiled once against the fact types (evaluation only calls them), with a
caret under the spot of each mistake. Every problem of every file is collected and
raised at once as ``RuleLoadError``. Pure: the files are read by ``mixer.rule_loading``.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

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
from mixer.opsfiles.fields import deadline_value
from mixer.opsfiles.marked_yaml import Mark, MarkedDict
from mixer.opsfiles.problems import Problem, caret_excerpt, did_you_mean, edit_distance
from mixer.rulefile.parse import ParsedRules, RuleLoadError
from mixer.rulefile.schema import ListEntryModel, MatchSpec, RuleModel

__all__ = [
    "CampaignRules",
    "ListMetadata",
    "Rule",
    "RuleFile",
    "RuleSet",
    "compile_rules",
]

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
    pauses_campaign: bool = False

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
    campaigns_line: int = 1  # where `campaigns:` is written

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
    warnings: tuple[str, ...] = ()  # file:line notes that do not stop loading
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
# Compiling

# The keys a `lists:` entry knows; a key closer than this to one of them is a misspelling.
_LIST_ENTRY_KEYS = tuple(ListEntryModel.model_fields)
_MISSPELLING_DISTANCE = 3


def compile_rules(parsed: Sequence[ParsedRules]) -> RuleSet:
    """Compile parsed rule files (applied in the order given) into a ``RuleSet``.

    Extra ``lists:`` fields of every file become facts before any rule is compiled, so a
    rule may read a fact another file defines. Raises ``RuleLoadError`` listing every
    problem of every file (the parse's and the compiler's), in file and line order.
    """
    compiler = _Compiler()
    for item in parsed:
        compiler.problems += item.problems
    usable = [item for item in parsed if item.data is not None]
    entries = [compiler.entries(item) for item in usable]
    fact_types = dict(FACT_TYPES)
    fact_types.update(compiler.extra_types)
    files = [
        compiler.compile(item, lists, fact_types)
        for item, lists in zip(usable, entries, strict=True)
    ]
    if compiler.problems:
        order = {item.path: i for i, item in enumerate(parsed)}
        problems = sorted(compiler.problems, key=lambda p: (order.get(p.file, -1), p.line))
        raise RuleLoadError(problems)
    return RuleSet(files=tuple(files), fact_types=fact_types, warnings=tuple(compiler.warnings))


class _Compiler:
    """Compiles parsed files, collecting problems; names and extra facts span files."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[str] = []
        self.extra_types: dict[str, ValueType] = {}
        self._extra_where: dict[str, str] = {}
        self._rule_where: dict[str, str] = {}

    def problem(
        self, parsed: ParsedRules, mark: Mark | None, rule: str | None, message: str, width: int = 1
    ) -> None:
        self.problems.append(parsed.problem(mark, rule, message, width))

    # -- list metadata ------------------------------------------------------------------

    def entries(self, parsed: ParsedRules) -> list[ListEntry]:
        """The file's valid ``lists:`` entries, their extra fields checked as facts."""
        return [self._entry(parsed, index, model) for index, model in parsed.lists]

    def _entry(self, parsed: ParsedRules, index: int, model: ListEntryModel) -> ListEntry:
        raw = parsed.data["lists"][index]
        extra: dict[str, Scalar] = {}
        custom = {key: (value, False) for key, value in (model.model_extra or {}).items()}
        custom.update((key, (value, True)) for key, value in model.facts.items())
        facts_raw = raw.get("facts") if isinstance(raw, MarkedDict) else None
        for key, (value, declared) in custom.items():
            holder = facts_raw if declared else raw
            mark = holder.key_marks.get(key) if isinstance(holder, MarkedDict) else None
            where = f"lists[{index}].facts.{key}" if declared else f"lists[{index}].{key}"
            if not declared and not self._undeclared_fact(parsed, mark, where, str(key)):
                continue
            if not isinstance(key, str) or not key.isidentifier() or key in FACT_TYPES:
                reason = "is a built-in fact" if key in FACT_TYPES else "is not a valid fact name"
                self.problem(
                    parsed,
                    mark,
                    None,
                    f"{where}: extra field '{key}' {reason}",
                    len(str(key)),
                )
                continue
            kind = _scalar_type(value)
            if kind is None:
                self.problem(
                    parsed,
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
                    parsed,
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
        line = raw.mark.line if isinstance(raw, MarkedDict) else 1
        return ListEntry(
            names=names,
            file=parsed.path,
            line=line,
            deadline=deadline_value(model.deadline),
            tags=tuple(model.tags),
            priority=model.priority,
            standby=model.standby,
            weight=model.weight,
            extra=extra,
        )

    def _undeclared_fact(
        self, parsed: ParsedRules, mark: Mark | None, where: str, key: str
    ) -> bool:
        """A key of a ``lists:`` entry outside ``facts:``: an error when it could be a
        misspelt known key (``dedline``), else still a custom fact, with a warning."""
        known = _LIST_ENTRY_KEYS
        if min(edit_distance(key, k) for k in known) < _MISSPELLING_DISTANCE:
            hint = did_you_mean(key, known) or f"known keys: {', '.join(known)}"
            self.problem(
                parsed,
                mark,
                None,
                f"{where}: unknown key '{key}' in a lists: entry: {hint} "
                "(custom facts go under facts:)",
                len(key),
            )
            return False
        line = mark.line if mark else 1
        self.warnings.append(
            f"{parsed.path}:{line}: {where}: a custom fact outside facts: is deprecated; "
            f"write facts: {{{key}: ...}} (this form goes in the next release)"
        )
        return True

    # -- pass 2: rules and their expressions --------------------------------------------

    def compile(
        self, parsed: ParsedRules, lists: list[ListEntry], fact_types: Mapping[str, ValueType]
    ) -> RuleFile:
        seen: dict[str, int] = {}
        rules: list[Rule] = []
        for index, model in parsed.rules:
            raw = parsed.data["rules"][index]
            rule_mark = parsed.data["rules"].item_marks[index]
            name_mark = raw.value_marks.get("name", rule_mark)
            if model.name in seen:
                self.problem(
                    parsed,
                    name_mark,
                    model.name,
                    f"duplicate rule name (first defined at line {seen[model.name]})",
                    len(model.name),
                )
                continue
            seen[model.name] = name_mark.line
            if model.name in self._rule_where:
                self.problem(
                    parsed,
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
        campaigns_mark = parsed.data.key_marks.get("campaigns")
        return RuleFile(
            path=parsed.path,
            campaigns=parsed.campaigns,
            lists=tuple(lists),
            rules=tuple(rules),
            campaigns_line=campaigns_mark.line if campaigns_mark else 1,
        )

    def _compile_rule(
        self,
        parsed: ParsedRules,
        raw: MarkedDict,
        rule_mark: Mark,
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
                parsed,
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
            holder = raw_set if isinstance(raw_set, MarkedDict) else raw
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
                    parsed,
                    mark,
                    name,
                    f"description: unknown fact '{{{placeholder}}}'"
                    + _in_brackets(did_you_mean(placeholder, fact_types)),
                )
                ok = False
        if model.description is not None and not _format_ok(model.description):
            mark = raw.value_marks.get("description", rule_mark)
            self.problem(
                parsed,
                mark,
                name,
                "description: unbalanced { } (write {{ or }} for a literal brace)",
            )
            ok = False
        elif model.description is not None and (wide := spec_problem(model.description)):
            mark = raw.value_marks.get("description", rule_mark)
            self.problem(parsed, mark, name, wide)
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
            pauses_campaign=model.pauses_campaign,
            enabled=model.enabled,
        )

    def _expression(
        self,
        parsed: ParsedRules,
        holder: MarkedDict,
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
            self.problems.append(Problem(parsed.path, line, rule, f"{prefix}: {message}", excerpt))
            return None


def _expression_excerpt(
    lines: list[str], mark: Mark, source: str, exc: ExpressionError
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
            return mark.line, caret_excerpt(lines[start], column + offset, length)
    if src_line.strip():
        for index in range(max(start, 0), min(start + 1 + source.count("\n") + 2, len(lines))):
            found = lines[index].find(src_line)
            if found >= 0:
                return index + 1, caret_excerpt(lines[index], found + col_in_line, length)
    return mark.line, exc.caret(source)


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


def _in_brackets(hint: str) -> str:
    return f" ({hint})" if hint else ""
