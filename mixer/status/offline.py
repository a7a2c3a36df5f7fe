"""``amo-mixer status`` data: the status model built offline, read-only, from the state
store and the decision log (the daemon's page builds it from memory instead).

What the log does not say is left empty, never guessed: lists' live facts (progress,
rates, ETA) exist only in a running daemon, so the offline status shows the last cycle
per campaign, its outcome, the rule set, holds, timers and the recent decisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mixer.audit import fingerprint
from mixer.decisions import read_records
from mixer.engine.memory import ListMemory
from mixer.status.model import (
    CampaignStatus,
    StatusSnapshot,
    active_holds,
    decision_from_record,
    newest_first,
    pending_timers,
)

LOOKBACK = timedelta(days=2)  # the log read for the last cycle and recent decisions
KEEP_DECISIONS = 10


def rules_hash(files: Sequence[Path]) -> str:
    """The rule set's hash as the daemon's ``config`` events record it."""
    return fingerprint(None, files).rules_hash


def status_from_log(
    campaigns: Sequence[str],
    records: Iterable[Mapping[str, Any]],
    memory: Mapping[str, Mapping[str, ListMemory]],
    rules: Mapping[str, Sequence[Any]],
    now: datetime,
    *,
    files_hash: str | None,
) -> StatusSnapshot:
    """The status as the decision log and the state store tell it (pure)."""
    last_cycle: dict[str, Mapping[str, Any]] = {}
    decisions: dict[str, list[Mapping[str, Any]]] = {}
    # The rule set in force: the full hash of a `config` event, or the short one a later
    # cycle record carries when it names another rule set (whichever is the later word).
    logged_hash: str | None = None
    refused: Mapping[str, Any] | None = None  # a reload refused after the last load
    mode: str | None = None
    for record in records:
        event = record.get("event")
        if event == "cycle":
            last_cycle[str(record.get("campaign"))] = record
            mode = str(record.get("mode") or mode or "") or None
            short = record.get("rules_hash")
            if short and not (logged_hash or "").startswith(short):
                logged_hash = short
        elif event == "decision":
            decisions.setdefault(str(record.get("campaign")), []).append(record)
        elif event == "config" and record.get("outcome") == "loaded":
            logged_hash = record.get("rules_hash") or logged_hash
            refused = None
        elif event == "config" and record.get("outcome") == "refused":
            refused = record
    if logged_hash is not None and files_hash is not None and files_hash.startswith(logged_hash):
        logged_hash = files_hash  # a cycle's short hash of these very files: show it whole
    notes = []
    if refused is not None:
        notes.append(
            f"a reload was refused at {refused.get('ts')}: the daemon runs on the config "
            "loaded before it (amo-mixer check -c CONFIG shows why)"
        )
    if logged_hash is None:
        notes.append(
            "the decision log records no rule-set hash: shown is the hash of the rule files "
            "on disk now"
        )
    elif files_hash is not None and not files_hash.startswith(logged_hash):
        notes.append(
            f"the rule files on disk (hash {files_hash[:12]}) differ from the rule set in "
            "force in the log: reload the daemon to apply them"
        )
    out = []
    for name in campaigns:
        cycle = last_cycle.get(name)
        mem = memory.get(name, {})
        out.append(
            CampaignStatus(
                name=name,
                last_cycle=str(cycle.get("ts")) if cycle else None,
                outcome=str(cycle.get("outcome")) if cycle else None,
                error=(cycle.get("error") or None) if cycle else None,
                lists_as_of=None,
                holds=active_holds(mem, now),
                timers=pending_timers(mem, rules.get(name, ()), now),
                decisions=newest_first(
                    [decision_from_record(r) for r in decisions.get(name, [])], KEEP_DECISIONS
                ),
            )
        )
    newest = max((c.last_cycle for c in out if c.last_cycle), default=None)
    cycle_ids = [str(r.get("cycle_id")) for r in last_cycle.values() if r.get("ts") == newest]
    return StatusSnapshot(
        generated_at=newest,
        mode=mode,
        rules_hash=logged_hash or files_hash,
        interval_s=None,
        cycle_id=cycle_ids[0] if cycle_ids else None,
        campaigns=tuple(out),
        source="log",
        notes=tuple(notes),
    )


def recent_records(log_path: Path, now: datetime) -> list[dict[str, Any]]:
    """The log's cycle, decision and config events of the last ``LOOKBACK``; the whole
    log (rotated files too) when that span holds no cycle (a daemon stopped for days)."""
    if not log_path.exists():
        return []
    events = ("cycle", "decision", "config")
    records = list(read_records(log_path, since=now - LOOKBACK, event=events))
    if not any(r.get("event") == "cycle" for r in records):
        records = list(read_records(log_path, event=events))
    return records
