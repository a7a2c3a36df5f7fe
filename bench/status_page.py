"""Status page speed: what a supervisor waits for, and what the page costs a cycle.

One campaign of N lists (default 500) runs real cycles (config from a file, the QM client
through httpx's WSGI transport to the in-process emulator, facts, rules, guardrails, state
store, decision log); the daemon's ``StatusBoard`` publishes each one and the daemon's
listener serves it on a loopback port. Measured, best of --repeat:

* the cycle alone, and ``StatusBoard.publish`` (what the page adds to a cycle): ratio;
* ``GET /`` the first time after a cycle (the reader builds the snapshot from the plans,
  renders and sends it) and again (cached),
  ``GET /status.json`` and ``GET /why``, against ``GET /metrics`` of the same listener
  (the baseline: what Prometheus already asks every scrape);
* headless Chromium loading the page until its script has run (``--dump-dom``), against
  Chromium loading a one-line page from the same listener (the browser's own start-up),
  when chromium is installed.

Usage: python bench/status_page.py [--lists 500] [--repeat 5]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mixer.logs import configure_logging
from mixer.metrics import MixerMetrics
from mixer.status.board import StatusBoard
from tests.cycle_harness import Mixer

RULES = """
rules:
  - name: boost-near-deadline
    when: hours_to_deadline < 48 and unpulled > 0
    set: {weight: "base_weight * 2"}
  - name: pause-exhausted
    when: not can_reserve and unpulled == 0
    set: {paused: true}
  - name: slow-start
    when: unpulled > 0
    for: 2h
    set: {weight: "base_weight + 1"}
"""


def best(repeat: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        action()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    configure_logging(debug=False, stream=sys.stderr, quiet=True)
    lists = [
        {
            "name": f"List {n:04d}",
            "weight": 5 + n % 20,
            "numbers": 0 if n % 50 == 0 else 30,
            "notes": f"deadline: 2024-04-{29 + n % 2} 18:00" if n % 3 == 0 else "",
        }
        for n in range(args.lists)
    ]
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as d:
        rig = Mixer(Path(d), lists=lists, rules=RULES)
        metrics = MixerMetrics(CollectorRegistry())
        rig.runner.metrics = metrics  # /metrics carries the per-list series: the baseline
        board = StatusBoard()
        reports = [rig.cycle() for _ in range(3)]
        for report in reports:
            board.publish(report, mode="apply", rules_hash="ab" * 32, interval_s=60)
        cycle_s = best(args.repeat, rig.cycle)
        report = rig.cycle()
        publish_s = best(
            args.repeat,
            lambda: board.publish(report, mode="apply", rules_hash="ab" * 32, interval_s=60),
        )
        rig.close()
        stop = metrics.serve("127.0.0.1:0", board, ZoneInfo("Europe/Zurich"))
        base = f"http://127.0.0.1:{stop.port}"
        with httpx.Client(timeout=30) as client:
            firsts = []
            for _ in range(args.repeat):
                board.publish(report, mode="apply", rules_hash="ab" * 32, interval_s=60)
                t0 = time.perf_counter()
                client.get(base + "/").raise_for_status()
                firsts.append(time.perf_counter() - t0)
            page_first = min(firsts)
            size = len(client.get(base + "/").content)
            page_cached = best(args.repeat, lambda: client.get(base + "/").raise_for_status())
            board.publish(report, mode="apply", rules_hash="ab" * 32, interval_s=60)
            status_json = best(
                args.repeat, lambda: client.get(base + "/status.json").raise_for_status()
            )
            why = best(
                args.repeat,
                lambda: client.get(
                    base + "/why", params={"campaign": "Sales", "list": "List 0003"}
                ).raise_for_status(),
            )
            metrics = best(args.repeat, lambda: client.get(base + "/metrics").raise_for_status())
        browser = shutil.which("chromium")
        chrome_page = chrome_blank = None
        in_page = []
        if browser is not None:
            flags = [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--dump-dom",
            ]

            def load(url: str) -> Callable[[], object]:
                def run() -> None:
                    with tempfile.TemporaryDirectory() as profile:
                        dom = subprocess.run(
                            [*flags, f"--user-data-dir={profile}", url],
                            capture_output=True,
                            text=True,
                            timeout=120,
                            check=True,
                        ).stdout
                    found = re.search(r'"ms":(\d+)', dom)
                    if found:
                        in_page.append(float(found.group(1)) / 1000)

                return run

            chrome_page = best(args.repeat, load(base + "/"))
            chrome_blank = best(args.repeat, load(base + "/nothing-here-metrics"))
        stop()
    ms = 1000
    print(f"lists: {args.lists}, best of {args.repeat}")
    print(f"cycle alone            {cycle_s * ms:8.1f} ms")
    print(
        f"StatusBoard.publish    {publish_s * ms:8.2f} ms  "
        f"(ratio to the cycle {publish_s / cycle_s:.3f})"
    )
    print(f"GET /metrics (base)    {metrics * ms:8.1f} ms")
    print(
        f"GET / first render     {page_first * ms:8.1f} ms  ({size / 1024:.0f} kB; "
        f"ratio {page_first / metrics:.1f})"
    )
    print(f"GET / cached           {page_cached * ms:8.1f} ms  (ratio {page_cached / metrics:.1f})")
    print(f"GET /status.json       {status_json * ms:8.1f} ms  (ratio {status_json / metrics:.1f})")
    print(f"GET /why               {why * ms:8.1f} ms  (ratio {why / metrics:.1f})")
    if chrome_page is not None and chrome_blank is not None:
        print(
            f"chromium: page {chrome_page * ms:.0f} ms, one-line 404 page {chrome_blank * ms:.0f}"
            f" ms: the page adds {(chrome_page - chrome_blank) * ms:.0f} ms"
        )
    if in_page:
        print(
            f"chromium, in the page: navigation start to the script's end (table and charts "
            f"parsed) {min(in_page) * ms:.0f} ms best, {max(in_page) * ms:.0f} ms worst"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
