"""What a cycle costs end to end, through the installed ``amo-mixer`` command.

    python bench/cycle_cost.py [--section all|rules|big|concurrency|startup|curve]
                               [--repeat 3] [--against OTHER_TREE] [--plot FILE.png]
                               [--command AMO_MIXER] [--against-command OTHER_AMO_MIXER]
                               [--command PATH/TO/amo-mixer]

Black-box: a loopback QM emulator (``amo-mixer emulator``, a generated scenario) and the
installed command (``amo-mixer once``) in fresh processes; CPU is the child's user+system
time (``wait4``), wall time is the parent's clock. Nothing here asserts on time.
``--command`` names the installed command to run (default: ``amo-mixer`` on PATH), e.g.
a user's install in a fresh venv, which has none of a development machine's extra
packages (rich, click, trio) that httpx and httpcore import when they are present.
Children run with bytecode caches, as a pip-installed package does.

Sections:

* ``rules`` — ``once --dry-run`` over 2,000 lists (10 campaigns x 200) with the 50 rules
  of ``bench/rules_eval.py`` against the first of them alone: the marginal CPU per rule
  evaluation, ``(cpu50 - cpu1) / (2,000 x 49)``, against the same 50 predicates written
  by hand over the same facts (the lists read from the same emulator). Target <= 5x.
* ``big`` — ``once --dry-run`` over 5,000 lists x 50 rules in one campaign: the command's
  CPU, and the cycle's own (start-up measured apart and taken off). Target <= 1 s.
* ``concurrency`` — 50 campaigns x 20 lists, 50 ms emulator latency, a change in every
  campaign: ``once --apply`` wall time including start-up (target <= 1.5 s), and one
  daemon cycle (a ``CycleRunner`` cycle, in a child process) against the bound
  ``2 x ceil(50 / concurrency)`` round trips + CPU.
* ``startup`` — ``amo-mixer --help`` wall time (target <= 80 ms) and ``once`` from
  process start to its first request (target <= 150 ms), against a loopback listener.
* ``curve`` — one cycle's CPU and wall time against lists (100 -> 20,000, 10 campaigns)
  and campaigns (1 -> 200, 20 lists each, 50 ms latency); ``--plot`` writes a PNG
  (matplotlib, from the ``bench`` extra).

``--against TREE`` runs the same measurements with ``python -m mixer`` from another
source tree (say ``git worktree add /tmp/base <commit>``) and prints both;
``--against-command PATH`` does the same with another installed ``amo-mixer`` (say an
older release in its own venv). ``--command PATH`` picks the installed one measured.
"""

from __future__ import annotations

import argparse
import http.server
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rules_eval import PREFIXES, bench_rules, rules_yaml

PASSWORD = "bot"
LATENCY_S = 0.05


@dataclass(frozen=True)
class Tree:
    """How to run ``amo-mixer``: the installed command, or another tree's sources."""

    label: str
    source: Path | None = None  # None: the installed command
    installed: str = "amo-mixer"  # which one: on PATH, or a path (another venv's)

    def command(self) -> list[str]:
        if self.source is None:
            found = shutil.which(self.installed)
            if found is None:
                raise SystemExit(f"{self.installed} is not installed in this environment")
            return [found]
        return [sys.executable, "-m", "mixer"]

    def cwd(self) -> str:
        """Where its processes start: ``python -c``/``-m`` put the start folder first on
        the import path, so never in a source tree other than the one meant."""
        return str(self.source) if self.source is not None else "/"

    def env(self) -> dict[str, str]:
        env = dict(os.environ, AMO_MIXER_QM_PASSWORD=PASSWORD)
        env.pop("AMO_MIXER_CONFIG", None)
        # An installed package runs from bytecode (pip compiles it); with this set, a
        # source tree would be compiled afresh at every start (~60 ms here), which no
        # user's install pays. The first run writes the caches, the next ones use them.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if self.source is not None:
            env["PYTHONPATH"] = str(self.source)
        return env


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    stdout: str


