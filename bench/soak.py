"""Soak: 10,000 accelerated cycles of the real CycleRunner against the in-process emulator
(dialer on, 100 lists, FakeClock), checking that memory and file descriptors stay flat.

Target: after warm-up, Python heap growth (tracemalloc) and RSS growth under 5 MB, and
no file-descriptor growth (/proc/self/fd). The state directory lives on /dev/shm when it
exists: fsync cost is not what the soak measures. Run from the repository:

    python bench/soak.py [--cycles 10000] [--lists 100] [--warmup 500] [--every 1000]
                         [--no-tracemalloc] [--command-pace]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from mixer.clock import FakeClock
from mixer.config import load_settings
from mixer.emulator.app import create_app
from mixer.emulator.scenario import Scenario
from mixer.wiring import build_runner

LIMIT_MB = 5.0
STEP = timedelta(seconds=30)  # simulated time between cycles
RULES = """\
lists:
  - match: "List *-000"
    standby: true
rules:
  - name: pause-exhausted
    when: not can_reserve and unpulled == 0
    set: {paused: true}
  - name: boost-behind
    when: unpulled > 0 and progress < 0.5
    set: {weight: "base_weight * 2"}
  - name: office-hours
    match: "List 1*"
    when: hour < 9 or hour >= 17
    set: {paused: true}
    cooldown: 10m
  - name: standby-takes-over
    when: standby and campaign_reservable_lists == 0
    set: {paused: false}
"""


def scenario(lists: int) -> Scenario:
    items = [
        {
            "name": f"List {i // 10}{i % 10:02d}",
            "numbers": 400 + 13 * (i % 7),
            "weight": 5 + (i % 4) * 5,
        }
        for i in range(lists)
    ]
    items[0].update(name="List 0-000", paused=True)
    return Scenario.model_validate(
        {
            "description": "generated for bench/soak.py",
            "start": "2024-04-22 08:00",
            "duration": "7d",
            "timezone": "Europe/Zurich",
            "seed": 3,
            "campaigns": {"Sales": {"lists": items}},
            "agents": [{"campaign": "Sales", "from": "08:00", "to": "18:00", "count": 20}],
            "handling_time": {"min": "2m", "max": "4m"},
            "reschedule_after": "2h",
            "max_attempts": 2,
        }
    )


class _Quiet:
    """A logger that drops the per-cycle lines (10,000 of them would drown the figures)."""

    def __getattr__(self, _name: str) -> Any:
        return lambda *args, **kwargs: None


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 1e6


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def state_root() -> Path:
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="amo-mixer-soak-", dir=base))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--lists", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument(
        "--no-tracemalloc",
        dest="tracemalloc",
        action="store_false",
        help="skip the Python heap trace (about 4x faster; RSS, fds and blocks only)",
    )
    parser.add_argument(
        "--command-pace",
        action="store_true",
        help="collect garbage at the pace the amo-mixer command sets for its process "
        "(mixer.collector), as the daemon runs",
    )
    args = parser.parse_args()
    if args.command_pace:
        from mixer.collector import pace_for_commands

        pace_for_commands()

    root = state_root()
    try:
        return soak(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def soak(root: Path, args: Any) -> int:
    start = datetime(2024, 4, 22, 6, 0, tzinfo=UTC)
    clock = FakeClock(start)
    app = create_app(scenario(args.lists), clock=clock, dialer=True)
    (root / "rules").mkdir()
    (root / "rules" / "50-soak.yaml").write_text(RULES, encoding="utf-8")
    config = root / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "qm": {"url": "http://qm.test/qm", "user": "robot", "timezone": "Europe/Zurich"},
                "campaigns": ["Sales"],
                "rules": ["rules/*.yaml"],
                "mode": "apply",
                "state_dir": "state",
                "guardrails": {"manual_hold": "10m"},
            }
        ),
        encoding="utf-8",
    )
    config.chmod(0o600)
    settings = load_settings(config, environ={"AMO_MIXER_QM_PASSWORD": "bot"})
    runner = build_runner(
        settings, clock=clock, transport=httpx.WSGITransport(app=app), log=_Quiet()
    )
    print(f"soak: {args.cycles} cycles, {args.lists} lists, state dir {root}", flush=True)

    samples: list[tuple[int, float, float, int, int]] = []  # cycle, heap, RSS, fds, blocks
    outcomes: dict[str, int] = {}
    writes = 0
    began = time.perf_counter()
    try:
        for cycle in range(1, args.cycles + 1):
            clock.advance(STEP)
            report = runner.run_cycle()
            writes += report.writes
            for outcome in report.outcomes.values():
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if cycle == args.warmup and args.tracemalloc:
                tracemalloc.start()
            if (cycle >= args.warmup and (cycle - args.warmup) % args.every == 0) or (
                cycle == args.cycles
            ):
                gc.collect()
                heap = tracemalloc.get_traced_memory()[0] / 1e6 if tracemalloc.is_tracing() else 0
                samples.append((cycle, heap, rss_mb(), open_fds(), sys.getallocatedblocks()))
                c, h, r, f, b = samples[-1]
                print(
                    f"  cycle {c:>6}: heap +{h:6.2f} MB  RSS {r:7.1f} MB  fds {f}  blocks {b}",
                    flush=True,
                )
    finally:
        runner.close()
        tracemalloc.stop()
    wall = time.perf_counter() - began

    first, last = samples[0], samples[-1]
    heap_growth = last[1] - first[1]
    rss_growth = last[2] - first[2]
    fd_growth = last[3] - first[3]
    block_growth = last[4] - first[4]
    log_files = sorted(p.name for p in (root / "state").iterdir())
    traced = "with tracemalloc on" if args.tracemalloc else "tracemalloc off"
    print(f"wall time {wall:.1f} s ({args.cycles / wall:.0f} cycles/s, {traced})")
    print(f"outcomes {outcomes}, lists written {writes}, state files {log_files}")
    print(
        f"after warm-up ({args.warmup} cycles): heap growth {heap_growth:+.2f} MB, "
        f"RSS growth {rss_growth:+.2f} MB, fd growth {fd_growth:+d}, "
        f"allocated blocks {block_growth:+d}"
    )
    ok = heap_growth < LIMIT_MB and rss_growth < LIMIT_MB and fd_growth <= 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
