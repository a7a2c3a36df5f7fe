"""``amo-mixer simulate``: backtest rules against a scenario — static vs rules vs oracle."""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path
from typing import Any

DEFAULT_SCENARIO = "deadline-crunch"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="backtest rules on the emulator: static weights vs rules vs an oracle",
        description="Run a scenario on the emulator in simulated time three times: with "
        "the weights left alone (static), with the mixer applying the rules every "
        "simulated minute (rules), and with a dialer that serves the earliest deadline it "
        "can still meet (oracle). Prints on-time ratio, completed numbers, idle "
        "agent-minutes, starved lists, the longest gap a list waited, speed to lead, "
        "writes per day and flaps per strategy.",
    )
    parser.add_argument(
        "--scenario",
        default=DEFAULT_SCENARIO,
        help="a shipped scenario name or a scenario YAML file (default: %(default)s)",
    )
    parser.add_argument(
        "--rules",
        nargs="+",
        metavar="R",
        help="rule files or globs (default: the shipped rules)",
    )
    parser.add_argument(
        "--strategies",
        nargs="+",
        choices=["static", "rules", "oracle", "edf"],
        default=["static", "rules", "oracle"],
        metavar="S",
        help="which strategies to run: static, rules, oracle, edf (the older oracle that "
        "keeps serving passed deadlines first); default: static rules oracle",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="keep the rules run's config, state and decision log in DIR",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mixer.emulator.scenario import load_scenario
    from mixer.rule_loading import load_rules
    from mixer.shipped import shipped_rule_files
    from mixer.simulate.backtest import backtest
    from mixer.simulate.comparison import render_comparison
    from mixer.simulate.progress import ProgressBar
    from mixer.simulate.workdir import scratch_dir

    scenario = load_scenario(args.scenario)
    rule_files = expand_rule_args(args.rules) if args.rules else shipped_rule_files()
    load_rules(rule_files)  # a broken rules file fails here, before any simulated minute
    bar = ProgressBar(sys.stderr)
    try:
        if args.output is not None:
            folder: Path = args.output
            result = backtest(
                scenario, rule_files, workdir=folder, progress=bar, strategies=args.strategies
            )
        else:
            with scratch_dir() as folder:
                result = backtest(
                    scenario, rule_files, workdir=folder, progress=bar, strategies=args.strategies
                )
    finally:
        bar.close()
    if args.json:
        print(result.to_json())
    else:
        print(render_comparison(result))
        if args.output is not None:
            print(f"rules run kept in {args.output} (decision log: state/decisions.jsonl)")
    return 0


def expand_rule_args(patterns: list[str]) -> list[Path]:
    """Rule files named or matched by globs, sorted and without duplicates."""
    from mixer.errors import UsageError

    found: set[Path] = set()
    for pattern in patterns:
        matches = glob.glob(pattern) if glob.has_magic(pattern) else [pattern]
        paths = [Path(m) for m in matches if Path(m).is_file()]
        if not paths:
            raise UsageError(f"--rules {pattern!r}: no such rules file; give YAML files or globs")
        found.update(p.resolve() for p in paths)
    return sorted(found)