def run_command(tree: Tree, args: Sequence[str]) -> Run:
    """Run ``amo-mixer ARGS``; wall time here, CPU (user+sys) of the child from wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*tree.command(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=tree.env(),
        cwd=tree.cwd(),
    )
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # 1: a campaign failed, as the start-up runs expect
        raise SystemExit(f"amo-mixer {' '.join(args)} failed:\n{err.decode()[-2000:]}")
    # communicate() reaped the child: its CPU is in RUSAGE_CHILDREN now.
    return Run(wall, _child_cpu_since(proc.pid), out.decode())


_children_cpu_seen = 0.0


def _child_cpu_since(_pid: int) -> float:
    """CPU of the children reaped since the last call (one child at a time here)."""
    global _children_cpu_seen
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = usage.ru_utime + usage.ru_stime
    spent, _children_cpu_seen = total - _children_cpu_seen, total
    return spent


# -- the emulator ------------------------------------------------------------------


def scenario(campaigns: int, lists: int) -> dict[str, Any]:
    """``campaigns`` campaigns of ``lists`` lists, names as the bench rules expect."""
    return {
        "description": "generated for bench/cycle_cost.py",
        "start": "2024-04-24 08:00",
        "duration": "1d",
        "timezone": "Europe/Zurich",
        "seed": 1,
        "campaigns": {
            f"Campaign {c:03d}": {
                "lists": [
                    {
                        "name": f"{PREFIXES[i % 5]} {c:03d}{i:05d}",
                        "numbers": 5,
                        "weight": 5 + i % 20,
                    }
                    for i in range(lists)
                ]
            }
            for c in range(campaigns)
        },
        "agents": [],
    }


@contextmanager
def emulator(folder: Path, campaigns: int, lists: int, latency: float = 0.0) -> Iterator[str]:
    """A loopback emulator in its own process (the installed command); yields its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario(campaigns, lists)), encoding="utf-8")
    installed = Tree("installed")
    proc = subprocess.Popen(
        [*installed.command(), "emulator", "--scenario", str(path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=installed.env(),
        cwd=installed.cwd(),
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        if latency:
            _set_latency(url, latency)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        _child_cpu_since(proc.pid)  # not the mixer's CPU


def _set_latency(url: str, seconds: float) -> None:
    import httpx

    reply = httpx.post(
        f"{url}/_emulator/faults",
        json={"kind": "latency", "seconds": seconds},
        auth=("robot", PASSWORD),
    )
    reply.raise_for_status()


def write_config(
    folder: Path, url: str, campaigns: int, rules_text: str, mode: str = "dry-run"
) -> Path:
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "rules" / "bench.yaml").write_text(rules_text, encoding="utf-8")
    config = {
        "qm": {"url": url, "user": "robot", "timezone": "Europe/Zurich", "timeout": "60s"},
        "campaigns": [f"Campaign {c:03d}" for c in range(campaigns)],
        "rules": ["rules/*.yaml"],
        "mode": mode,
        "state_dir": "state",
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return path


def rules_text(count: int) -> str:
    return rules_yaml(bench_rules()[:count])


CHANGE_EVERYTHING = "rules:\n  - {name: boost, when: True, set: {weight: 30}}\n"


def once(tree: Tree, config: Path, mode: str = "--dry-run") -> Run:
    return run_command(tree, ["once", "-c", str(config), mode])


def steady_once(tree: Tree, config: Path, repeat: int) -> Run:
    """The least CPU of ``repeat`` dry runs after one that meets every list (first
    sight): the run least disturbed by other load on a shared machine."""
    once(tree, config)
    runs = [once(tree, config) for _ in range(repeat)]
    return min(runs, key=lambda r: r.cpu)


# -- sections ----------------------------------------------------------------------


def startup_cpu(tree: Tree, repeat: int) -> Run:
    """``once`` with nothing to do: a config whose one campaign QM refuses at once."""
    with _refusing_listener() as (url, _first), tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), url, 1, rules_text(1))
        runs = [once(tree, config) for _ in range(repeat)]
    return min(runs, key=lambda r: r.cpu)


def section_rules(trees: Sequence[Tree], repeat: int) -> dict[str, float]:
    print("\n== rules: once --dry-run, 2,000 lists (10 x 200), 50 rules vs 1 ==")
    hand = hand_written_marginal(10, 200)
    print(f"  hand-written, same facts: {hand * 1e9:7.0f} ns per rule evaluation")
    found: dict[str, float] = {}
    for tree in trees:
        with (
            tempfile.TemporaryDirectory() as tmp,
            emulator(Path(tmp, "e200"), 10, 200) as url200,
            emulator(Path(tmp, "e1"), 10, 1) as url1,
        ):
            # 10 x 1 list: what loading 50 rules costs a process, apart from evaluating.
            configs = {}
            for lists, url in ((200, url200), (1, url1)):
                for rules in (1, 50):
                    folder = Path(tmp, f"l{lists}r{rules}")
                    folder.mkdir()
                    configs[lists, rules] = write_config(folder, url, 10, rules_text(rules))
            cpu = interleaved(tree, configs, repeat)
            steady = {
                rules: min(
                    (daemon_cycle(tree, configs[200, rules], cycles=6) for _ in range(3)),
                    key=_cpu,
                )["cpu"]
                for rules in (1, 50)
            }
        r1, r50 = cpu[200, 1], cpu[200, 50]
        daemon = (steady[50] - steady[1]) / (2000 * 49)
        raw = (r50.cpu - r1.cpu) / (2000 * 49)
        loading = cpu[1, 50].cpu - cpu[1, 1].cpu
        marginal = (r50.cpu - r1.cpu - loading) / (1990 * 49)
        found[tree.label] = raw
        print(
            f"  {tree.label:<10} 1 rule {r1.cpu * 1e3:5.0f} ms CPU ({r1.wall * 1e3:5.0f} ms wall),"
            f" 50 rules {r50.cpu * 1e3:5.0f} ms CPU ({r50.wall * 1e3:5.0f} ms wall)\n"
            f"             marginal {raw * 1e9:5.0f} ns per rule evaluation ({raw / hand:4.1f}x"
            " hand; target <= 5x);"
            f" less the {loading * 1e3:.0f} ms a process spends loading 49 more rules"
            f" (10 x 1 list): {marginal * 1e9:5.0f} ns ({marginal / hand:4.1f}x hand)\n"
            f"             a daemon's steady cycle (dry-run): 1 rule"
            f" {steady[1] * 1e3:4.0f} ms CPU, 50 rules {steady[50] * 1e3:4.0f} ms CPU:"
            f" {daemon * 1e9:5.0f} ns per rule evaluation ({daemon / hand:4.1f}x hand)"
        )
    return found


def interleaved(tree: Tree, configs: dict[Any, Path], repeat: int) -> dict[Any, Run]:
    """The least-CPU dry run of each config, after one that meets every list; the
    configs take turns, so a change in the machine's load falls on all of them alike."""
    for config in configs.values():
        once(tree, config)
    runs: dict[Any, list[Run]] = {key: [] for key in configs}
    for _ in range(repeat):
        for key, config in configs.items():
            runs[key].append(once(tree, config))
    return {key: min(found, key=lambda r: r.cpu) for key, found in runs.items()}


def hand_written_marginal(campaigns: int, lists: int) -> float:
    """Seconds per rule evaluation of the 50 predicates by hand (null checks included),
    over the facts the engine computes for the same lists: (t50 - t1) / (lists x 49)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from mixer.engine.facts import EngineSettings, compute_facts
    from mixer.engine.memory import ListMemory
    from mixer.rule_loading import load_rules
    from mixer.snapshot import CampaignSnapshot, ListSnapshot

    rules = bench_rules()
    ruleset = load_rules([], extra_texts=[("bench.yaml", rules_text(50))])
    settings = EngineSettings(timezone=ZoneInfo("Europe/Zurich"))
    now = dt.datetime.now(dt.UTC)
    every: list[dict[str, object]] = []
    for name, body in scenario(campaigns, lists)["campaigns"].items():
        campaign = ruleset.for_campaign(name)
        items = tuple(
            ListSnapshot(
                name=item["name"],
                notes="",
                weight=item["weight"],
                list_state="open",
                dialer_state="open",
                can_reserve_state="open",
                added=item["numbers"],
                completed=0,
                pulled=0,
                last_pull=None,
            )
            for item in body["lists"]
        )
        snapshot = CampaignSnapshot(name, items, now)
        memory = {i.name: ListMemory(i.weight, i.paused, now) for i in items}
        meta = {i.name: campaign.metadata_for(i.name) for i in items}
        facts = compute_facts(snapshot, memory, {}, meta, now, settings)
        every.extend(dict(f) for f in facts.values())

    def loop(chosen: Sequence[Any]) -> float:
        hand = [(r.reads, r.hand_when, r.hand_weight, r.paused) for r in chosen]
        start = time.process_time()
        outcomes = []
        for f in every:
            weight, paused = 1.0, False
            for reads, when, set_weight, set_paused in hand:
                for name in reads:
                    if f[name] is None:
                        break
                else:
                    if when(f):
                        if set_weight is not None:
                            weight = float(set_weight(f))
                        if set_paused is not None:
                            paused = set_paused
            outcomes.append((weight, paused))
        return time.process_time() - start

    t50 = min(loop(rules) for _ in range(5))
    t1 = min(loop(rules[:1]) for _ in range(5))
    return (t50 - t1) / (len(every) * 49)


def section_big(trees: Sequence[Tree], repeat: int) -> None:
    print("\n== big: once --dry-run, 5,000 lists x 50 rules, one campaign ==")
    for tree in trees:
        base = startup_cpu(tree, repeat)
        with tempfile.TemporaryDirectory() as tmp, emulator(Path(tmp), 1, 5000) as url:
            run = steady_once(tree, write_config(Path(tmp), url, 1, rules_text(50)), repeat)
        print(
            f"  {tree.label:<10} command {run.cpu * 1e3:6.0f} ms CPU, {run.wall * 1e3:6.0f} ms"
            f" wall; start-up alone {base.cpu * 1e3:4.0f} ms CPU; the cycle "
            f"{(run.cpu - base.cpu) * 1e3:6.0f} ms CPU (target <= 1,000 ms)"
        )


def daemon_cycle(tree: Tree, config: Path, cycles: int = 1) -> dict[str, float]:
    """A ``CycleRunner`` running ``cycles`` cycles in a child process of ``tree``: the
    first one's wall and CPU, or with ``cycles`` > 1 the least of the later ones (a
    daemon's steady cycle: rules loaded and compiled, the lists seen before)."""
    code = (
        "import json, os, time\n"
        "from pathlib import Path\n"
        "try:  # the collector's pace the amo-mixer command sets for its process\n"
        "    from mixer.collector import pace_for_commands\n"
        "    pace_for_commands()\n"
        "except ImportError:  # a tree before it\n"
        "    pass\n"
        "from mixer.clock import SystemClock\n"
        "from mixer.config import load_settings\n"
        "from mixer.wiring import build_runner\n"
        f"settings = load_settings(Path({str(config)!r}), environ=os.environ)\n"
        "runner = build_runner(settings, clock=SystemClock())\n"
        "runs = []\n"
        f"for _ in range({cycles}):\n"
        "    c0, t0 = time.process_time(), time.perf_counter()\n"
        "    report = runner.run_cycle()\n"
        "    runs.append((time.process_time() - c0, time.perf_counter() - t0))\n"
        "runner.close()\n"
        "cpu, wall = runs[0] if len(runs) == 1 else min(runs[1:])\n"
        "print(json.dumps({'wall': wall, 'cpu': cpu, 'writes': report.writes}))\n"
    )
    env = tree.env()
    if tree.source is None:
        env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=tree.cwd(),
    )
    _child_cpu_since(0)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def concurrency_of(tree: Tree) -> int:
    """``qm.concurrency`` (or the read pool's size in a tree before it)."""
    code = (
        "from mixer.config import QMSettings\n"
        "f = QMSettings.model_fields\n"
        "print(f['concurrency'].default if 'concurrency' in f else "
        "f['concurrent_reads'].default)\n"
    )
    env = tree.env()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tree.cwd()
    )
    _child_cpu_since(0)
    return int(done.stdout.strip() or 1)


