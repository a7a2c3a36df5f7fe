"""The cycles the decision log recorded, read back as typed values for replay and fit.

Every ``cycle`` event carries what the mixer read of each list (weight, paused, the
counters, can-reserve and, since the replay was added, notes, dialer state and last
pull); every ``decision`` event of the same cycle precedes it in the log. This module
turns that stream into ``RecordedCycle`` values, oldest first, with the decisions of
each cycle attached, and builds the ``CampaignSnapshot`` a recorded cycle stands for.
A log written before notes were recorded reads with empty notes (``notes_recorded``
says so): deadlines then come only from the rules' ``lists:`` metadata.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import orjson

from mixer.decisions import log_files
from mixer.record_times import parse_ts
from mixer.snapshot import CampaignSnapshot, ListSnapshot


class RecordedList(NamedTuple):
    """One list as a ``cycle`` event recorded it (a named tuple: a week of 100 lists is a
    million of them, and a tuple is built several times faster than a frozen dataclass)."""

    name: str
    weight: int
    paused: bool
    added: int
    pulled: int
    completed: int
    can_reserve: bool
    notes: str = ""
    dialer_state: str = "open"
    last_pull: datetime | None = None
    notes_recorded: bool = False


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    """One ``decision`` event: what the running rules decided for one list."""

    list: str
    before: tuple[int, bool]
    after: tuple[int, bool]
    rules: tuple[str, ...]
    reason: str
    applied: bool


@dataclass(frozen=True, slots=True)
class RecordedCycle:
    """One campaign's cycle: when, in which mode, the lists read and the decisions made."""

    ts: datetime
    cycle_id: str
    campaign: str
    mode: str
    outcome: str
    lists: tuple[RecordedList, ...]
    decisions: Mapping[str, RecordedDecision]

    def snapshot(
        self,
        states: Mapping[str, tuple[int, bool]] | None = None,
        reuse: dict[str, tuple[RecordedList, int, bool, ListSnapshot]] | None = None,
    ) -> CampaignSnapshot:
        """The snapshot this cycle read; ``states`` replaces (weight, paused) per list.

        ``reuse``, kept by a caller going through cycles in order, hands back the list
        read last time when nothing about it changed (most lists, most minutes: nights,
        weekends, paused and finished lists), instead of building it again."""
        items = []
        for rec in self.lists:
            weight, paused = rec.weight, rec.paused
            if states is not None and rec.name in states:
                weight, paused = states[rec.name]
            if reuse is not None:
                seen = reuse.get(rec.name)
                if seen is not None and seen[0] == rec and seen[1] == weight and seen[2] == paused:
                    items.append(seen[3])
                    continue
            item = ListSnapshot(
                name=rec.name,
                notes=rec.notes,
                weight=weight,
                list_state="paused" if paused else "open",
                dialer_state=rec.dialer_state,
                can_reserve_state="open" if rec.can_reserve else "closed",
                added=rec.added,
                completed=rec.completed,
                pulled=rec.pulled,
                last_pull=rec.last_pull,
            )
            if reuse is not None:
                reuse[rec.name] = (rec, weight, paused, item)
            items.append(item)
        return CampaignSnapshot(campaign=self.campaign, lists=tuple(items), read_at=self.ts)


def recorded_cycles(records: Iterable[Mapping[str, Any]]) -> Iterator[RecordedCycle]:
    """The ``cycle`` events of ``records`` (log order) with their decisions attached.

    A cycle that read nothing (a read error) carries no lists and is skipped: there is
    nothing to decide on. Malformed list entries are skipped, not guessed at.
    """
    pending: dict[tuple[str, str], dict[str, RecordedDecision]] = {}
    times: dict[str, datetime | None] = {}  # last-pull texts repeat from cycle to cycle
    for record in records:
        event = record.get("event")
        if event == "decision":
            decision = _decision(record)
            if decision is not None:
                key = (str(record.get("cycle_id")), str(record.get("campaign")))
                pending.setdefault(key, {})[decision.list] = decision
            continue
        if event != "cycle":
            continue
        campaign = record.get("campaign")
        cycle_id = str(record.get("cycle_id"))
        decisions = pending.pop((cycle_id, str(campaign)), {})
        ts = parse_ts(record.get("ts"))
        raw = record.get("lists")
        if ts is None or not isinstance(campaign, str) or not isinstance(raw, dict) or not raw:
            continue
        lists = tuple(item for item in (_list(e, times) for e in raw.items()) if item is not None)
        if not lists:
            continue
        yield RecordedCycle(
            ts=ts,
            cycle_id=cycle_id,
            campaign=campaign,
            mode=str(record.get("mode", "dry-run")),
            outcome=str(record.get("outcome", "ok")),
            lists=lists,
            decisions=decisions,
        )


