"""Crash safety: the installed daemon killed with SIGKILL at seeded random moments, over and
over, logs every write QM applied exactly once, keeps a parseable decision log (torn tails
moved to ``.torn``), an intact state database, invents no human override, and carries on
after each restart.

Before a write is sent its intent is committed to the state store; a write QM applied
whose decision records a SIGKILL cut off is logged by the next cycle (``late: true``,
with the killed cycle's ``cycle_id``) from the intent. So every applied write must be
matched, list by list and value by value, by one cycle's logged decisions.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from reliability_matrix import amo_mixer, make_app, read_log, write_config

from mixer.emulator.app import EmulatorApp
from mixer.emulator.server import serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KILLS = 50
SEED = 20240429
# Weights follow the pull counters, which a background "agent" moves: most cycles write.
CHURN_RULES = """\
rules:
  - name: follow-pulls
    when: added > 0
    set: {weight: "1 + pulled % 37"}
"""
TORN_FRAGMENT = b'{"event": "decision", "ts": "2024-04-29T06:00:00+00:00", "campa'
WAIT_S = 30.0


@dataclass
class WriteLog:
    """Every listUpdates call the emulator applied, tagged with the daemon generation."""

    generation: int = 0
    batches: list[tuple[int, frozenset[tuple[str, int, bool]]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def record_writes(app: EmulatorApp, writes: WriteLog) -> None:
    """Wrap the emulator's update handler to remember what each call applied."""
    update_lists = app._update_lists

    def recording(data: dict[str, Any], *, apply: bool) -> dict[str, Any]:
        reply = update_lists(data, apply=apply)
        entries = data.get("listUpdates") or []
        if apply and entries:
            batch = frozenset(
                (str(e["listName"]), int(e["weight"]), str(e["paused"]).lower() == "true")
                for e in entries
            )
            with writes.lock:
                writes.batches.append((writes.generation, batch))
        return reply

    app._update_lists = recording  # type: ignore[method-assign]


def agent(app: EmulatorApp, stop: threading.Event) -> None:
    """Pull and complete one number every 30 ms, round robin over the lists."""
    lists = list(app.state.campaigns["Sales"].values())
    turn = 0
    while not stop.wait(0.03):
        with app.lock:
            call_list = lists[turn % len(lists)]
            now = app.clock.now().timestamp()
            if call_list.can_reserve(now):
                call_list.finalize(call_list.reserve(now))
        turn += 1


@pytest.fixture
def emulator() -> Iterator[tuple[EmulatorApp, str, WriteLog]]:
    app = make_app(numbers=3000)
    for call_list in app.state.campaigns["Sales"].values():
        assert call_list.added >= 20
    writes = WriteLog()
    record_writes(app, writes)
    stop = threading.Event()
    thread = threading.Thread(target=agent, args=(app, stop), daemon=True)
    with serve(app) as url:
        thread.start()
        try:
            yield app, url, writes
        finally:
            stop.set()
            thread.join(timeout=5)