def section_concurrency(trees: Sequence[Tree], repeat: int) -> None:
    campaigns = 50
    print(
        f"\n== concurrency: {campaigns} campaigns x 20 lists, {LATENCY_S * 1e3:.0f} ms latency,"
        " a change in every campaign =="
    )
    for tree in trees:
        limit = concurrency_of(tree)
        bound = 2 * math.ceil(campaigns / limit) * LATENCY_S
        applies, cycles = [], []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp:
                with emulator(Path(tmp), campaigns, 20, LATENCY_S) as url:
                    config = write_config(Path(tmp), url, campaigns, CHANGE_EVERYTHING, "apply")
                    applies.append(once(tree, config, "--apply"))
                shutil.rmtree(Path(tmp, "state"))
                with emulator(Path(tmp), campaigns, 20, LATENCY_S) as url:
                    config = write_config(Path(tmp), url, campaigns, CHANGE_EVERYTHING, "apply")
                    cycles.append(daemon_cycle(tree, config))
        best = min(applies, key=lambda r: r.wall)
        cycle = min(cycles, key=lambda c: c["wall"])
        print(
            f"  {tree.label:<10} once --apply {best.wall * 1e3:6.0f} ms wall (target <= 1,500)"
            f"; daemon cycle {cycle['wall'] * 1e3:6.0f} ms wall, {cycle['cpu'] * 1e3:5.0f} ms"
            f" CPU, {cycle['writes']:.0f} list writes; bound at concurrency {limit}: "
            f"{bound * 1e3:.0f} ms + CPU"
        )


