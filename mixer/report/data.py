"""Decision-log records → the plain data the report draws (pure: no files, no plotly).

The page is drawn in the browser from one JSON document, so everything here is
JSON-shaped: times are wall-clock milliseconds of the report's zone (epoch milliseconds
shifted by the zone's offset, so the page draws local times as plotly draws UTC), series
are columnar lists. Cycle points
are thinned to about ``max_points`` per list, always keeping the points where a list's
weight, paused flag or reservability changed, so step lines stay exact. Runs of the same
dry-run decision repeated cycle after cycle become one table row with a count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from mixer.printable import printable
from mixer.record_times import iso_utc
from mixer.records import (
    ConfigRecord,
    CycleRecord,
    DecisionRecord,
    ErrorRecord,
    GuardrailRecord,
    OverrideRecord,
    parse_record,
)

DEFAULT_MAX_POINTS = 2000
"""Cycle points kept per list before thinning starts (change points always kept)."""


@dataclass
class _Point:
    t: int
    weight: int | None
    paused: bool | None
    can_reserve: bool | None
    added: int | None
    pulled: int | None
    completed: int | None

    def state(self) -> tuple[object, ...]:
        return (self.weight, self.paused, self.can_reserve)


@dataclass
class _Campaign:
    name: str
    cycles: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    decisions: int = 0
    applied: int = 0
    overrides: int = 0
    guardrails: int = 0
    errors: int = 0
    last_cycle_id: str | None = None
    series: dict[str, list[_Point]] = field(default_factory=dict)
    markers: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ReportData:
    """What the page shows, plus the numbers for the command's one-line summary."""

    campaigns: list[dict[str, Any]]
    events: list[dict[str, Any]]
    first_ms: int | None
    last_ms: int | None
    zone: str = "UTC"  # the zone every time of the report is in
    # Start-ups and reloads (applied or refused): marked on every campaign's timeline.
    config: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.campaigns

    def total(self, key: str) -> int:
        return sum(int(c["counts"][key]) for c in self.campaigns)

    def summary_line(self) -> str:
        """One line: campaigns, lists, decisions, overrides, stops, errors, time range."""
        if self.empty:
            return "no records in the decision log for this range: the report says so"
        lists = sum(len(c["lists"]) for c in self.campaigns)
        span = ""
        if self.first_ms is not None and self.last_ms is not None:
            span = f", {_fmt_ms(self.first_ms)} → {_fmt_ms(self.last_ms)} {self.zone}"
        return (
            f"{_plural(len(self.campaigns), 'campaign')}, {_plural(lists, 'list')}, "
            f"{_plural(self.total('cycles'), 'cycle')}, "
            f"{_plural(self.total('decisions'), 'decision')} ({self.total('applied')} applied), "
            f"{_plural(self.total('overrides'), 'override')}, "
            f"{_plural(self.total('guardrails'), 'guardrail stop')}, "
            f"{_plural(self.total('errors'), 'error')}{span}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "campaigns": self.campaigns,
            "events": self.events,
            "first": self.first_ms,
            "last": self.last_ms,
            "zone": self.zone,
            "config": self.config,
        }


