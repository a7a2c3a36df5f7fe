"""``amo-mixer once``: one cycle, the plan printed as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from mixer.commands._common import add_config_argument, settings_from
from mixer.printable import printable

if TYPE_CHECKING:
    from mixer.cycle import CycleReport


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "once",
        help="run one cycle and print the plan",
        description="Run one cycle: read every campaign, evaluate the rules, and print the "
        "plan. Writes to QM only with --apply (or mode: apply in the config).",
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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mixer.clock import SystemClock
    from mixer.lock import StateLock
    from mixer.logs import configure_logging
    from mixer.wiring import build_runner

    settings = settings_from(args)
    configure_logging(debug=args.debug, stream=sys.stderr, quiet=True)
    # The state directory belongs to one process at a time: a daemon running on it
    # makes `once` refuse rather than interleave memory and decision-log writes.
    with StateLock(settings.state_dir):
        runner = build_runner(settings, clock=SystemClock(), mode=args.mode)
        try:
            report = runner.run_cycle()
        finally:
            runner.close()
    if args.json:
        print(json.dumps(report_as_json(report), indent=2, ensure_ascii=False))
    else:
        print(render_table(report))
    # The plan goes to stdout; each failed campaign is one line on stderr.
    for name, error in report.errors.items():
        print(printable(f"amo-mixer: campaign {name!r}: {error}"), file=sys.stderr)
    return report.exit_code


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
                    "reason": d.reason,
                }
                for d in (plan.decisions if plan else ())
            ],
            "overrides": [o.list for o in (plan.overrides if plan else ())],
            "guardrail_stops": [s.reason for s in (plan.stops if plan else ())],
        }
    return {
        "cycle_id": report.cycle_id,
        "ts": report.now.isoformat(timespec="seconds"),
        "mode": report.mode,
        "campaigns": campaigns,
    }


def render_table(report: CycleReport) -> str:
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
        for d in plan.decisions:
            rows.append(
                (
                    printable(name),
                    printable(d.list),
                    f"{d.before_weight}→{d.after_weight}",
                    f"{_yn(d.before_paused)}→{_yn(d.after_paused)}",
                    printable(", ".join(d.rules) or "-"),
                )
            )
    header = ("CAMPAIGN", "LIST", "WEIGHT", "PAUSED", "RULES")
    lines = [f"cycle {report.cycle_id} ({report.mode})"]
    if rows:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    else:
        lines.append("no changes")
    lines.extend(notes)
    if report.mode == "dry-run" and rows:
        lines.append("dry-run: nothing was written (use --apply to write)")
    return "\n".join(lines)


def _yn(value: bool) -> str:
    return "yes" if value else "no"