@contextmanager
def _refusing_listener() -> Iterator[tuple[str, list[float]]]:
    """A loopback HTTP listener that notes when its first request arrives and answers
    401 (the client gives up at once)."""
    first: list[float] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if not first:
                first.append(time.perf_counter())
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/qm", first
    finally:
        server.shutdown()
        server.server_close()


def section_startup(trees: Sequence[Tree], repeat: int) -> None:
    print("\n== startup: --help, and once from process start to its first request ==")
    helps: dict[str, list[float]] = {tree.label: [] for tree in trees}
    firsts: dict[str, list[float]] = {tree.label: [] for tree in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for tree in trees:  # a source tree's first start writes its bytecode
            run_command(tree, ["--help"])
            with _refusing_listener() as (url, _first):
                once(tree, write_config(Path(tmp), url, 1, rules_text(1)))
        for _ in range(repeat * 3):  # the trees take turns: the load falls on all alike
            for tree in trees:
                helps[tree.label].append(run_command(tree, ["--help"]).wall)
                with _refusing_listener() as (url, first):
                    config = write_config(Path(tmp), url, 1, rules_text(1))
                    start = time.perf_counter()
                    once(tree, config)
                    firsts[tree.label].append(first[0] - start)
    for tree in trees:
        h, f = sorted(helps[tree.label]), sorted(firsts[tree.label])
        print(
            f"  {tree.label:<10} --help {h[0] * 1e3:5.0f} ms (median "
            f"{h[len(h) // 2] * 1e3:.0f}; target <= 80)"
            f"   once to first request {f[0] * 1e3:5.0f} ms (median "
            f"{f[len(f) // 2] * 1e3:.0f}; target <= 150)"
        )


def section_curve(tree: Tree, repeat: int, plot: Path | None) -> None:
    print(f"\n== curve ({tree.label}): one daemon cycle, dry-run, the 50 rules ==")
    rows: list[tuple[str, int, int, float, float]] = []
    for lists in (100, 1000, 5000, 10000, 20000):
        per = max(lists // 10, 1)
        with tempfile.TemporaryDirectory() as tmp, emulator(Path(tmp), 10, per) as url:
            config = write_config(Path(tmp), url, 10, rules_text(50))
            daemon_cycle(tree, config)  # first sight
            best = min((daemon_cycle(tree, config) for _ in range(repeat)), key=_cpu)
        rows.append(("lists", lists, 10, best["cpu"], best["wall"]))
        print(
            f"  {lists:>6} lists, 10 campaigns: {best['cpu']:6.3f} s CPU,"
            f" {best['wall']:6.3f} s wall"
        )
    for campaigns in (1, 10, 50, 100, 200):
        with (
            tempfile.TemporaryDirectory() as tmp,
            emulator(Path(tmp), campaigns, 20, LATENCY_S) as url,
        ):
            config = write_config(Path(tmp), url, campaigns, rules_text(50))
            daemon_cycle(tree, config)
            best = min((daemon_cycle(tree, config) for _ in range(repeat)), key=_wall)
        rows.append(("campaigns", campaigns * 20, campaigns, best["cpu"], best["wall"]))
        print(
            f"  {campaigns:>4} campaigns x 20 lists, 50 ms latency: {best['cpu']:6.3f} s CPU,"
            f" {best['wall']:6.3f} s wall"
        )
    if plot is not None:
        _plot(rows, plot)
        print(f"  plot: {plot}")


def _cpu(c: dict[str, float]) -> float:
    return c["cpu"]


def _wall(c: dict[str, float]) -> float:
    return c["wall"]


def _plot(rows: Sequence[tuple[str, int, int, float, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_lists, by_campaigns) = plt.subplots(1, 2, figsize=(10, 4))
    lists = [r for r in rows if r[0] == "lists"]
    by_lists.plot([r[1] for r in lists], [r[3] for r in lists], "o-", label="CPU")
    by_lists.plot([r[1] for r in lists], [r[4] for r in lists], "s--", label="wall")
    by_lists.set(xlabel="lists (10 campaigns, 50 rules)", ylabel="one cycle (s)")
    by_lists.set_title("Cycle cost against lists")
    by_lists.legend()
    by_lists.grid(alpha=0.3)
    camps = [r for r in rows if r[0] == "campaigns"]
    by_campaigns.plot([r[2] for r in camps], [r[3] for r in camps], "o-", label="CPU")
    by_campaigns.plot([r[2] for r in camps], [r[4] for r in camps], "s--", label="wall")
    by_campaigns.set(xlabel="campaigns (20 lists each, 50 ms latency)", ylabel="one cycle (s)")
    by_campaigns.set_title("Cycle cost against campaigns")
    by_campaigns.legend()
    by_campaigns.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--section",
        choices=["all", "rules", "big", "concurrency", "startup", "curve"],
        default="all",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--against", type=Path, help="another source tree to run beside")
    parser.add_argument("--plot", type=Path, help="curve: write the PNG here")
    parser.add_argument(
        "--command",
        default="amo-mixer",
        help="the installed amo-mixer to run (default: the one on PATH), e.g. a user's "
        "venv/bin/amo-mixer from pip install '.[report]'",
    )
    parser.add_argument(
        "--against-command",
        help="another installed amo-mixer to run beside (e.g. an older release's venv)",
    )
    args = parser.parse_args(argv)
    trees = [Tree("installed", installed=args.command)]
    if args.against is not None:
        trees.append(Tree(args.against.name or str(args.against), args.against.resolve()))
    if args.against_command is not None:
        trees.append(
            Tree(Path(args.against_command).parent.parent.name, installed=args.against_command)
        )
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores,"
        f" load {os.getloadavg()[0]:.1f}"
    )
    section = args.section
    if section in ("all", "rules"):
        section_rules(trees, args.repeat)
    if section in ("all", "big"):
        section_big(trees, args.repeat)
    if section in ("all", "concurrency"):
        section_concurrency(trees, args.repeat)
    if section in ("all", "startup"):
        section_startup(trees, args.repeat)
    if section in ("all", "curve"):
        section_curve(trees[0], args.repeat, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
