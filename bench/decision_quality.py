"""Decision quality on every shipped scenario, full length: the table in docs/benchmarks.md.

    python bench/decision_quality.py [--jobs 2] [--scenario NAME ...] [--strategies ...]

Runs ``static``, ``rules`` (the shipped rules) and ``oracle`` (and ``edf`` with
``--strategies``) on each scenario over its whole span, prints one Markdown row per
strategy (on-time ratio, completed, idle agent-minutes, starved lists, longest list gap,
speed to lead, writes per campaign-day, flaps), then the gate verdict of
``mixer.simulate.gate`` for each scenario with deadlines. Deterministic (seeded): a re-run
gives the same table. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from mixer.emulator.scenario import load_scenario, shipped_scenarios
from mixer.shipped import shipped_rule_files
from mixer.simulate.backtest import BacktestResult, backtest
from mixer.simulate.gate import gate_failures


def run(name: str, strategies: tuple[str, ...]) -> BacktestResult:
    with tempfile.TemporaryDirectory() as folder:
        return backtest(
            load_scenario(name),
            shipped_rule_files(),
            workdir=Path(folder),
            strategies=strategies,  # type: ignore[arg-type]
        )


def rows(result: BacktestResult, days: float) -> list[str]:
    out = []
    for index, (name, r) in enumerate(result.strategies.items()):
        label = f"{result.scenario} ({days:g} d)" if index == 0 else ""
        on_time = "-" if r.on_time_ratio is None else f"{r.on_time_ratio:.1%}"
        if name == "rules":
            on_time = f"**{on_time}**"
        wait = r.wait_to_first_call_minutes
        lead = "-" if wait is None else f"{wait['mean']:.0f} / {wait['p90']:.0f}"
        out.append(
            f"| {label} | {name} | {on_time} | {r.completed} | {r.idle_agent_minutes:.0f} | "
            f"{len(r.starved_lists)} | {r.max_list_gap_hours:.1f} | {lead} | "
            f"{r.writes_per_campaign_day:.1f} | {r.flaps} |"
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--scenario", nargs="+", default=shipped_scenarios())
    parser.add_argument("--strategies", nargs="+", default=["static", "rules", "oracle"])
    args = parser.parse_args()
    strategies = tuple(args.strategies)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(run, args.scenario, [strategies] * len(args.scenario)))
    print(
        "| scenario | strategy | on time | completed | idle agent-min | starved | "
        "max gap h | lead wait min (mean / p90) | writes per campaign-day | flaps |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, result in zip(args.scenario, results, strict=True):
        days = load_scenario(name).duration.total_seconds() / 86400
        print("\n".join(rows(result, days)))
    print()
    for result in results:
        if {"static", "rules", "oracle"} <= set(result.strategies):
            rules = result.strategies["rules"]
            if rules.on_time_ratio is None:
                continue
            problems = gate_failures(result)
            verdict = "passes" if not problems else "MISSES: " + "; ".join(problems)
            oracle = result.strategies["oracle"].on_time_ratio or 1.0
            static = result.strategies["static"].on_time_ratio or 1.0
            print(
                f"- {result.scenario}: {rules.on_time_ratio / oracle:.1%} of the oracle, "
                f"{rules.on_time_ratio / static:.2f}x static: {verdict}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
