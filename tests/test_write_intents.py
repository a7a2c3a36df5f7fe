"""Write-ahead intents (issue 12, item 1): the mixer never takes its own write for a
human's. A rule ``base_weight * 3`` from 10 writes 30 once; whatever goes wrong between
the write and its record (a lost reply and a failing read-back, a full disk under the
decision log), the next cycle finds 30, knows it for its own, logs the decision once,
and writes nothing more — never 90. A lost state file next to a decision log is refused.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stamina
from qm_stateful_stub import StatefulQM, qm_list, stub_config, stub_settings

from mixer.clock import SystemClock
from mixer.cycle import CycleRunner
from mixer.store import StoreError
from mixer.wiring import build_runner, state_path

TRIPLE = """\
rules:
  - name: triple
    when: added > 0
    set: {weight: "base_weight * 3"}
"""


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    with stamina.set_testing(True, attempts=1):
        yield


@pytest.fixture
def stub() -> StatefulQM:
    return StatefulQM({"Sales": [qm_list("A", 10), qm_list("B", 20)]})


def runner(config: Path) -> CycleRunner:
    return build_runner(stub_settings(config), clock=SystemClock())


def records(config: Path, event: str) -> list[dict[str, Any]]:
    log = stub_settings(config).decision_log
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["event"] == event]


def assert_no_compounding(stub: StatefulQM, config: Path) -> None:
    """30 and 60 once each; one applied decision per list; no override invented."""
    assert stub.weights("Sales") == {"A": 30, "B": 60}
    sent = [(e["listName"], e["weight"]) for _, entries in stub.writes for e in entries]
    assert sorted(set(sent)) == [("A", 30), ("B", 60)], sent
    applied = [
        (r["list"], r["after"]["weight"]) for r in records(config, "decision") if r["applied"]
    ]
    assert sorted(applied) == [("A", 30), ("B", 60)]
    assert records(config, "override") == []


def test_lost_reply_and_failing_read_back_is_settled_as_the_mixers_own(
    tmp_path: Path, stub: StatefulQM
) -> None:
    """A write QM applied whose reply and read-back were lost is logged applied (late)
    next cycle, and is neither an override nor boosted again."""
    with stub.serve() as url:
        config = stub_config(tmp_path, url, TRIPLE)
        mixer = runner(config)
        stub.drop_write_replies = 1

        def fail_the_read_back(_campaign: str, _entries: list[dict[str, Any]]) -> None:
            stub.fail_reads = 1

        stub.on_write = fail_the_read_back
        first = mixer.run_cycle()
        stub.on_write = None
        assert first.outcomes == {"Sales": "error"}
        assert records(config, "decision") == []  # outcome unknown: not logged yet
        for _ in range(3):
            mixer.run_cycle()
        mixer.close()
    assert_no_compounding(stub, config)
    late = [r for r in records(config, "decision") if r.get("late")]
    assert {r["list"] for r in late} == {"A", "B"}
    assert {r["cycle_id"] for r in late} == {first.cycle_id}
    assert len(stub.writes) == 1


def test_full_disk_under_the_decision_log_after_the_write_does_not_compound(
    tmp_path: Path, stub: StatefulQM
) -> None:
    """ENOSPC on the decision log right after the write: the campaign fails with one
    line, and the next cycle logs the write once (late), never an override."""
    with stub.serve() as url:
        config = stub_config(tmp_path, url, TRIPLE)
        mixer = runner(config)
        real_append = mixer.decision_log.append

        def full(record: Any) -> None:
            if record.get("event") == "decision":
                raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path))
            real_append(record)

        mixer.decision_log.append = full  # type: ignore[method-assign]
        report = mixer.run_cycle()
        assert report.outcomes == {"Sales": "error"}
        assert "no space left" in report.errors["Sales"]
        assert "Traceback" not in report.errors["Sales"]
        mixer.decision_log.append = real_append  # type: ignore[method-assign]
        for _ in range(3):
            mixer.run_cycle()
        mixer.close()
    assert_no_compounding(stub, config)
    assert len(stub.writes) == 1


def test_state_file_truncated_to_zero_is_refused_next_to_a_decision_log(
    tmp_path: Path, stub: StatefulQM
) -> None:
    """A 0-byte state file beside a non-empty decision log is refused with one line that
    says to restore it, and nothing is written; a missing one likewise."""
    with stub.serve() as url:
        config = stub_config(tmp_path, url, TRIPLE)
        mixer = runner(config)
        mixer.run_cycle()
        mixer.close()
        path = state_path(stub_settings(config))
        for sidecar in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            sidecar.unlink(missing_ok=True)
        os.truncate(path, 0)
        with pytest.raises(StoreError) as caught:
            runner(config)
        message = caught.value.message
        assert "empty (0 bytes)" in message
        assert "records writes the mixer applied" in message
        assert "Restore the state file from a backup" in message
        assert "\n" not in message
        path.unlink()
        with pytest.raises(StoreError, match="is missing"):
            runner(config)
    assert stub.weights("Sales") == {"A": 30, "B": 60}
    assert len(stub.writes) == 1


def test_corrupt_state_message_does_not_advise_starting_afresh(tmp_path: Path) -> None:
    """A state file that is not a database says to restore it — never 'move it aside and
    restart', which would relearn the mixer's own weights as baselines."""
    config = stub_config(tmp_path, "http://127.0.0.1:9/qm", TRIPLE)
    path = state_path(stub_settings(config))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not an SQLite database, just bytes" * 100)
    with pytest.raises(StoreError) as caught:
        runner(config)
    message = caught.value.message
    assert "restore it from a backup" in message
    assert "move the file aside" not in message
    assert "relearns" not in message


def test_an_intent_is_recorded_before_the_write_is_sent(tmp_path: Path, stub: StatefulQM) -> None:
    """When QM receives the write, the intent (campaign, list, before, after, cycle id)
    is already committed in the state file; once settled it is gone."""
    seen: list[list[tuple[Any, ...]]] = []

    def look(_campaign: str, _entries: list[dict[str, Any]]) -> None:
        import sqlite3

        with sqlite3.connect(state_path(stub_settings(config))) as db:
            seen.append(
                db.execute(
                    "SELECT campaign, list, before_weight, after_weight, cycle_id FROM intent"
                    " ORDER BY list"
                ).fetchall()
            )

    stub.on_write = look
    with stub.serve() as url:
        config = stub_config(tmp_path, url, TRIPLE)
        mixer = runner(config)
        report = mixer.run_cycle()
        intents_left = mixer.store.intents("Sales")
        mixer.close()
    assert seen == [
        [
            ("Sales", "A", 10, 30, report.cycle_id),
            ("Sales", "B", 20, 60, report.cycle_id),
        ]
    ]
    assert intents_left == []


def test_a_full_state_directory_is_one_clear_line_per_campaign(
    tmp_path: Path, stub: StatefulQM
) -> None:
    """SQLite's "database or disk is full" fails the campaign with one line that says to
    free space (no traceback), sends no write, and the next cycle carries on."""
    import sqlite3

    with stub.serve() as url:
        config = stub_config(tmp_path, url, TRIPLE)
        mixer = runner(config)
        real = mixer.store.record_intents

        def full(*args: Any, **kwargs: Any) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        mixer.store.record_intents = full  # type: ignore[method-assign]
        report = mixer.run_cycle()
        assert stub.writes == []  # the intent could not be recorded: nothing sent
        message = report.errors["Sales"]
        assert "database or disk is full" in message
        assert "free space" in message
        assert "\n" not in message
        mixer.store.record_intents = real  # type: ignore[method-assign]
        mixer.run_cycle()
        mixer.close()
    assert stub.weights("Sales") == {"A": 30, "B": 60}
    [error] = records(config, "error")
    assert error["kind"] == "state"


def test_explain_knows_a_pending_intent_for_the_mixers_own_write(
    tmp_path: Path, stub: StatefulQM, capsys: pytest.CaptureFixture[str]
) -> None:
    """`explain` after a lost reply and failing read-back settles the pending intent as
    the next cycle would: no manual hold is shown for the mixer's own write."""
    from mixer.cli import main

    with stub.serve() as url:
        config = stub_config(tmp_path, url, TRIPLE)
        mixer = runner(config)
        stub.drop_write_replies = 1

        def fail_the_read_back(_campaign: str, _entries: list[dict[str, Any]]) -> None:
            stub.fail_reads = 1

        stub.on_write = fail_the_read_back
        mixer.run_cycle()
        mixer.close()
        stub.on_write = None
        capsys.readouterr()
        code = main(["explain", "-c", str(config), "--campaign", "Sales", "--list", "A"])
    out = capsys.readouterr().out
    assert code == 0
    assert "manual hold" not in out
    assert "triple" in out
