"""``amo-mixer status``: when the last cycle ran and how it went, the rule set in force,
manual holds and pending ``for:`` timers — from the state store and the decision log,
offline and read-only (no QM call, no lock: it works beside the running daemon)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from mixer.commands._common import add_config_argument, add_tz_argument, settings_from, zone_from
from mixer.errors import MixerError
from mixer.printable import printable
from mixer.status.model import StatusSnapshot


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="last cycle, outcome, rule set, holds and timers",
        description="Show, from the state directory and the decision log, when the last "
        "cycle ran and its outcome per campaign, the rule set hash in force, active manual "
        "holds with their end, and pending `for:` timers. Reads nothing from QM and "
        "writes nothing; safe while the daemon runs. For live list facts, open the "
        "daemon's status page (http://127.0.0.1:9864/ by default).",
    )
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    add_tz_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mixer.clock import SystemClock
    from mixer.rule_loading import load_rules
    from mixer.status.offline import recent_records, rules_hash, status_from_log
    from mixer.store import StateStore
    from mixer.wiring import state_path

    settings = settings_from(args)
    tz = zone_from(args, settings)
    now = SystemClock().now()
    files = settings.rule_files()
    notes: list[str] = []
    rules: dict[str, Any] = {}
    files_hash = rules_hash(files)  # an unreadable file hashes as absent
    try:
        rule_set = load_rules(files)
        rules = {c: rule_set.for_campaign(c).rules for c in settings.campaigns}
    except MixerError as exc:
        notes.append(f"rule files do not load ({exc.message}): no `for:` timers shown")
    memory: dict[str, Any] = {}
    store_path = state_path(settings)
    if store_path.exists():
        with StateStore(store_path, preview=True) as store:
            memory = {c: store.load_memory(c) for c in settings.campaigns}
    else:
        notes.append(f"no state store at {store_path}: the daemon has not run here yet")
    records = recent_records(settings.decision_log, now)
    status = status_from_log(
        list(settings.campaigns), records, memory, rules, now, files_hash=files_hash
    )
    if notes:
        status = replace(status, notes=(*status.notes, *notes))
    if args.json:
        print(json.dumps(status.as_json(), indent=2, ensure_ascii=False))
    else:
        print(render_status(status, tz, now))
        if settings.metrics is not None:
            host, port = settings.metrics.host, settings.metrics.port
            shown = f"[{host}]" if ":" in host else host
            print(f"\nlive lists, deadlines and why: http://{shown}:{port}/ (the daemon's page)")
    return 0


def render_status(status: StatusSnapshot, tz: ZoneInfo, now: datetime) -> str:
    """The status as a few lines per campaign, times in ``tz``."""
    lines = [
        f"last cycle:  {_local(status.generated_at, tz, now)}"
        + (f"  (cycle {status.cycle_id})" if status.cycle_id else ""),
        f"mode:        {status.mode or 'unknown (no cycle in the log)'}",
        f"rule set:    {status.rules_hash or 'unknown'}",
        f"times in:    {tz}",
    ]
    lines.extend(f"note:        {note}" for note in status.notes)
    for c in status.campaigns:
        lines.append("")
        outcome = c.outcome or "no cycle logged"
        lines.append(f"{c.name}: {outcome}, last cycle {_local(c.last_cycle, tz, now)}")
        if c.error:
            lines.append(f"  error: {c.error}")
        if c.holds:
            lines.append("  manual holds:")
            lines.extend(
                f"    {h.list}: left alone until {_local(h.until, tz, now)}" for h in c.holds
            )
        else:
            lines.append("  manual holds: none")
        if c.timers:
            lines.append("  pending for: timers:")
            lines.extend(
                f"    {t.list}: {t.rule} fires at {_local(t.fires_at, tz, now)} "
                f"if its condition still holds"
                for t in c.timers
            )
        else:
            lines.append("  pending for: timers: none")
        if c.decisions:
            lines.append(f"  last decisions ({len(c.decisions)}):")
            for d in c.decisions:
                paused = (
                    f", paused {_yn(d.paused_before)}→{_yn(d.paused_after)}"
                    if d.paused_before != d.paused_after
                    else ""
                )
                lines.append(
                    f"    {_local(d.ts, tz, now)}  {d.list}: weight "
                    f"{d.weight_before}→{d.weight_after}{paused}"
                    f"{'' if d.applied else ' (not applied)'} — {d.reason}"
                )
    return "\n".join(printable(line) for line in lines)  # each entry is one line


def _local(ts: str | None, tz: ZoneInfo, now: datetime) -> str:
    if not ts:
        return "never"
    try:
        when = datetime.fromisoformat(ts)
    except ValueError:
        return ts
    ago = now - when
    shown = when.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    seconds = ago.total_seconds()
    if seconds < 0:
        return f"{shown} (in {_span(-seconds)})"
    return f"{shown} ({_span(seconds)} ago)"


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _yn(value: bool) -> str:
    return "yes" if value else "no"