def start_daemon(config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMO_MIXER_")}
    env["AMO_MIXER_QM_PASSWORD"] = "bot"
    return subprocess.Popen(
        [*amo_mixer(), "run", "-c", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for_lock(state: Path, pid: int) -> None:
    """Until the daemon ``pid`` holds the state lock (its PID in the lock file)."""
    deadline = time.monotonic() + WAIT_S
    lock = state / "amo-mixer.lock"
    while time.monotonic() < deadline:
        try:
            if lock.read_text().strip() == str(pid):
                return
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"daemon {pid} did not take the lock within {WAIT_S} s")


def integrity(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


@dataclass(frozen=True)
class LoggedCycle:
    decisions: frozenset[tuple[str, int, bool]]  # (list, weight after, paused after)
    applied: bool  # every decision logged as applied
    error: bool  # the cycle logged an error event


def logged_cycles(records: list[dict[str, Any]]) -> list[LoggedCycle]:
    """Per cycle with decisions, in log order: what it decided and whether it applied."""
    decided: dict[str, set[tuple[str, int, bool]]] = {}
    applied: dict[str, bool] = {}
    errors = {r["cycle_id"] for r in records if r["event"] == "error"}
    for r in records:
        if r["event"] == "decision":
            after = r["after"]
            decided.setdefault(r["cycle_id"], set()).add(
                (r["list"], int(after["weight"]), bool(after["paused"]))
            )
            applied[r["cycle_id"]] = applied.get(r["cycle_id"], True) and bool(r["applied"])
    return [LoggedCycle(frozenset(v), applied[k], k in errors) for k, v in decided.items()]


def test_sigkill_loses_no_acknowledged_decision(
    tmp_path: Path, emulator: tuple[EmulatorApp, str, WriteLog]
) -> None:
    """50 seeded SIGKILLs: log parses, torn tails kept aside, nothing acknowledged lost."""
    _app, url, writes = emulator
    config = write_config(
        tmp_path,
        url,
        interval="1s",  # the shortest interval a config may hold
        rules=CHURN_RULES,
        timeout=5,
        extra={"guardrails": {"manual_hold": "1s"}},
    )
    state = tmp_path / "state"
    log, torn = state / "decisions.jsonl", state / "decisions.jsonl.torn"
    rng = random.Random(SEED)
    torn_injected = 0
    started = time.monotonic()
    for kill in range(KILLS):
        daemon = start_daemon(config)
        wait_for_lock(state, daemon.pid)  # past the imports, whatever the machine's load
        time.sleep(rng.uniform(0.1, 2.0))  # a seeded random moment in the daemon's life
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=WAIT_S)
        with writes.lock:
            writes.generation += 1
        if log.exists() and kill % 5 == 4:
            with log.open("ab") as handle:  # what a power cut mid-append would leave
                handle.write(TORN_FRAGMENT)
            torn_injected += 1
        if kill % 10 == 9:
            assert integrity(state / "state.sqlite3") == "ok"
    kill_phase_s = time.monotonic() - started

    # The next start repairs the tail and carries on: wait for one more cycle, then stop.
    cycles_before = sum(1 for r in read_log_lenient(log) if r["event"] == "cycle")
    daemon = start_daemon(config)
    deadline = time.monotonic() + WAIT_S
    while sum(1 for r in read_log_lenient(log) if r["event"] == "cycle") <= cycles_before:
        assert time.monotonic() < deadline, "the daemon did not cycle after the kills"
        time.sleep(0.1)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=WAIT_S) == 0

    records = read_log(log)  # every line parses
    # At least once: a kill between copying a tail to .torn and cutting the log copies it
    # again on the next start; never zero times.
    assert torn.read_bytes().count(TORN_FRAGMENT) >= torn_injected
    assert integrity(state / "state.sqlite3") == "ok"

    # Every applied write is logged, except at most the last one before each kill.
    logged = logged_cycles(records)
    unlogged, unconfirmed, cursor = [], 0, 0
    for index, (generation, batch) in enumerate(writes.batches):
        while (
            cursor < len(logged)
            and logged[cursor].decisions != batch
            and (logged[cursor].error or not logged[cursor].applied)
        ):
            cursor += 1  # a cycle whose write failed or was never sent (killed before)
        if cursor < len(logged) and logged[cursor].decisions == batch:
            assert logged[cursor].applied or logged[cursor].error, sorted(batch)
            unconfirmed += not logged[cursor].applied
            cursor += 1
            continue
        later = writes.batches[index + 1 : index + 2]
        last_before_kill = not later or later[0][0] != generation
        assert last_before_kill, f"write {index} {sorted(batch)} was never logged"
        unlogged.append(index)
    phantom = [c for c in logged[cursor:] if c.applied]
    assert phantom == [], "a decision logged as applied has no write behind it"
    cycles = sum(1 for r in records if r["event"] == "cycle")
    assert len(writes.batches) >= KILLS, "the daemon wrote too rarely to test anything"
    assert unlogged == [], "a write QM applied has no decision record"
    assert [r for r in records if r["event"] == "override"] == [], "an override was invented"
    late = sum(1 for r in records if r["event"] == "decision" and r.get("late"))
    print(
        f"\ncrash: {KILLS} kills in {kill_phase_s:.1f} s, {cycles} cycles logged, "
        f"{len(writes.batches)} writes applied, "
        f"{unconfirmed} applied but unconfirmed (logged with an error), "
        f"{late} decisions logged late from their intent, {torn_injected} torn tails kept"
    )


def read_log_lenient(path: Path) -> list[dict[str, Any]]:
    """The complete records so far (the daemon may be mid-append)."""
    import json

    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().split(b"\n"):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


# -- SIGKILL at each point of the write path ------------------------------------------

TRIPLE_RULES = """\
rules:
  - name: triple
    when: added > 0
    set: {weight: "base_weight * 3"}
"""
# A child process runs one cycle and SIGKILLs itself at the named point of the write path.
CRASHING_CYCLE = """\
import os, signal, sys
from pathlib import Path
from mixer.clock import SystemClock
from mixer.config import load_settings
from mixer.decisions import DecisionLog
from mixer.qm.client import QMClient
from mixer.store import StateStore
from mixer.wiring import build_runner

point = sys.argv[2]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def around(cls, name, before=False, after=None):
    real = getattr(cls, name)
    def wrapper(self, *args, **kwargs):
        if before:
            die()
        result = real(self, *args, **kwargs)
        if after is None or after(*args, **kwargs):
            die()
        return result
    setattr(cls, name, wrapper)

if point == "before-intent":
    around(StateStore, "record_intents", before=True)
elif point == "after-intent":
    around(StateStore, "record_intents")
elif point == "after-qm-applied":
    around(QMClient, "update_lists")
elif point == "after-decision-record":
    around(DecisionLog, "append", after=lambda record: record.get("event") == "decision")
elif point == "after-memory-saved":
    around(StateStore, "save_memory", after=lambda *a, settled=(): bool(settled))
settings = load_settings(Path(sys.argv[1]), environ={})
build_runner(settings, clock=SystemClock()).run_cycle()
"""
WRITE_PATH_POINTS = (
    "before-intent",
    "after-intent",
    "after-qm-applied",
    "after-decision-record",
    "after-memory-saved",
)


@pytest.mark.parametrize("point", WRITE_PATH_POINTS)
def test_sigkill_at_each_point_of_the_write_path(tmp_path: Path, point: str) -> None:
    """SIGKILL before the intent, after it, after QM applied, after the decision record
    or after the memory save, then restarts: no compounding (30, never 90), every
    applied write has exactly one applied decision record, no override is invented."""
    import sys

    import stamina
    from qm_stateful_stub import StatefulQM, qm_list, stub_config, stub_settings

    from mixer.clock import SystemClock
    from mixer.wiring import build_runner

    stub = StatefulQM({"Sales": [qm_list("A", 10), qm_list("B", 20)]})
    with stub.serve() as url, stamina.set_testing(True, attempts=1):
        config = stub_config(tmp_path, url, TRIPLE_RULES)
        child = subprocess.run(
            [sys.executable, "-c", CRASHING_CYCLE, str(config), point],
            capture_output=True,
            timeout=60,
        )
        assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
        expected_writes_before_restart = 0 if point in ("before-intent", "after-intent") else 1
        assert len(stub.writes) == expected_writes_before_restart
        settings = stub_settings(config)
        for _ in range(3):  # restarts, as systemd would
            runner = build_runner(settings, clock=SystemClock())
            runner.run_cycle()
            runner.close()
    assert stub.weights("Sales") == {"A": 30, "B": 60}, stub.writes
    sent = sorted((e["listName"], e["weight"]) for _, entries in stub.writes for e in entries)
    assert sent == [("A", 30), ("B", 60)], "a write was repeated or compounded"
    records = read_log(settings.decision_log)
    applied = sorted(
        (r["list"], r["after"]["weight"])
        for r in records
        if r["event"] == "decision" and r["applied"]
    )
    assert applied == [("A", 30), ("B", 60)], "each applied write has one decision record"
    assert [r for r in records if r["event"] == "override"] == []
