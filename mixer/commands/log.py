"""``amo-mixer log``: query the decision log as a table, CSV or JSON Lines.

Reads the log (and its rotated files) while the daemon may be writing it. It needs the
config only to find the log, so it never reads password files: an analyst account that
may read the log but not the QM password can use it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, tzinfo
from typing import IO, Any

from mixer.clock import Clock, SystemClock
from mixer.commands._common import (
    add_config_argument,
    add_tz_argument,
    parse_when,
    rules_text,
    show_time,
    zone_from,
    zone_name,
)
from mixer.errors import MixerError, UsageError
from mixer.printable import printable
from mixer.records import EVENTS

FORMATS = ("table", "csv", "json")
# The reason comes last and unpadded: long sentences wrap instead of widening every row.
# The time column comes first, headed by the zone: "time (Europe/Zurich)".
TABLE_COLUMNS = ("campaign", "list", "weight", "paused", "rules", "applied", "reason")
CYCLE_COLUMNS = (
    "campaign",
    "mode",
    "outcome",
    "lists",
    "changes",
    "applied",
    "ms",
    "error",
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "log",
        help="query the decision log",
        description="Show what the mixer decided and why. table and csv show decisions "
        "(one row each) unless --event says otherwise; json prints the matching records "
        "as JSON Lines, every event unless --event narrows it.",
    )
    add_config_argument(parser)
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="from this time on: a duration back from now (24h, 7d) or an ISO 8601 time "
        "(2026-04-10T08:00, in the --tz zone unless it has an offset)",
    )
    parser.add_argument("--until", metavar="WHEN", help="before this time (same forms as --since)")
    parser.add_argument("--campaign", metavar="GLOB", help="campaigns matching, e.g. 'Sales*'")
    parser.add_argument("--list", dest="list_name", metavar="GLOB", help="lists matching")
    parser.add_argument(
        "--event",
        metavar="EVENTS",
        help=f"comma-separated events to show: {', '.join(EVENTS)}",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )
    add_tz_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, *, clock: Clock | None = None, out: IO[str] | None = None) -> int:
    from mixer.config import load_settings
    from mixer.decisions import log_files, read_records

    out = out if out is not None else sys.stdout
    now = (clock or SystemClock()).now()
    events = _events(args.event, args.format)
    settings = load_settings(args.config, environ=os.environ, read_secrets=False)
    zone = zone_from(args, settings)
    since = parse_when(args.since, now, "--since", zone)
    until = parse_when(args.until, now, "--until", zone)
    if since and until and since >= until:
        raise UsageError(f"--since ({args.since}) must be before --until ({args.until})")
    path = settings.decision_log
    if not any(p.exists() for p in log_files(path)):
        raise MixerError(
            f"no decision log at {path} yet: the mixer writes it from its first cycle "
            f"(state_dir and decision_log in {settings.config_path} say where)"
        )
    records = read_records(
        path,
        since=since,
        until=until,
        campaign=args.campaign,
        list_name=args.list_name,
        event=events,
    )
    try:
        if args.format == "json":
            count = _write_json(records, out)
        elif args.format == "csv":
            count = _write_csv(records, out, zone)
        else:
            count = _write_table(records, out, zone, events)
        out.flush()
    except BrokenPipeError:  # `amo-mixer log | head`: the reader has seen enough
        _silence_stdout()
        return 0
    except OSError as exc:
        raise MixerError(
            f"cannot read the decision log {path}: {exc.strerror or exc}; check its permissions"
        ) from exc
    if records.skipped:
        print(f"warning: {records.skipped} unreadable line(s) skipped in {path}", file=sys.stderr)
    if count == 0 and args.format == "table":
        print("no matching records", file=sys.stderr)
    return 0


def _events(text: str | None, output_format: str) -> list[str] | None:
    if text is None:
        return None if output_format == "json" else ["decision"]
    events = [e.strip() for e in text.split(",") if e.strip()]
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        raise UsageError(
            f"--event {text!r}: unknown event {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(EVENTS)}"
        )
    return events


def _write_json(records: Iterable[dict[str, Any]], out: IO[str]) -> int:
    count = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count


def csv_row(record: dict[str, Any], zone: tzinfo | None = None) -> list[str]:
    """One decision record as the SPEC's CSV columns (rules joined with ';'); ``ts`` in
    ``zone`` with its offset when given, as stored (UTC) otherwise."""
    from mixer.record_times import parse_ts

    before, after = _mapping(record.get("before")), _mapping(record.get("after"))
    rules = record.get("rules")
    ts = parse_ts(record.get("ts")) if zone is not None else None
    return [
        ts.astimezone(zone).isoformat() if ts else _text(record.get("ts")),
        _text(record.get("campaign")),
        _text(record.get("list")),
        _text(record.get("mode")),
        _text(before.get("weight")),
        _text(after.get("weight")),
        _text(before.get("paused")),
        _text(after.get("paused")),
        ";".join(map(str, rules)) if isinstance(rules, list) else _text(rules),
        _text(record.get("reason") or record.get("error")),
        _text(record.get("applied")),
    ]


def _write_csv(records: Iterable[dict[str, Any]], out: IO[str], zone: tzinfo) -> int:
    from mixer.decisions import DECISION_CSV_COLUMNS

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(DECISION_CSV_COLUMNS)
    count = 0
    for record in records:
        writer.writerow(csv_row(record, zone))
        count += 1
    return count


def _write_table(
    records: Iterable[dict[str, Any]],
    out: IO[str],
    zone: tzinfo = UTC,
    events: Sequence[str] | None = None,
) -> int:
    arrow = "→" if _can_encode(out, "→") else "->"
    only_cycles = events is not None and list(events) == ["cycle"]
    columns = (f"time ({zone_name(zone)})", *(CYCLE_COLUMNS if only_cycles else TABLE_COLUMNS))
    row_of = _cycle_row if only_cycles else _table_row
    rows = [
        [printable(cell) for cell in (_when(record, zone), *row_of(record, arrow))]
        for record in records
    ]
    if not rows:
        return 0
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(columns)]
    out.write(_line(columns, widths))
    for row in rows:
        out.write(_line(row, widths))
    return len(rows)


def _table_row(record: dict[str, Any], arrow: str) -> list[str]:
    event = record.get("event")
    if event == "override":  # what the mixer expected -> what a human left
        before, after = _mapping(record.get("expected")), _mapping(record.get("found"))
    else:
        before, after = _mapping(record.get("before")), _mapping(record.get("after"))
    reason = _text(record.get("reason") or record.get("error"))
    if event == "cycle":
        reason = _cycle_summary(record)
    if event == "config":
        reason = _config_text(record)
    if event != "decision":
        reason = f"[{event}] {reason}".rstrip()
    rules = record.get("rules")
    applied = record.get("applied")
    return [
        _text(record.get("campaign")),
        _text(record.get("list")),
        _change(before.get("weight"), after.get("weight"), arrow, _text),
        _change(before.get("paused"), after.get("paused"), arrow, _yes_no),
        rules_text(rules, record.get("overridden"), empty="", sep=","),
        "" if applied is None else _yes_no(applied),
        reason,
    ]


def _cycle_row(record: dict[str, Any], arrow: str) -> list[str]:
    """One campaign's cycle: what was read, what changed, how long, and any error."""
    duration = record.get("duration_ms")
    return [
        _text(record.get("campaign")),
        _text(record.get("mode")),
        _text(record.get("outcome")),
        _text(record.get("lists_seen")),
        _text(record.get("changes")),
        _yes_no(record.get("applied")),
        f"{duration:.0f}" if isinstance(duration, int | float) else "",
        _text(record.get("error")),
    ]


