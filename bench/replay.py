"""Replay and fit speed: a week (replay) and two weeks (fit) of recorded cycles, 100 lists.

Targets (issue 18): ``amo-mixer replay`` over 7 days of cycles for 100 lists (10,080
cycles of 4 campaigns) in at most 10 s; ``amo-mixer scenario fit`` over 14 days in at
most 10 s. Both are run as a user runs them: the installed command, end to end (start-up,
reading the log, the work, the output). Run from the repository:

    python bench/replay.py [--days 7] [--fit-days 14] [--lists 100] [--repeat 3]

The decision log is generated, not simulated (simulating two weeks takes minutes): four
campaigns, twelve agents each 08:00-18:00 on weekdays, a call every four minutes per
agent, numbers completing four minutes after they are pulled, a third of the lists with
a deadline tag in their notes, a fifth refilled every morning, one paused reserve per
campaign; the mixer ran without rules (in apply mode by default, ``--mode dry-run`` for
a dry-run daemon, where every wished-for change is a decision again each cycle), so the
shipped rules have everything to decide. The baseline, measured in the same run, is
``amo-mixer log --event cycle --format json`` over the same range: reading and printing
the same records, the floor any command that reads the log stands on. Prints the best
of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from mixer.shipped import shipped_rule_files
from mixer.simulate.workdir import scratch_dir

CAMPAIGNS = 4
AGENTS = 12
HANDLING_MINUTES = 4
START = datetime(2024, 4, 22, 0, 0, tzinfo=UTC)  # a Monday
ZONE = "Europe/Zurich"


def write_log(folder: Path, days: int, lists: int, mode: str = "apply") -> Path:
    """``folder/config.yaml`` and its decision log with ``days`` of cycles."""
    state = folder / "state"
    state.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    per = max(lists // CAMPAIGNS, 1)
    campaigns: dict[str, list[dict[str, Any]]] = {}
    for c in range(CAMPAIGNS):
        rows = []
        for i in range(per):
            notes = f"deadline: 2024-04-{22 + (i // 3) % days:02d} 18:00" if i % 3 == 0 else ""
            rows.append(
                {
                    "name": f"List {c:02d}-{i:03d}",
                    "weight": 5 + (i % 4) * 5,
                    "paused": i == per - 1,
                    "added": 3000 if i == per - 1 else 300 + 37 * (i % 9),
                    "pulled": 0,
                    "completed": 0,
                    "notes": notes,
                    "refill": i % 5 == 0,
                    "last_pull": None,
                }
            )
        campaigns[f"Campaign {c}"] = rows
    calls: dict[str, deque[tuple[int, dict[str, Any]]]] = {name: deque() for name in campaigns}
    path = state / "decisions.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for minute in range(days * 1440):
            now = START + timedelta(minutes=minute)
            local_hour = (now.hour + 2) % 24  # Zurich in April: UTC+2
            working = now.weekday() < 5 and 8 <= local_hour < 18
            ts = now.isoformat(timespec="seconds")
            for name, rows in campaigns.items():
                queue = calls[name]
                while queue and queue[0][0] <= minute:
                    queue.popleft()[1]["completed"] += 1
                if local_hour == 7 and now.minute == 0:
                    for row in rows:
                        if row["refill"]:
                            row["added"] += 200
                if working:
                    for _ in range(AGENTS // HANDLING_MINUTES):
                        open_rows = [
                            r for r in rows if not r["paused"] and r["added"] > r["pulled"]
                        ]
                        if not open_rows:
                            break
                        row = rng.choices(open_rows, [r["weight"] for r in open_rows])[0]
                        row["pulled"] += 1
                        row["last_pull"] = ts
                        queue.append((minute + HANDLING_MINUTES, row))
                record = {
                    "event": "cycle",
                    "ts": ts,
                    "cycle_id": f"{now:%Y%m%dT%H%M%SZ}-{minute:06x}",
                    "campaign": name,
                    "mode": mode,
                    "lists_seen": len(rows),
                    "changes": 0,
                    "applied": False,
                    "outcome": "ok",
                    "error": None,
                    "duration_ms": 1.0,
                    "lists": {
                        r["name"]: {
                            "weight": r["weight"],
                            "paused": r["paused"],
                            "added": r["added"],
                            "pulled": r["pulled"],
                            "completed": r["completed"],
                            "can_reserve": r["added"] > r["pulled"],
                            "notes": r["notes"],
                            "dialer_state": "open" if r["completed"] < r["added"] else "completed",
                            "last_pull": r["last_pull"],
                        }
                        for r in rows
                    },
                }
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
    config = folder / "config.yaml"
    document = {
        "qm": {"url": "http://127.0.0.1:9/qm", "user": "robot", "timezone": ZONE},
        "campaigns": list(campaigns),
        "rules": [str(p) for p in shipped_rule_files()],
        "mode": mode,
        "state_dir": "state",
    }
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    return config


def timed(command: list[str], repeat: int) -> tuple[float, float]:
    """Best wall time and the CPU time (user + system, all processes) of that run: on a
    shared machine the CPU time shows the work when the wall time shows the queue."""
    best, cpu = float("inf"), 0.0
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if wall < best:
            best = wall
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return best, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7, help="days replayed (default 7)")
    parser.add_argument("--fit-days", type=int, default=14, help="days fitted (default 14)")
    parser.add_argument("--lists", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mode", choices=("apply", "dry-run"), default="apply")
    parser.add_argument("--jobs", type=int, help="replay worker processes (default: per core)")
    args = parser.parse_args()
    days = max(args.days, args.fit_days)
    with scratch_dir("amo-mixer-bench-replay-") as folder:
        started = time.perf_counter()
        config = write_log(folder, days, args.lists, args.mode)
        size = (folder / "state" / "decisions.jsonl").stat().st_size
        print(
            f"generated {days} days x {CAMPAIGNS} campaigns, {args.lists} lists: "
            f"{size / 1e6:.0f} MB of log in {time.perf_counter() - started:.1f} s"
        )
        end = START + timedelta(days=days)
        rules = " ".join(str(p) for p in shipped_rule_files())
        jobs = [] if args.jobs is None else ["--jobs", str(args.jobs)]
        for label, span, command, target in (
            (
                "replay",
                args.days,
                ["replay", "--rules", *rules.split(" "), "--json", *jobs],
                10.0,
            ),
            ("fit", args.fit_days, ["scenario", "fit", "-o", str(folder / "fit.yaml")], 10.0),
        ):
            since = (end - timedelta(days=span)).isoformat()
            window = ["--since", since, "--until", end.isoformat()]
            base = ["amo-mixer", "log", "-c", str(config), *window]
            baseline, _ = timed([*base, "--event", "cycle", "--format", "json"], args.repeat)
            head = command[:2] if command[0] == "scenario" else command[:1]
            work = ["amo-mixer", *head, "-c", str(config), *window, *command[len(head) :]]
            seconds, cpu = timed(work, args.repeat)
            verdict = "met" if seconds <= target else "MISSED"
            print(
                f"{label:<6} {span:>2} days: {seconds:6.2f} s (target <= {target:.0f} s: "
                f"{verdict}), CPU {cpu:6.2f} s; log read alone {baseline:6.2f} s; "
                f"ratio {seconds / baseline:.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
