"""``amo-mixer once``: one cycle, the plan printed as a table or JSON."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from datetime import UTC, tzinfo
from typing import TYPE_CHECKING, Any

from mixer.commands._common import (
    add_config_argument,
    add_tz_argument,
    rules_text,
    settings_from,
    show_time,
    zone_from,
    zone_name,
)
from mixer.printable import printable

if TYPE_CHECKING:
    from mixer.cycle import CycleReport, CycleRunner


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "once",
        help="run one cycle and print the plan",
        description="Run one cycle: read every campaign, evaluate the rules, and print the "
        "plan. Writes to QM only with --apply (or mode: apply in the config). A dry run is a "
        "preview: it plans from the state on disk (a running daemon's too) and writes "
        "nothing, neither state nor decision log.",
    )
    add_config_argument(parser)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--apply", dest="mode", action="store_const", const="apply", help="write the changes to QM"
    )
    mode.add_argument(
        "--dry-run",
        dest="mode",
        action="store_const",
        const="dry-run",
        help="write nothing (the default unless the config says apply)",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    add_tz_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mixer.clock import SystemClock
    from mixer.lock import StateLock
    from mixer.logs import SilentLog, configure_logging
    from mixer.preflight import check_setup
    from mixer.wiring import build_runner, state_path

    settings = settings_from(args)
    zone = zone_from(args, settings)
    configure_logging(debug=args.debug, stream=sys.stderr, quiet=True)
    mode = args.mode or settings.mode
    checked = check_setup(settings)  # exit 2 before any QM call, as check would say
    for warning in checked.warnings:
        print(f"amo-mixer: warning: {warning}", file=sys.stderr)
    # The runner's own log lines (cycle, rule error) are what the table and the stderr
    # lines below say once, for a person.
    build = functools.partial(
        build_runner, settings, clock=SystemClock(), log=SilentLog(), rules=checked.rules
    )
    if mode == "dry-run":
        # A preview: plans from the state on disk (a running daemon's too) and writes
        # nothing there, so it needs no lock.
        if not state_path(settings).exists():
            print(
                f"amo-mixer: no state in {settings.state_dir} yet: base weights are taken "
                "from QM's current weights",
                file=sys.stderr,
            )
        report = _one_cycle(build(mode="dry-run", preview=True))
    else:
        # Writing belongs to one process at a time: a daemon running on the state
        # directory makes `once --apply` refuse rather than interleave writes.
        with StateLock(settings.state_dir):
            runner = build(mode="apply")
            runner.log_config_loaded()  # the audit trail names the rules that wrote
            report = _one_cycle(runner)
    if args.json:
        print(json.dumps(report_as_json(report), indent=2, ensure_ascii=False))
    else:
        print(render_table(report, zone))
    # The plan goes to stdout; each failed campaign is one line on stderr.
    for name, error in report.errors.items():
        print(printable(f"amo-mixer: campaign {name!r}: {error}"), file=sys.stderr)
    for name, result in report.results.items():
        for e in result.rule_errors:
            print(
                printable(
                    f"amo-mixer: campaign {name!r}, list {e.list!r}: rule {e.rule!r} failed: "
                    f"{e.message}; the list was left as QM has it (see amo-mixer explain "
                    f"--campaign {name!r} --list {e.list!r})"
                ),
                file=sys.stderr,
            )
    return report.exit_code


def _one_cycle(runner: CycleRunner) -> CycleReport:
    try:
        return runner.run_cycle()
    finally:
        runner.close()


def report_as_json(report: CycleReport) -> dict[str, object]:
    campaigns: dict[str, object] = {}
    for name, result in report.results.items():
        plan = result.plan
        campaigns[name] = {
            "outcome": result.outcome,
            "error": result.error,
            "applied": result.applied,
            "changes": [
                {
                    "list": d.list,
                    "weight": [d.before_weight, d.after_weight],
                    "paused": [d.before_paused, d.after_paused],
                    "rules": list(d.rules),
                    "overridden": list(d.overridden),
                    "reason": d.reason,
                }
                for d in (plan.decisions if plan else ())
            ],
            "overrides": [o.list for o in (plan.overrides if plan else ())],
            "guardrail_stops": [s.reason for s in (plan.stops if plan else ())],
            "rule_errors": [
                {"list": e.list, "rule": e.rule, "error": e.message} for e in result.rule_errors
            ],
        }
    return {
        "cycle_id": report.cycle_id,
        "ts": report.now.isoformat(timespec="seconds"),
        "mode": report.mode,
        "campaigns": campaigns,
    }


def render_table(report: CycleReport, zone: tzinfo = UTC) -> str:
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for name, result in report.results.items():
        plan = result.plan
        if result.error:
            notes.append(printable(f"{name}: error (see stderr)"))
        if plan is None:
            continue
        for stop in plan.stops:
            notes.append(printable(f"{name}: guardrail stop: {stop.reason}"))
        for override in plan.overrides:
            notes.append(printable(f"{name}/{override.list}: override: {override.reason}"))
        for e in plan.rule_errors:
            notes.append(
                printable(f"{name}/{e.list}: rule error: {e.rule!r} failed, list left as it is")
            )
        for d in plan.decisions:
            rows.append(
                (
                    printable(name),
                    printable(d.list),
                    f"{d.before_weight}→{d.after_weight}",
                    f"{_yn(d.before_paused)}→{_yn(d.after_paused)}",
                    printable(rules_text(d.rules, d.overridden)),
                    printable(d.reason),
                )
            )
    header = ("CAMPAIGN", "LIST", "WEIGHT", "PAUSED", "RULES", "REASON")
    lines = [
        f"cycle {report.cycle_id} ({report.mode}) at "
        f"{show_time(report.now, zone)} {zone_name(zone)}"
    ]
    if rows:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            cells = (cell.ljust(w) for cell, w in zip(row, widths, strict=True))
            lines.append("  ".join(cells).rstrip())
    elif not report.errors:
        lines.append("no changes")
    elif len(report.errors) < len(report.results):
        lines.append("no changes in the campaigns that were read")
    lines.extend(notes)
    if report.mode == "dry-run" and rows:
        lines.append("dry-run: nothing was written (use --apply to write)")
    return "\n".join(lines)


def _yn(value: bool) -> str:
    return "yes" if value else "no"
