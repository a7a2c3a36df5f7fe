"""The fault matrix over a real loopback socket: each QM misbehaviour gives the right exit
code, one clear error line, no write after a failed read, a consistent decision log, and
a next cycle that works. The run rewrites the matrix in docs/reliability.md.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from reliability_matrix import (
    FAULT_CASES,
    START,
    FaultCase,
    MatrixRow,
    amo_mixer,
    make_app,
    read_log,
    write_config,
    write_matrix,
)

from mixer.clock import FakeClock
from mixer.config import load_settings
from mixer.emulator.app import EmulatorApp
from mixer.emulator.server import serve
from mixer.wiring import build_runner

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORDS = {"robot": "bot", "nokey": "nokey"}
WAIT_S = 30.0


def clean_env(password: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMO_MIXER_")}
    env["AMO_MIXER_QM_PASSWORD"] = password
    return env


@pytest.fixture(scope="module")
def matrix() -> Iterator[dict[str, MatrixRow]]:
    """Collects one row per case; writes docs/reliability.md when every case ran."""
    rows: dict[str, MatrixRow] = {}
    yield rows
    if len(rows) == len(FAULT_CASES):
        write_matrix([rows[case.name] for case in FAULT_CASES])


def set_fault(app: EmulatorApp, case: FaultCase) -> None:
    app.faults.clear()
    if case.kind is not None:
        app.faults.set(case.kind, **case.options)


def clear_fault(app: EmulatorApp, case: FaultCase) -> None:
    app.faults.clear()
    if case.user == "nokey":  # the fix an operator makes: grant USR_AMO
        app.users["nokey"] = ("nokey", True)


def run_once(config: Path, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*amo_mixer(), "once", "-c", str(config), "--apply"],
        env=clean_env(password),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def stderr_errors(stderr: str) -> list[str]:
    """The one-line campaign errors `once` prints on stderr."""
    prefix = "amo-mixer: campaign 'Sales': "
    return [line[len(prefix) :] for line in stderr.splitlines() if line.startswith(prefix)]


def last_cycle(records: list[dict[str, Any]]) -> dict[str, Any]:
    cycles = [r for r in records if r["event"] == "cycle"]
    assert cycles, "no cycle record in the decision log"
    return cycles[-1]


def check_log(records: list[dict[str, Any]], case: FaultCase, error: str) -> None:
    """The decision log of the faulty cycle: an error event and an error cycle, or none."""
    errors = [r for r in records if r["event"] == "error"]
    cycle = last_cycle(records)
    if case.failed_step is None:
        assert errors == []
        assert cycle["outcome"] == "ok"
        return
    assert [(e["campaign"], e["kind"], e["error"]) for e in errors] == [
        ("Sales", case.failed_step, error)
    ]
    assert (cycle["campaign"], cycle["outcome"], cycle["error"]) == ("Sales", "error", error)


def run_subprocess_case(app: EmulatorApp, url: str, tmp_path: Path, case: FaultCase) -> MatrixRow:
    config = write_config(tmp_path, url, user=case.user)
    password = PASSWORDS[case.user]
    set_fault(app, case)
    done = run_once(config, password)
    records = read_log(tmp_path / "state" / "decisions.jsonl")
    cycle = last_cycle(records)
    error = cycle["error"] or ""
    writes = app.stats.update_calls, sum(app.stats.applied_updates.values())

    assert done.returncode == case.exit_code, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    check_log(records, case, error)
    if case.failed_step is not None:
        assert "\n" not in error
        assert "Sales: error (see stderr)" in done.stdout.splitlines()
        assert stderr_errors(done.stderr) == [error], "exactly one line on stderr"
        assert "127.0.0.1:" in error, "the error names the host"
        assert "campaign 'Sales'" in error, "the error names the campaign"
        for words in case.says:
            assert words in error
    if case.failed_step == "read":
        assert writes == (0, 0), "nothing is written after a failed read"
    if case.failed_step == "write":
        assert writes[0] >= 1
        assert writes[1] == 0
    if case.kind == "vanish_list":
        hidden = (case.options["campaign"], case.options["list"])
        assert app.stats.list_updates[hidden] == 0, "never an update for a list not read"

    clear_fault(app, case)
    again = run_once(config, password)
    recovered = (
        again.returncode == 0
        and last_cycle(read_log(config.parent / "state" / "decisions.jsonl"))["outcome"] == "ok"
    )
    assert recovered, again.stderr
    return MatrixRow(case.name, cycle["outcome"], done.returncode, error, *writes, recovered)


def run_in_process_case(app: EmulatorApp, url: str, tmp_path: Path, case: FaultCase) -> MatrixRow:
    """A real CycleRunner over HTTP, with the fault switched on right after the read."""
    config = write_config(tmp_path, url)
    settings = load_settings(config, environ={"AMO_MIXER_QM_PASSWORD": "bot"})
    clock = FakeClock(START)
    runner = build_runner(settings, clock=clock)
    read_lists = runner.client.read_lists
    app.faults.clear()

    def read_then_fault(campaign: str, *, now: Any) -> Any:
        snapshot = read_lists(campaign, now=now)
        set_fault(app, case)
        return snapshot

    runner.client.read_lists = read_then_fault  # type: ignore[method-assign]
    try:
        report = runner.run_cycle()
        result = report.results["Sales"]
        records = read_log(settings.decision_log)
        error = result.error or ""
        writes = app.stats.update_calls, sum(app.stats.applied_updates.values())
        assert report.exit_code == case.exit_code
        check_log(records, case, error)
        assert "\n" not in error
        for words in case.says:
            assert words in error
        assert writes[0] == 1, "the read succeeded, so the write went out"

        runner.client.read_lists = read_lists  # type: ignore[method-assign]
        clear_fault(app, case)
        clock.advance(timedelta(minutes=1))
        again = runner.run_cycle()
        recovered = (
            again.exit_code == 0 and last_cycle(read_log(settings.decision_log))["outcome"] == "ok"
        )
    finally:
        runner.close()
    assert recovered
    return MatrixRow(case.name, result.outcome, report.exit_code, error, *writes, recovered)


@pytest.mark.parametrize("case", FAULT_CASES, ids=[c.name for c in FAULT_CASES])
def test_fault(case: FaultCase, tmp_path: Path, matrix: dict[str, MatrixRow]) -> None:
    """Each fault: exit code, one error line, writes, decision log, and recovery."""
    app = make_app()
    with serve(app) as url:
        if case.in_process:
            row = run_in_process_case(app, url, tmp_path, case)
        else:
            row = run_subprocess_case(app, url, tmp_path, case)
    matrix[case.name] = row


def wait_for(condition: Any, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_daemon_keeps_cycling_under_a_fault(tmp_path: Path) -> None:
    """`amo-mixer run` logs an error cycle every interval under HTTP 401, recovers, exits 0."""
    app = make_app()
    app.faults.set("unauthorized_401")
    with serve(app) as url:
        config = write_config(tmp_path, url, interval="1s")
        log = tmp_path / "state" / "decisions.jsonl"
        daemon = subprocess.Popen(
            [*amo_mixer(), "run", "-c", str(config)],
            env=clean_env("bot"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:

            def error_cycles() -> int:
                return sum(
                    1 for r in read_log(log) if r["event"] == "cycle" and r["outcome"] == "error"
                )

            wait_for(lambda: error_cycles() >= 3, "three error cycles")
            assert app.stats.update_calls == 0
            app.faults.clear()
            wait_for(lambda: last_cycle(read_log(log))["outcome"] == "ok", "a good cycle")
        finally:
            daemon.send_signal(signal.SIGTERM)
            out, err = daemon.communicate(timeout=WAIT_S)
    assert daemon.returncode == 0, err
    assert "Traceback" not in out + err
    assert app.stats.applied_updates, "the recovered cycle wrote its changes"
