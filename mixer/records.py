"""The decision log's records, as types: the cycle writes them, ``log``, ``report`` and
the decision-log reader read them back.

One class per ``event``. ``to_json()`` gives the object written as one JSON line (field
order as documented in ``docs/architecture.md``); ``parse_record()`` reads a line's
object back leniently — a log written by an older version, or edited by hand, yields
``None`` for a field it lacks or holds in the wrong type, never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from mixer.record_times import iso_utc, parse_ts

Mode = Literal["dry-run", "apply"]
Outcome = Literal["ok", "error", "guardrail"]
ErrorKind = Literal["read", "write", "verify", "rule", "internal", "state"]

_NO_FACTS: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ListState:
    """A list's weight and pause flag, as the records write them (``before``, ``after``…)."""

    weight: int | None
    paused: bool | None

    def to_json(self) -> dict[str, object]:
        return {"weight": self.weight, "paused": self.paused}

    @classmethod
    def from_json(cls, value: object) -> ListState:
        if not isinstance(value, Mapping):
            return cls(None, None)
        return cls(_int(value.get("weight")), _bool(value.get("paused")))


@dataclass(frozen=True, slots=True)
class ListCounters:
    """What a ``cycle`` record keeps of each list read: enough to draw it over time."""

    weight: int | None
    paused: bool | None
    added: int | None
    pulled: int | None
    completed: int | None
    can_reserve: bool | None
    # For replay (facts from deadline tags, the completed state, idle minutes); None in
    # logs written before they were recorded, and then not written back.
    notes: str | None = None
    dialer_state: str | None = None
    last_pull: str | None = None  # ISO 8601 in the QM time zone

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "weight": self.weight,
            "paused": self.paused,
            "added": self.added,
            "pulled": self.pulled,
            "completed": self.completed,
            "can_reserve": self.can_reserve,
        }
        if self.notes is not None:
            out["notes"] = self.notes
            out["dialer_state"] = self.dialer_state
            out["last_pull"] = self.last_pull
        return out

    @classmethod
    def from_json(cls, value: object) -> ListCounters:
        v = value if isinstance(value, Mapping) else {}
        return cls(
            weight=_int(v.get("weight")),
            paused=_bool(v.get("paused")),
            added=_int(v.get("added")),
            pulled=_int(v.get("pulled")),
            completed=_int(v.get("completed")),
            can_reserve=_bool(v.get("can_reserve")),
            notes=_str(v.get("notes")),
            dialer_state=_str(v.get("dialer_state")),
            last_pull=_str(v.get("last_pull")),
        )


@dataclass(frozen=True, slots=True)
class Record:
    """Fields every record has. ``ts`` is an aware datetime (written in UTC, ISO 8601)."""

    event: ClassVar[str] = ""
    ts: datetime | None
    cycle_id: str | None
    campaign: str | None

    def _head(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "ts": None if self.ts is None else iso_utc(self.ts),
            "cycle_id": self.cycle_id,
            "campaign": self.campaign,
        }

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class DecisionRecord(Record):
    """One list whose desired state differs from its current state."""

    event: ClassVar[str] = "decision"
    list: str | None
    mode: str | None
    before: ListState
    after: ListState
    rules: tuple[str, ...]
    reason: str
    facts: Mapping[str, object] = field(default_factory=lambda: _NO_FACTS)
    applied: bool = False
    overridden: tuple[str, ...] = ()  # fired, but a later rule set all they set again
    # Logged by a later cycle, from the write-ahead intent (``mixer.intents``), when the
    # deciding cycle could not log the outcome itself (a crash, a lost reply).
    late: bool = False

    def to_json(self) -> dict[str, Any]:
        record = {
            **self._head(),
            "list": self.list,
            "mode": self.mode,
            "before": self.before.to_json(),
            "after": self.after.to_json(),
            "rules": list(self.rules),
            "overridden": list(self.overridden),
            "reason": self.reason,
            "facts": jsonable_facts(self.facts),
            "applied": self.applied,
        }
        if self.late:
            record["late"] = True
        return record

    @classmethod
    def from_json(cls, r: Mapping[str, Any]) -> DecisionRecord:
        facts = r.get("facts")
        return cls(
            *_head(r),
            list=_str(r.get("list")),
            mode=_str(r.get("mode")),
            before=ListState.from_json(r.get("before")),
            after=ListState.from_json(r.get("after")),
            rules=_strs(r.get("rules")),
            reason=_str(r.get("reason")) or "",
            facts=MappingProxyType(dict(facts)) if isinstance(facts, Mapping) else _NO_FACTS,
            applied=r.get("applied") is True,
            overridden=_strs(r.get("overridden")),
            late=r.get("late") is True,
        )


