"""``amo-mixer demo``: emulator + daemon over loopback HTTP in accelerated time."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

DEFAULT_SPEED = 2880.0  # one simulated day in 30 real seconds


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="watch the daemon tune an emulated QM in accelerated time",
        description="Start the QM emulator on a free loopback port, run the real daemon "
        "against it in accelerated time (apply mode, the shipped rules), print each "
        "decision as it happens, then compare static weights, the rules and an "
        "earliest-deadline-first oracle, and write the decision log, the config and an "
        "HTML report into the output folder.",
    )
    parser.add_argument("--scenario", default="default", help="shipped scenario name or YAML file")
    parser.add_argument(
        "--speed",
        type=float,
        default=DEFAULT_SPEED,
        help="simulated seconds per real second (default: %(default)g, a day in 30 s)",
    )
    parser.add_argument(
        "--hours", type=float, default=24.0, help="simulated hours to run (default: 24)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="folder for the config, decision log and report "
        "(default: ./amo-mixer-demo-<timestamp>)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mixer.emulator.scenario import load_scenario
    from mixer.errors import UsageError
    from mixer.simulate.comparison import render_comparison
    from mixer.simulate.demo import run_demo

    if args.speed <= 0:
        raise UsageError("--speed must be positive, e.g. 2880 for a day in 30 seconds")
    if args.hours <= 0:
        raise UsageError("--hours must be positive, e.g. 24")
    scenario = load_scenario(args.scenario)
    output: Path = args.output or Path(f"amo-mixer-demo-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    out = sys.stdout
    start = scenario.start.astimezone(scenario.tz)
    print(
        f"amo-mixer demo: scenario {scenario.name}, {args.hours:g} simulated hours from "
        f"{start:%a %Y-%m-%d %H:%M} ({scenario.timezone}) at {args.speed:g}x",
        file=out,
    )
    print("the daemon applies the shipped rules; each change appears as it happens:", file=out)
    out.flush()
    result = run_demo(scenario, speed=args.speed, hours=args.hours, output=output, stream=out)
    print(
        f"\ndaemon stopped after {args.hours:g} simulated hours: {result.cycles} cycles, "
        f"{result.decisions} decisions, {result.daemon_seconds:.0f} s",
        file=out,
    )
    print("\n" + render_comparison(result.backtest), file=out)
    print(f"\ndone in {result.wall_seconds:.0f} s; output in {result.folder}/", file=out)
    print(f"  config        {result.config}", file=out)
    print(f"  decision log  {result.decision_log}", file=out)
    if result.report is not None:
        print(f"  report        {result.report}", file=out)
    elif result.report_error:
        print(f"  report        not written: {result.report_error}", file=out)
    config = result.config
    print("\nnext:", file=out)
    print(f"  amo-mixer log -c {config}", file=out)
    print(f"  amo-mixer report -c {config} -o {result.folder / 'report.html'}", file=out)
    return result.exit_code