def collect(
    records: Iterable[Mapping[str, Any]],
    *,
    max_points: int = DEFAULT_MAX_POINTS,
    zone: tzinfo = UTC,
) -> ReportData:
    """Fold decision-log records (in log order) into the report's data, times in ``zone``."""
    campaigns: dict[str, _Campaign] = {}
    events: list[dict[str, Any]] = []
    open_rows: dict[tuple[str, str], dict[str, Any]] = {}
    first: int | None = None
    last: int | None = None
    config: list[dict[str, Any]] = []

    for raw in records:
        record = parse_record(raw)
        if isinstance(record, ConfigRecord) and record.ts is not None:
            config.append(_config_change(record, zone))
            continue
        if record is None or record.ts is None or record.campaign is None:
            continue
        t = _wall_ms(record.ts, zone)
        first = t if first is None else min(first, t)
        last = t if last is None else max(last, t)
        camp = campaigns.get(record.campaign)
        if camp is None:
            camp = campaigns[record.campaign] = _Campaign(printable(record.campaign))
        if isinstance(record, CycleRecord):
            _add_cycle(camp, record, t)
        elif isinstance(record, DecisionRecord):
            _add_decision(camp, record, t, events, open_rows)
        elif isinstance(record, OverrideRecord):
            camp.overrides += 1
            _add_override(camp, record, t, events)
        elif isinstance(record, GuardrailRecord):
            camp.guardrails += not record.ended  # an end marks when a standing stop ended
            lists = printable(", ".join(record.lists))
            text = f"{record.guardrail}: {record.reason}" if record.reason else record.guardrail
            text = printable(text)
            _add_alert(camp, record.mode, t, events, "guardrail", lists, text)
        elif isinstance(record, ErrorRecord):
            camp.errors += 1
            text = printable(f"{record.kind}: {record.error}".rstrip(": "))
            _add_alert(camp, None, t, events, "error", "", text)

    events.sort(key=lambda e: e["t"])
    return ReportData(
        campaigns=[_campaign_json(c, max_points) for c in sorted(campaigns.values(), key=_key)],
        events=[{k: v for k, v in e.items() if not k.startswith("_")} for e in events],
        first_ms=first,
        last_ms=last,
        zone=str(getattr(zone, "key", None) or zone.tzname(None) or zone),
        config=config,
    )


def _config_change(record: ConfigRecord, zone: tzinfo) -> dict[str, Any]:
    assert record.ts is not None
    if record.outcome == "refused":
        text = "reload refused, the running config stays: " + printable("; ".join(record.errors))
    else:
        text = (
            f"config loaded: rules {(record.rules_hash or '?')[:12]}, "
            f"{record.rule_count} rules, mode {record.mode}"
        )
    return {"t": _wall_ms(record.ts, zone), "outcome": record.outcome, "text": text}


def keep_indices(states: Sequence[object], limit: int) -> list[int]:
    """Indices of the points to draw: every change of state, the ends, and an even
    stride of the rest so that about ``limit`` points remain."""
    n = len(states)
    if n <= limit:
        return list(range(n))
    stride = max(1, math.ceil(n / max(limit, 1)))
    return [
        i for i in range(n) if i == 0 or i == n - 1 or i % stride == 0 or states[i] != states[i - 1]
    ]


# -- folding ------------------------------------------------------------------------


def _add_cycle(camp: _Campaign, record: CycleRecord, t: int) -> None:
    camp.cycles += 1
    camp.outcomes[record.outcome] = camp.outcomes.get(record.outcome, 0) + 1
    camp.last_cycle_id = record.cycle_id
    for list_name, state in record.lists.items():
        camp.series.setdefault(printable(list_name), []).append(
            _Point(
                t=t,
                weight=state.weight,
                paused=state.paused,
                can_reserve=state.can_reserve,
                added=state.added,
                pulled=state.pulled,
                completed=state.completed,
            )
        )


def _add_decision(
    camp: _Campaign,
    record: DecisionRecord,
    t: int,
    events: list[dict[str, Any]],
    open_rows: dict[tuple[str, str], dict[str, Any]],
) -> None:
    camp.decisions += 1
    applied = record.applied
    camp.applied += applied
    list_name = printable(record.list or "")
    before, after = record.before, record.after
    rules = list(record.rules)
    signature = (before, after, record.rules, applied, record.mode)
    key = (camp.name, list_name)
    row = open_rows.get(key)
    # A dry-run repeats the same decision every cycle: one row per unbroken run.
    if (
        row is not None
        and row["_sig"] == signature
        and (camp.last_cycle_id is None or row["_cycle"] == camp.last_cycle_id)
    ):
        row["repeat"] += 1
        row["until"] = t
        row["_cycle"] = record.cycle_id
        return
    row = {
        "t": t,
        "campaign": camp.name,
        "event": "decision",
        "list": list_name,
        "mode": record.mode,
        "weight": [before.weight, after.weight],
        "paused": [before.paused, after.paused],
        "rules": rules,
        "overridden": list(record.overridden),
        "reason": printable(record.reason),
        "applied": applied,
        "repeat": 1,
        "until": t,
        "_sig": signature,
        "_cycle": record.cycle_id,
    }
    open_rows[key] = row
    events.append(row)
    camp.markers.append(
        {
            "t": t,
            "list": list_name,
            "weight": after.weight,
            "before": before.weight,
            "paused": [before.paused, after.paused],
            "applied": applied,
            "reason": row["reason"],
        }
    )