@dataclass(frozen=True, slots=True)
class CycleRecord(Record):
    """One campaign's cycle: its outcome, and the state of every list read."""

    event: ClassVar[str] = "cycle"
    mode: str | None
    lists_seen: int
    changes: int
    applied: bool
    outcome: str
    error: str | None
    duration_ms: float | None
    lists: Mapping[str, ListCounters] = field(default_factory=dict)
    rules_hash: str | None = None  # short hash of the rule set in force (see config events)
    # From the read's reply to the write's reply (None: nothing written).
    read_to_write_ms: float | None = None
    # Lists left alone whatever the rules say (an unknown listState, a duplicate name),
    # with why; and lists taken for new ones (their counters went backwards). Written
    # only when not empty.
    skipped: Mapping[str, str] = field(default_factory=dict)
    recreated: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        record = {
            **self._head(),
            "mode": self.mode,
            "lists_seen": self.lists_seen,
            "changes": self.changes,
            "applied": self.applied,
            "outcome": self.outcome,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "rules_hash": self.rules_hash,
            "read_to_write_ms": self.read_to_write_ms,
            "lists": {name: c.to_json() for name, c in self.lists.items()},
        }
        if self.skipped:
            record["skipped"] = dict(self.skipped)
        if self.recreated:
            record["recreated"] = list(self.recreated)
        return record

    @classmethod
    def from_json(cls, r: Mapping[str, Any]) -> CycleRecord:
        lists = r.get("lists")
        skipped = r.get("skipped")
        duration = r.get("duration_ms")
        window = r.get("read_to_write_ms")
        return cls(
            *_head(r),
            mode=_str(r.get("mode")),
            lists_seen=_int(r.get("lists_seen")) or 0,
            changes=_int(r.get("changes")) or 0,
            applied=r.get("applied") is True,
            outcome=_str(r.get("outcome")) or "ok",
            error=_str(r.get("error")),
            duration_ms=float(duration) if isinstance(duration, int | float) else None,
            read_to_write_ms=float(window) if isinstance(window, int | float) else None,
            lists={
                str(name): ListCounters.from_json(state)
                for name, state in (lists.items() if isinstance(lists, Mapping) else ())
            },
            rules_hash=_str(r.get("rules_hash")),
            skipped={
                str(name): str(why)
                for name, why in (skipped.items() if isinstance(skipped, Mapping) else ())
            },
            recreated=_strs(r.get("recreated")),
        )


@dataclass(frozen=True, slots=True)
class OverrideRecord(Record):
    """A human changed a list: adopted as the new baseline, held until ``hold_until``."""

    event: ClassVar[str] = "override"
    list: str | None
    mode: str | None
    expected: ListState
    found: ListState
    hold_until: datetime | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            **self._head(),
            "list": self.list,
            "mode": self.mode,
            "expected": self.expected.to_json(),
            "found": self.found.to_json(),
            "hold_until": None if self.hold_until is None else iso_utc(self.hold_until),
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, r: Mapping[str, Any]) -> OverrideRecord:
        return cls(
            *_head(r),
            list=_str(r.get("list")),
            mode=_str(r.get("mode")),
            expected=ListState.from_json(r.get("expected")),
            found=ListState.from_json(r.get("found")),
            hold_until=parse_ts(r.get("hold_until")),
            reason=_str(r.get("reason")) or "",
        )


@dataclass(frozen=True, slots=True)
class GuardrailRecord(Record):
    """A plan that was not applied, and why."""

    event: ClassVar[str] = "guardrail"
    mode: str | None
    guardrail: str
    lists: tuple[str, ...]
    reason: str
    # A stop that repeats cycle after cycle is logged once when it begins, and once more
    # (``ended``, with the number of cycles it lasted) when a cycle no longer repeats it.
    ended: bool = False
    cycles: int | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            **self._head(),
            "mode": self.mode,
            "guardrail": self.guardrail,
            "lists": list(self.lists),
            "reason": self.reason,
        }
        if self.ended:
            out["ended"] = True
            out["cycles"] = self.cycles
        return out

    @classmethod
    def from_json(cls, r: Mapping[str, Any]) -> GuardrailRecord:
        return cls(
            *_head(r),
            mode=_str(r.get("mode")),
            guardrail=_str(r.get("guardrail")) or "guardrail",
            lists=_strs(r.get("lists")),
            reason=_str(r.get("reason")) or "",
            ended=r.get("ended") is True,
            cycles=_int(r.get("cycles")),
        )


