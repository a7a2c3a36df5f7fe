"""Crash safety: the installed daemon killed with SIGKILL at seeded random moments, over and
over, loses no acknowledged decision, keeps a parseable decision log (torn tails moved to
``.torn``), an intact state database, and carries on after each restart.

"Acknowledged" here: a write QM applied is acknowledged by the mixer once its decision
records are in the decision log. The cycle appends each record with one ``write`` before
the next step and fsyncs at the end of the cycle, so a SIGKILL can lose only the records
of the cycle in flight whose write QM had already applied: at most one write call per
kill, and only the last one before that kill. Every other applied write must be matched,
list by list and value by value, by a cycle's logged decisions: ``applied: true``, or
``applied: false`` with an ``error`` event of that cycle when the reply never came back
(QM applied it, the mixer could not confirm it, and says so).
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
        time.sleep(rng.uniform(0.3, 2.5))  # a seeded random moment in the daemon's life
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
        while cursor < len(logged) and logged[cursor].decisions != batch and logged[cursor].error:
            cursor += 1  # a cycle whose write failed before QM took it
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
    assert len(unlogged) <= KILLS
    print(
        f"\ncrash: {KILLS} kills in {kill_phase_s:.1f} s, {cycles} cycles logged, "
        f"{len(writes.batches)} writes applied, "
        f"{unconfirmed} applied but unconfirmed (logged with an error), "
        f"{len(unlogged)} cut by a kill between write and log, {torn_injected} torn tails kept"
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