def _add_override(
    camp: _Campaign, record: OverrideRecord, t: int, events: list[dict[str, Any]]
) -> None:
    expected, found = record.expected, record.found
    list_name = printable(record.list or "")
    reason = printable(record.reason)
    if record.hold_until is not None and "hold" not in reason.lower():
        reason = f"{reason} (hold until {iso_utc(record.hold_until)})".strip()
    events.append(
        {
            "t": t,
            "campaign": camp.name,
            "event": "override",
            "list": list_name,
            "mode": record.mode,
            "weight": [expected.weight, found.weight],
            "paused": [expected.paused, found.paused],
            "rules": [],
            "reason": reason,
            "applied": None,
            "repeat": 1,
            "until": t,
        }
    )
    camp.markers.append(
        {
            "t": t,
            "list": list_name,
            "weight": found.weight,
            "before": expected.weight,
            "paused": [expected.paused, found.paused],
            "applied": None,
            "reason": reason,
        }
    )


def _add_alert(
    camp: _Campaign,
    mode: str | None,
    t: int,
    events: list[dict[str, Any]],
    kind: str,
    lists: str,
    text: str,
) -> None:
    events.append(
        {
            "t": t,
            "campaign": camp.name,
            "event": kind,
            "list": lists,
            "mode": mode,
            "weight": None,
            "paused": None,
            "rules": [],
            "reason": text,
            "applied": None,
            "repeat": 1,
            "until": t,
        }
    )
    camp.alerts.append({"t": t, "kind": kind, "text": text})


# -- shaping ------------------------------------------------------------------------


def _campaign_json(camp: _Campaign, max_points: int) -> dict[str, Any]:
    lists = []
    names = sorted(set(camp.series) | {m["list"] for m in camp.markers}, key=str.casefold)
    for name in names:
        points = camp.series.get(name, [])
        keep = keep_indices([p.state() for p in points], max_points)
        kept = [points[i] for i in keep]
        lists.append(
            {
                "name": name,
                "t": [p.t for p in kept],
                "weight": [p.weight for p in kept],
                "paused": [p.paused for p in kept],
                "can_reserve": [p.can_reserve for p in kept],
                "added": [p.added for p in kept],
                "pulled": [p.pulled for p in kept],
                "completed": [p.completed for p in kept],
                "points": len(points),
                "paused_spans": _paused_spans(points),
                "paused_ms": sum(b - a for a, b in _paused_spans(points)),
            }
        )
    return {
        "name": camp.name,
        "counts": {
            "cycles": camp.cycles,
            "decisions": camp.decisions,
            "applied": camp.applied,
            "overrides": camp.overrides,
            "guardrails": camp.guardrails,
            "errors": camp.errors,
            "outcomes": dict(sorted(camp.outcomes.items())),
        },
        "lists": lists,
        "markers": camp.markers,
        "alerts": camp.alerts,
    }


def _paused_spans(points: Sequence[_Point]) -> list[list[int]]:
    """[start, end] ms of each stretch the list was read as paused."""
    spans: list[list[int]] = []
    start: int | None = None
    for p in points:
        if p.paused and start is None:
            start = p.t
        elif not p.paused and start is not None:
            spans.append([start, p.t])
            start = None
    if start is not None:
        spans.append([start, points[-1].t])
    return spans


def _wall_ms(when: datetime, zone: tzinfo) -> int:
    """Epoch milliseconds shifted by ``zone``'s offset at that moment: the page draws
    them as UTC, so people read the zone's wall clock."""
    offset = when.astimezone(zone).utcoffset() or timedelta(0)
    return int((when.timestamp() + offset.total_seconds()) * 1000)


def _fmt_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _key(camp: _Campaign) -> str:
    return camp.name.casefold()