@dataclass(frozen=True, slots=True)
class ErrorRecord(Record):
    """A campaign's read, write or verification failed, or a rule raised for a list."""

    event: ClassVar[str] = "error"
    error: str
    kind: str
    # kind "rule": the rule that raised and the list it raised on (left as QM had it).
    rule: str | None = None
    list: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {**self._head(), "error": self.error, "kind": self.kind}
        if self.rule is not None:
            out["rule"] = self.rule
            out["list"] = self.list
        return out

    @classmethod
    def from_json(cls, r: Mapping[str, Any]) -> ErrorRecord:
        return cls(
            *_head(r),
            error=_str(r.get("error")) or "",
            kind=_str(r.get("kind")) or "error",
            rule=_str(r.get("rule")),
            list=_str(r.get("list")),
        )


@dataclass(frozen=True, slots=True)
class ConfigRecord(Record):
    """The configuration a daemon started with, or a reload applied or refused."""

    event: ClassVar[str] = "config"
    outcome: str  # "loaded" | "refused"
    config: str | None  # the config file's path
    config_sha256: str | None
    rules: tuple[tuple[str, str], ...]  # (file, sha256)
    rules_hash: str | None
    rule_count: int | None
    campaigns: tuple[str, ...]
    mode: str | None
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            **self._head(),
            "outcome": self.outcome,
            "config": self.config,
            "config_sha256": self.config_sha256,
            "rules": [{"file": f, "sha256": sha} for f, sha in self.rules],
            "rules_hash": self.rules_hash,
            "rule_count": self.rule_count,
            "campaigns": list(self.campaigns),
            "mode": self.mode,
            "errors": list(self.errors),
        }

    @classmethod
    def from_json(cls, r: Mapping[str, Any]) -> ConfigRecord:
        rules = r.get("rules")
        return cls(
            *_head(r),
            outcome=_str(r.get("outcome")) or "loaded",
            config=_str(r.get("config")),
            config_sha256=_str(r.get("config_sha256")),
            rules=tuple(
                (str(x.get("file")), str(x.get("sha256")))
                for x in (rules if isinstance(rules, list) else ())
                if isinstance(x, Mapping)
            ),
            rules_hash=_str(r.get("rules_hash")),
            rule_count=_int(r.get("rule_count")),
            campaigns=_strs(r.get("campaigns")),
            mode=_str(r.get("mode")),
            errors=_strs(r.get("errors")),
        )


AnyRecord = (
    DecisionRecord | CycleRecord | OverrideRecord | GuardrailRecord | ErrorRecord | ConfigRecord
)
_BY_EVENT: dict[str, Any] = {
    cls.event: cls
    for cls in (
        DecisionRecord,
        CycleRecord,
        OverrideRecord,
        GuardrailRecord,
        ErrorRecord,
        ConfigRecord,
    )
}
EVENTS = tuple(_BY_EVENT)


def parse_record(raw: Mapping[str, Any]) -> AnyRecord | None:
    """The typed record of one decision-log object; None for an event this version
    does not know (newer versions may add events: readers skip them)."""
    cls = _BY_EVENT.get(raw.get("event"))  # type: ignore[arg-type]
    if cls is None:
        return None
    record: AnyRecord = cls.from_json(raw)
    return record


def jsonable_facts(facts: Mapping[str, object]) -> dict[str, object]:
    """Facts as JSON values: times in ISO 8601, NaN/infinity as null (jq, pandas and
    DuckDB reject them), collections as lists of strings, anything else as text."""
    out: dict[str, object] = {}
    for key, value in facts.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat(timespec="seconds")
        elif isinstance(value, float):
            out[key] = round(value, 4) if math.isfinite(value) else None
        elif isinstance(value, tuple | list | frozenset | set):
            out[key] = list(_as_strs(value))
        elif value is None or isinstance(value, bool | int | str):
            out[key] = value
        else:
            out[key] = str(value)
    return out


def _head(r: Mapping[str, Any]) -> tuple[datetime | None, str | None, str | None]:
    return parse_ts(r.get("ts")), _str(r.get("cycle_id")), _str(r.get("campaign"))


def _as_strs(values: Iterable[object]) -> Iterable[str]:
    return (str(v) for v in values)


def _strs(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(str(v) for v in value if v is not None)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and _is_number(value) else None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not isinstance(value, float) or math.isfinite(value)
