"""Simulation speed: 7 simulated days, 100 lists, a real mixer cycle every simulated minute.

Target: at most 60 s of wall time on 2 cores, with memory flat over the run (RSS at the
middle and at the end close to RSS at the start of the cycles). Run from the repository:

    python bench/simulate.py [--days 7] [--lists 100] [--profile] [--tracemalloc]
                             [--against OTHER_TREE]

Prints wall time, cycles per second and memory at start, middle and end; ``--profile``
adds the top functions by cumulative time (cProfile). ``--against`` runs this benchmark
from another source tree (say ``git worktree add /tmp/old <commit>``) at the same time,
each run pinned to its own core, and prints the ratio: a shared machine's speed drifts
between runs, runs side by side see the same machine.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from mixer.emulator.scenario import Scenario
from mixer.shipped import shipped_rule_files
from mixer.simulate.backtest import run_strategy
from mixer.simulate.workdir import scratch_dir

CAMPAIGNS = 4


def generated_scenario(days: int, lists: int) -> Scenario:
    """``lists`` lists over four campaigns: staggered deadlines, a backlog, a standby each."""
    campaigns: dict[str, Any] = {}
    per_campaign = max(lists // CAMPAIGNS, 1)
    for c in range(CAMPAIGNS):
        items: list[dict[str, Any]] = []
        for i in range(per_campaign):
            item: dict[str, Any] = {
                "name": f"List {c:02d}-{i:03d}",
                "numbers": 150 + 37 * (i % 9),
                "weight": 5 + (i % 4) * 5,
            }
            if i % 3 == 0:
                day = 22 + (i // 3) % days
                item["deadline"] = f"2024-04-{day:02d} 18:00"
                item["tags"] = ["deadline"]
            if i == per_campaign - 1:
                item.update(paused=True, standby=True, tags=["reserve"], numbers=3000)
            items.append(item)
        campaigns[f"Campaign {c}"] = {"lists": items}
    agents = [{"campaign": name, "from": "08:00", "to": "18:00", "count": 12} for name in campaigns]
    return Scenario.model_validate(
        {
            "description": "generated for bench/simulate.py",
            "start": "2024-04-22 08:00",
            "duration": f"{days}d",
            "timezone": "Europe/Zurich",
            "seed": 1,
            "campaigns": campaigns,
            "agents": agents,
            "handling_time": {"min": "2m", "max": "4m"},
            "reschedule_after": "2h",
            "max_attempts": 2,
        }
    )


def rss_mb() -> float:
    """Resident set size now (Linux /proc), in MB."""
    with open("/proc/self/statm", encoding="ascii") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--lists", type=int, default=100)
    parser.add_argument("--profile", action="store_true", help="cProfile the run")
    parser.add_argument("--tracemalloc", action="store_true", help="trace Python allocations")
    parser.add_argument(
        "--against",
        type=Path,
        metavar="TREE",
        help="also run the benchmark from this source tree, at the same time on the other core",
    )
    args = parser.parse_args()
    other = _start_against(args.against, args.days, args.lists) if args.against else None

    scenario = generated_scenario(args.days, args.lists)
    memory: dict[str, tuple[float, float, float]] = {}

    def sample(label: str) -> None:
        traced = tracemalloc.get_traced_memory()[0] / 1e6 if args.tracemalloc else 0.0
        memory[label] = (rss_mb(), peak_rss_mb(), traced)

    def progress(_strategy: str, fraction: float) -> None:
        if fraction >= 0.5 and "middle" not in memory:
            sample("middle")

    if args.tracemalloc:
        tracemalloc.start()
    profiler = cProfile.Profile() if args.profile else None
    with scratch_dir("amo-mixer-bench-") as folder:
        sample("start")
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        result = run_strategy(
            scenario,
            "rules",
            rules=shipped_rule_files(),
            workdir=Path(folder),
            progress=progress,
        )
        if profiler is not None:
            profiler.disable()
        wall = time.perf_counter() - started
        sample("end")
        log_mb = (Path(folder) / "state" / "decisions.jsonl").stat().st_size / 1e6

    lists = sum(len(spec.lists) for spec in scenario.campaigns.values())
    print(f"simulate bench: {args.days} days, {lists} lists, {result.cycles} cycles (1 min)")
    print(f"wall time      {wall:.1f} s (target <= 60 s)")
    print(f"cycles/s       {result.cycles / wall:.0f}")
    print(f"per cycle      {wall / result.cycles * 1000:.2f} ms")
    print(f"decisions      {result.decisions}, writes {result.writes}, log {log_mb:.1f} MB")
    print(f"on time        {result.on_time_ratio}, completed {result.completed}")
    print("memory (MB)    rss    peak-rss" + ("  traced" if args.tracemalloc else ""))
    for label in ("start", "middle", "end"):
        rss, peak, traced = memory.get(label, (0.0, 0.0, 0.0))
        extra = f"  {traced:6.1f}" if args.tracemalloc else ""
        print(f"  {label:<12} {rss:6.1f} {peak:8.1f}{extra}")
    if profiler is not None:
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)
    if other is not None:
        other_wall = _finish_against(other)
        print(f"against {args.against}: {other_wall:.1f} s on the other core at the same time")
        print(f"ratio          {wall / other_wall:.2f} (this tree / the other)")
    return 0 if wall <= 60 else 1


def _start_against(tree: Path, days: int, lists: int) -> subprocess.Popen[str]:
    """The same benchmark from ``tree``, pinned to core 1 (this process takes core 0)."""
    script = tree / "bench" / "simulate.py"
    if not script.is_file():
        raise SystemExit(f"--against {tree}: no bench/simulate.py there (a source tree?)")
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("--against needs two cores: one per run")
    os.sched_setaffinity(0, {0})
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    command = [sys.executable, str(script), "--days", str(days), "--lists", str(lists)]
    return subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {1}),  # set in the child before it runs
    )


def _finish_against(process: subprocess.Popen[str]) -> float:
    output, _ = process.communicate()
    found = re.search(r"^wall time\s+([0-9.]+) s", output, re.MULTILINE)
    if found is None:
        raise SystemExit(f"the other tree's benchmark printed no wall time:\n{output[-2000:]}")
    return float(found.group(1))


if __name__ == "__main__":
    raise SystemExit(main())
