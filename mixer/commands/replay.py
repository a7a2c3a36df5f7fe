"""``amo-mixer replay``: what a new rule set would have decided on the recorded cycles."""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from mixer.clock import Clock, SystemClock
from mixer.commands._common import add_config_argument, add_tz_argument, parse_when, zone_from
from mixer.errors import MixerError, UsageError
from mixer.printable import printable

if TYPE_CHECKING:
    from mixer.config import Settings
    from mixer.replay import ReplayResult

DEFAULT_ROWS = 50


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="what new rules would have decided on the recorded cycles",
        description="Evaluate a new rule set against the cycles the decision log recorded, "
        "through the same facts, rules, guardrails and plan as the daemon (no QM call, "
        "the daemon's state untouched), and show where it decides differently from the "
        "running rules: the changes, counts per rule, and how long each list's weight or "
        "pause would have differed. A replay shows decisions, not outcomes: the dialer "
        "would have pulled differently under other weights.",
    )
    add_config_argument(parser)
    parser.add_argument(
        "--since",
        required=True,
        metavar="WHEN",
        help="replay from this time: a duration back from now (7d) or an ISO 8601 time",
    )
    parser.add_argument(
        "--until", metavar="WHEN", help="replay up to this time (default: now; same forms)"
    )
    parser.add_argument(
        "--rules",
        required=True,
        nargs="+",
        metavar="NEW_GLOB",
        help="the new rule files or globs to replay (quote globs)",
    )
    parser.add_argument("--campaign", metavar="GLOB", help="only campaigns matching")
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    add_tz_argument(parser)
    parser.add_argument(
        "--rows",
        type=int,
        default=DEFAULT_ROWS,
        metavar="N",
        help="differing changes to show in the table (default: %(default)s; --json has all)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="worker processes, campaigns spread over them (default: one per core)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, *, clock: Clock | None = None, out: IO[str] | None = None) -> int:
    from mixer.commands.simulate import expand_rule_args
    from mixer.config import load_settings
    from mixer.rule_loading import load_rules
    from mixer.simulate.progress import ProgressBar

    out = out if out is not None else sys.stdout
    now = (clock or SystemClock()).now()
    since = parse_when(args.since, now, "--since")
    until = parse_when(args.until, now, "--until") or now
    assert since is not None  # --since is required
    if since >= until:
        raise UsageError(f"--since ({args.since}) must be before --until ({args.until or 'now'})")
    rule_files = expand_rule_args(args.rules)
    load_rules(rule_files)  # a broken rules file fails here, in one line
    settings = load_settings(args.config, environ=os.environ, read_secrets=False)
    bar = ProgressBar(sys.stderr)
    try:
        result = replay_log(
            settings,
            rule_files,
            since,
            until,
            campaign=args.campaign,
            jobs=args.jobs,
            progress=bar,
        )
    finally:
        bar.close()
    if args.json:
        out.write(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        zone = zone_from(args, settings)
        out.write(render_table(result, zone, rows=args.rows, rules=args.rules))
    return 0


def replay_log(
    settings: Settings,
    rule_files: Sequence[Path],
    since: datetime,
    until: datetime,
    *,
    campaign: str | None = None,
    jobs: int | None = None,
    progress: Any = None,
) -> ReplayResult:
    """Replay ``rule_files`` on the configured decision log, from one history window
    before ``since`` (shared by ``replay`` and ``report --replay-rules``)."""
    from mixer import replay_jobs
    from mixer.decisions import log_files
    from mixer.wiring import engine_settings_from, limits_from

    path = settings.decision_log
    if not any(p.exists() for p in log_files(path)):
        raise MixerError(
            f"no decision log at {path}: nothing recorded to replay "
            f"(state_dir and decision_log in {settings.config_path} say where it is)"
        )
    campaigns = [
        c for c in settings.campaigns if campaign is None or fnmatch.fnmatchcase(c, campaign)
    ]
    if not campaigns:
        raise UsageError(
            f"--campaign {campaign!r} matches none of the configured campaigns "
            f"({', '.join(settings.campaigns)})"
        )
    try:
        result = replay_jobs.replay_log(
            path,
            rule_files,
            campaigns,
            since=since,
            until=until,
            settings=engine_settings_from(settings),
            limits=limits_from(settings),
            jobs=jobs,
            progress=progress,
            pools=settings.pools(),
        )
    except OSError as exc:
        raise MixerError(
            f"cannot read the decision log {path}: {exc.strerror or exc}; check its permissions"
        ) from exc
    if result.cycles == 0:
        raise MixerError(
            f"the decision log {path} has no cycle with lists between "
            f"{since.isoformat(timespec='minutes')} and {until.isoformat(timespec='minutes')}: "
            "choose another --since/--until"
        )
    return result


def render_table(result: ReplayResult, tz: ZoneInfo, *, rows: int, rules: Sequence[str]) -> str:
    """The result for people: header, caveats, differing changes, rules, lists."""
    lines = [
        f"Replay of {' '.join(rules)}: {_local(result.since, tz)} to {_local(result.until, tz)} "
        f"({tz.key}), {result.cycles} recorded cycles (+{result.warmup_cycles} warm-up).",
    ]
    lines += [f"Note: {text}" for text in result.caveats]
    for (rule, message), count in result.rule_errors.most_common(5):
        lines.append(
            f"Rule error: {rule!r} raised in {count} list-cycles (those lists were left "
            f"as they were, as the daemon does): {message}"
        )
    lines.append("")
    changes = result.changes
    if not changes:
        lines.append("No difference: the new rules decide what the running rules decided.")
        return "\n".join(printable(line) for line in lines) + "\n"
    shown = changes[: max(rows, 0)]
    more = f"; the first {len(shown)} shown, --json has all" if len(shown) < len(changes) else ""
    lines.append(f"Changes that differ: {len(changes)}{more}")
    table = [("time", "campaign", "list", "before", "old decision", "new decision", "new reason")]
    for c in shown:
        table.append(
            (
                _local(c.ts, tz),
                c.campaign,
                c.list,
                _state(c.before),
                _decision(c.old, c.old_rules, c.recorded),
                _decision(c.new, c.new_rules, c.before),
                c.new_reason or "(no rule fired)",
            )
        )
    lines += _columns(table)
    lines.append("")
    lines.append("Rules in the differing changes (how often each fired):")
    counts = result.rule_counts
    names = sorted(set(counts["old"]) | set(counts["new"]))
    rule_rows = [("rule", "running rules", "new rules")]
    rule_rows += [(n, str(counts["old"][n]), str(counts["new"][n])) for n in names]
    lines += _columns(rule_rows) if names else ["  (none: the differences come from guardrails)"]
    lines.append("")
    lines.append("Lists that would have differed:")
    list_rows = [("campaign", "list", "weight differed", "pause differed", "changes")]
    for s in sorted(
        result.differing_lists,
        key=lambda s: -(s.weight_differed + s.paused_differed).total_seconds(),
    ):
        list_rows.append(
            (
                s.campaign,
                s.list,
                _span(s.weight_differed),
                _span(s.paused_differed),
                str(s.changes),
            )
        )
    lines += _columns(list_rows)
    return "\n".join(printable(line) for line in lines) + "\n"


def _columns(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Left-aligned columns; the last one unpadded so long reasons wrap, not widen."""
    rows = [tuple(printable(cell) for cell in row) for row in rows]  # names come from QM
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + "  " + r[-1]
        for r in rows
    ]


def _local(when: datetime, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _state(state: tuple[int, bool]) -> str:
    return f"{state[0]}{' paused' if state[1] else ''}"


def _decision(state: tuple[int, bool], rules: Sequence[str], before: tuple[int, bool]) -> str:
    if rules:
        return f"{_state(state)} ({', '.join(rules)})"
    return f"{_state(state)} ({'no change' if state == before else 'guardrails'})"


def _span(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes == 0:
        return "-"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}" if hours else f"{minutes}m"