def _when(record: dict[str, Any], zone: tzinfo) -> str:
    from mixer.record_times import parse_ts

    ts = parse_ts(record.get("ts"))
    return show_time(ts, zone) if ts else _text(record.get("ts"))


def _cycle_summary(record: dict[str, Any]) -> str:
    """A cycle record in the decision table's reason column."""
    parts = [
        _text(record.get("outcome")) or "?",
        f"{_text(record.get('lists_seen'))} lists read",
        f"{_text(record.get('changes'))} changes",
    ]
    if record.get("error"):
        parts.append(_text(record.get("error")))
    return ", ".join(parts)


def _config_text(record: dict[str, Any]) -> str:
    if record.get("outcome") == "refused":
        errors = record.get("errors")
        listed = "; ".join(map(str, errors)) if isinstance(errors, list) else ""
        return f"reload refused, the running config stays: {listed}"
    rules_hash = _text(record.get("rules_hash"))[:12]
    return (
        f"loaded {_text(record.get('config'))}: rules {rules_hash} "
        f"({_text(record.get('rule_count'))} rules), mode {_text(record.get('mode'))}"
    )


def _change(before: object, after: object, arrow: str, show: Any) -> str:
    if before is None and after is None:
        return ""
    if before == after:
        return str(show(before))
    return f"{show(before)}{arrow}{show(after)}"


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    padded = [c.ljust(w) for c, w in zip(cells[:-1], widths[:-1], strict=True)]
    return "  ".join([*padded, cells[-1]]).rstrip() + "\n"


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _yes_no(value: object) -> str:
    if value is None:
        return ""
    return "yes" if value else "no"


def _can_encode(out: IO[str], text: str) -> bool:
    try:
        text.encode(getattr(out, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the exit flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)