def _list(entry: tuple[Any, Any], times: dict[str, datetime | None]) -> RecordedList | None:
    name, raw = entry
    if not isinstance(raw, dict):
        return None
    try:
        text = raw.get("last_pull")
        last_pull = None
        if isinstance(text, str):
            if text not in times:
                if len(times) > 100_000:
                    times.clear()
                times[text] = parse_ts(text)
            last_pull = times[text]
        notes = raw.get("notes")
        recorded = isinstance(notes, str)
        if not isinstance(notes, str):
            notes = ""
        return RecordedList(
            str(name),
            int(raw["weight"]),
            raw["paused"] is True,
            int(raw["added"]),
            int(raw["pulled"]),
            int(raw["completed"]),
            raw["can_reserve"] is True,
            notes,
            str(raw.get("dialer_state") or "open"),
            last_pull,
            recorded,
        )
    except (KeyError, TypeError, ValueError):
        return None


def _decision(record: Mapping[str, Any]) -> RecordedDecision | None:
    before, after = record.get("before"), record.get("after")
    name = record.get("list")
    if not isinstance(before, dict) or not isinstance(after, dict) or not isinstance(name, str):
        return None
    try:
        rules = record.get("rules") or ()
        return RecordedDecision(
            list=name,
            before=(int(before["weight"]), bool(before["paused"])),
            after=(int(after["weight"]), bool(after["paused"])),
            rules=tuple(str(r) for r in rules),
            reason=str(record.get("reason") or ""),
            applied=bool(record.get("applied")),
        )
    except (KeyError, TypeError, ValueError):
        return None


def read_cycle_records(
    path: Path,
    *,
    since: datetime,
    until: datetime,
    events: Collection[str] = ("cycle", "decision"),
    campaigns: Collection[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """The ``events`` records of the decision log at ``path`` (and its rotated files)
    with ``since <= ts < until``, oldest first, for ``campaigns`` (None: all).

    A replay of a week of 100 lists reads a few hundred MB: lines are picked by their
    bytes before they are decoded (the mixer writes compact JSON, ``event`` first), and
    decoded with orjson. A line in another shape is decoded and checked as a whole;
    unreadable lines are skipped, as ``read_records`` does.
    """
    wanted_events = {e.encode() for e in events}
    wanted_campaigns = None if campaigns is None else set(campaigns)
    marks = [b'"campaign":' + orjson.dumps(c) + b"," for c in wanted_campaigns or ()]
    # Whole seconds, as the log writes them: the cut rounds outwards, the exact test is below.
    low = _utc_text(since)
    high = _utc_text(until + timedelta(seconds=1) if until.microsecond else until)
    # Past this, no record can be in the span (records are late by at most _LATE_RECORDS):
    # a replay of last week stops at the end of last week, not at the end of the log.
    done = _utc_text(until + _LATE_RECORDS + timedelta(seconds=1))
    for file in log_files(path):
        try:
            handle = open(file, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:  # rotated away between listing and opening
            continue
        with handle:
            handle.seek(_first_offset(handle, _utc_text(since - _LATE_RECORDS)))
            for line in handle:
                if not line.endswith(b"\n"):
                    continue  # still being written
                if line.startswith(b'{"event":"'):
                    end = line.find(b'"', 10)
                    if line[10:end] not in wanted_events:
                        continue
                    if marks and not any(mark in line for mark in marks):
                        continue
                    at = line.find(b'"ts":"', end)
                    stamp = line[at + 6 : at + 31].decode("ascii", "replace")
                    if at > 0 and stamp.endswith("+00:00") and not low <= stamp < high:
                        if stamp >= done:
                            break
                        continue
                record = _decode(line)
                if record is None or record.get("event") not in events:
                    continue
                if wanted_campaigns is not None and record.get("campaign") not in wanted_campaigns:
                    continue
                ts = parse_ts(record.get("ts"))
                if ts is None or not since <= ts < until:
                    continue
                yield record


# Records are appended in time order, but not strictly: a late decision (a write-ahead
# intent settled by a later cycle) carries its own cycle's time. A seek backs off this far.
_LATE_RECORDS = timedelta(hours=1)
_SEEK_STOP = 64 * 1024  # below this many bytes, reading on is cheaper than seeking


def _first_offset(handle: BinaryIO, low: str) -> int:
    """Where to start reading a time-ordered log for records at or after ``low``: the
    start of a line at or before the first such line, found by bisecting the file's
    bytes, so a replay of a week reads that week of a months-long log (a rotated file
    entirely before ``low`` is skipped after a few reads)."""
    handle.seek(0, 2)
    lo, hi = 0, handle.tell()
    while hi - lo > _SEEK_STOP:
        mid = (lo + hi) // 2
        handle.seek(mid)
        handle.readline()  # the rest of the line the seek landed in
        stamp = _line_time(handle.readline())
        if stamp is not None and stamp < low:
            lo = mid
        else:
            hi = mid
    if lo == 0:
        return 0
    handle.seek(lo)
    handle.readline()
    return handle.tell()


def _line_time(line: bytes) -> str | None:
    """A record line's ``ts`` as written (UTC ISO text), or None when it has none."""
    at = line.find(b'"ts":"')
    if at < 0:
        return None
    stamp = line[at + 6 : at + 31].decode("ascii", "replace")
    return stamp if stamp.endswith("+00:00") else None


def _decode(line: bytes) -> dict[str, Any] | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _utc_text(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")
