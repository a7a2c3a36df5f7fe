"""The whole cycle through the in-process emulator: guardrails, overrides, modes, faults."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx

from tests.cycle_harness import Mixer

BOOST = """
lists:
  - match: "Boost*"
    tags: [boost]
rules:
  - name: boost-tagged
    description: "Tagged for a boost."
    match: {tags: [boost]}
    when: unpulled > 0
    set: {weight: "base_weight * 3"}
"""

PAUSE_EXHAUSTED = """
rules:
  - name: pause-exhausted
    description: "Nothing left to reserve."
    when: not can_reserve and unpulled == 0
    set: {paused: true}
"""

TWO_LISTS = [
    {"name": "Boost Me", "numbers": 50, "weight": 10},
    {"name": "Plain", "numbers": 50, "weight": 10},
]


def test_dry_run_logs_decisions_and_writes_nothing(make: type[Mixer]) -> None:
    """Dry-run plans and logs the change but sends no listUpdates at all."""
    mixer = make(lists=TWO_LISTS, rules=BOOST, mode="dry-run")
    report = mixer.cycle()
    assert report.outcomes == {"Sales": "ok"}
    assert mixer.update_calls == 0
    assert mixer.qm_list("Boost Me").weight == 10
    (decision,) = mixer.records("decision")
    assert decision["list"] == "Boost Me"
    assert decision["mode"] == "dry-run"
    assert (decision["before"], decision["after"]) == (
        {"weight": 10, "paused": False},
        {"weight": 30, "paused": False},
    )
    assert decision["rules"] == ["boost-tagged"]
    assert decision["applied"] is False
    assert decision["facts"] == {"unpulled": 50, "base_weight": 10}


def test_apply_writes_only_changes_and_then_nothing(make: type[Mixer]) -> None:
    """Apply writes the one list that changes, once; a stable plan makes no call."""
    mixer = make(lists=TWO_LISTS, rules=BOOST)
    mixer.cycle()
    assert mixer.qm_list("Boost Me").weight == 30
    assert mixer.qm_list("Plain").weight == 10
    assert mixer.update_calls == 1
    assert set(mixer.app.stats.list_updates) == {("Sales", "Boost Me")}
    mixer.cycles(3)
    assert mixer.update_calls == 1, "no change, no write call"
    cycle = mixer.records("cycle")[0]
    assert cycle["outcome"] == "ok"
    assert cycle["applied"] is True
    assert cycle["changes"] == 1
    assert cycle["lists"]["Plain"]["weight"] == 10


def test_level_triggered_weights_do_not_compound(make: type[Mixer]) -> None:
    """Relative weights refer to the baseline: ten cycles later the weight is still 3x."""
    mixer = make(lists=TWO_LISTS, rules=BOOST)
    mixer.cycles(10)
    assert mixer.qm_list("Boost Me").weight == 30


def test_rule_stopping_restores_baseline(make: type[Mixer]) -> None:
    """When the condition goes away the list returns to its baseline weight."""
    mixer = make(lists=TWO_LISTS, rules=BOOST)
    mixer.cycle()
    mixer.exhaust("Boost Me")
    mixer.cycle()
    assert mixer.qm_list("Boost Me").weight == 10


def test_manual_override_is_adopted_and_held(make: type[Mixer]) -> None:
    """A human's weight becomes the baseline, is left alone for manual_hold, then boosted."""
    mixer = make(lists=TWO_LISTS, rules=BOOST, guardrails={"manual_hold": "30m"})
    mixer.cycle()
    mixer.qm_list("Boost Me").weight = 4
    mixer.cycle()
    (override,) = mixer.records("override")
    assert override["expected"] == {"weight": 30, "paused": False}
    assert override["found"] == {"weight": 4, "paused": False}
    assert mixer.qm_list("Boost Me").weight == 4
    calls = mixer.update_calls
    mixer.cycle(minutes=20)
    assert mixer.qm_list("Boost Me").weight == 4
    assert mixer.update_calls == calls, "held: no write"
    mixer.cycle(minutes=15)
    assert mixer.qm_list("Boost Me").weight == 12, "baseline 4 x 3 after the hold"


def test_human_paused_list_is_never_resumed(make: type[Mixer]) -> None:
    """A list paused by a human stays paused even when a rule asks to resume it."""
    rules = """
    rules:
      - name: resume-all
        when: unpulled > 0
        set: {paused: false}
    """
    lists = [
        {"name": "Parked", "numbers": 10, "weight": 5, "paused": True},
        {"name": "Plain", "numbers": 10, "weight": 5},
    ]
    mixer = make(lists=lists, rules=rules)
    mixer.cycles(3)
    assert mixer.qm_list("Parked").paused is True
    assert mixer.update_calls == 0


def test_pause_exhausted_then_resume_when_refilled(make: type[Mixer]) -> None:
    """The mixer pauses an exhausted list and resumes it itself once numbers arrive."""
    rules = PAUSE_EXHAUSTED
    mixer = make(lists=TWO_LISTS, rules=rules)
    mixer.exhaust("Boost Me")
    mixer.cycle()
    assert mixer.qm_list("Boost Me").paused is True
    numbers = [{"number": f"55501{i:02d}"} for i in range(5)]
    mixer.runner.client.add_numbers("Sales", "Boost Me", numbers)
    mixer.cycle()
    assert mixer.qm_list("Boost Me").paused is False
    decisions = [d for d in mixer.records("decision") if d["list"] == "Boost Me"]
    assert [d["after"]["paused"] for d in decisions] == [True, False]


def test_for_delays_the_pause(make: type[Mixer]) -> None:
    """`for: 15m` acts only after the condition held for fifteen minutes of cycles."""
    rules = PAUSE_EXHAUSTED.replace("    set:", "    for: 15m\n    set:")
    mixer = make(lists=TWO_LISTS, rules=rules)
    mixer.exhaust("Boost Me")
    mixer.cycles(15)
    assert mixer.qm_list("Boost Me").paused is False
    mixer.cycles(2)
    assert mixer.qm_list("Boost Me").paused is True


def test_standby_list_takes_over_when_nothing_is_reservable(make: type[Mixer]) -> None:
    """A paused standby list resumes once the others can reserve nothing."""
    rules = """
    lists:
      - match: "Reserve"
        standby: true
    rules:
      - name: standby-takes-over
        when: standby and campaign_reservable_lists == 0
        set: {paused: false}
    """
    lists = [
        {"name": "Main", "numbers": 5, "weight": 10},
        {"name": "Reserve", "numbers": 50, "weight": 10, "paused": True},
    ]
    mixer = make(lists=lists, rules=rules)
    mixer.cycle()
    assert mixer.qm_list("Reserve").paused is True
    mixer.exhaust("Main")
    mixer.cycle()
    assert mixer.qm_list("Reserve").paused is False


def test_max_step_moves_weight_gradually(make: type[Mixer]) -> None:
    """With max_step 5 a boost from 10 to 30 takes four cycles."""
    mixer = make(lists=TWO_LISTS, rules=BOOST, guardrails={"max_step": 5})
    weights = []
    for _ in range(5):
        mixer.cycle()
        weights.append(mixer.qm_list("Boost Me").weight)
    assert weights == [15, 20, 25, 30, 30]


def test_max_changes_per_day_stops_flapping(make: type[Mixer]) -> None:
    """After max_changes_per_day changes a list is left alone for the rest of the day."""
    mixer = make(lists=TWO_LISTS, rules=BOOST, guardrails={"max_step": 5, "max_changes_per_day": 2})
    mixer.cycles(4)
    assert mixer.qm_list("Boost Me").weight == 20


def test_plan_leaving_no_reservable_list_is_stopped(make: type[Mixer]) -> None:
    """Pausing every reservable list is a guardrail stop: logged, not applied, exit 0."""
    rules = """
    rules:
      - name: pause-everything
        when: unpulled >= 0
        set: {paused: true}
    """
    mixer = make(lists=TWO_LISTS, rules=rules)
    report = mixer.cycle()
    assert report.outcomes == {"Sales": "guardrail"}
    assert report.exit_code == 0
    assert mixer.update_calls == 0
    (stop,) = mixer.records("guardrail")
    assert stop["guardrail"] == "no-reservable-list"
    assert sorted(stop["lists"]) == ["Boost Me", "Plain"]
    assert all(d["applied"] is False for d in mixer.records("decision"))


def test_read_failure_means_no_write_and_an_error(make: type[Mixer]) -> None:
    """A failed read gives outcome error, exit code 1, an error event, and zero writes."""
    mixer = make(lists=TWO_LISTS, rules=BOOST)
    mixer.app.faults.set("status_500")
    report = mixer.cycle()
    assert report.outcomes == {"Sales": "error"}
    assert report.exit_code == 1
    assert mixer.update_calls == 0
    (error,) = mixer.records("error")
    assert error["kind"] == "read"
    assert "500" in error["error"]
    mixer.app.faults.clear()
    assert mixer.cycle().outcomes == {"Sales": "ok"}
    assert mixer.qm_list("Boost Me").weight == 30


def test_one_campaign_failing_does_not_stop_the_other(make: type[Mixer]) -> None:
    """A campaign that cannot be read does not keep the others from cycling."""
    mixer = make(lists=TWO_LISTS, rules=BOOST, campaigns=["Sales", "Ghost"])
    report = mixer.cycle()
    assert report.outcomes == {"Sales": "ok", "Ghost": "error"}
    assert mixer.qm_list("Boost Me").weight == 30


def test_verify_mismatch_is_an_error_and_not_an_override(make: type[Mixer]) -> None:
    """A write QM did not take is logged as a verify error; the next cycle retries it."""
    mixer = make(lists=TWO_LISTS, rules=BOOST)
    mixer.app.faults.set("ignore_writes", times=1)
    report = mixer.cycle()
    assert report.outcomes == {"Sales": "error"}
    (error,) = mixer.records("error")
    assert error["kind"] == "verify"
    assert "Boost Me" in error["error"]
    assert [d["applied"] for d in mixer.records("decision")] == [False]
    mixer.cycle()
    assert mixer.records("override") == []
    assert mixer.qm_list("Boost Me").weight == 30


def test_vanished_list_gets_no_update(make: type[Mixer]) -> None:
    """A list missing from this cycle's read is never written (it would be created)."""
    mixer = make(lists=TWO_LISTS, rules=BOOST)
    mixer.app.faults.set("vanish_list", campaign="Sales", list="Boost Me")
    mixer.cycles(2)
    assert mixer.update_calls == 0
    assert ("Sales", "Boost Me") not in mixer.app.stats.list_updates


def test_memory_survives_a_restart(make: type[Mixer]) -> None:
    """After a restart the mixer still knows it paused a list and resumes it."""
    mixer = make(lists=TWO_LISTS, rules=PAUSE_EXHAUSTED)
    mixer.exhaust("Boost Me")
    mixer.cycle()
    assert mixer.qm_list("Boost Me").paused is True
    mixer.restart()
    mixer.runner.client.add_numbers("Sales", "Boost Me", [{"number": "5550100"}])
    mixer.cycle()
    assert mixer.qm_list("Boost Me").paused is False
    assert mixer.records("override") == []


def test_torn_decision_log_tail_is_repaired_on_start(make: type[Mixer]) -> None:
    """A half-written last line is moved aside at start-up and logging carries on."""
    mixer = make(lists=TWO_LISTS, rules=BOOST)
    mixer.cycle()
    mixer.runner.close()
    with mixer.settings.decision_log.open("ab") as handle:
        handle.write(b'{"event": "decision", "ts": "2024-')
    mixer.runner = mixer._build()
    mixer.cycle()
    assert all(isinstance(r, dict) for r in mixer.records())
    torn = mixer.settings.decision_log.with_name(mixer.settings.decision_log.name + ".torn")
    assert b'{"event": "decision", "ts": "2024-' in torn.read_bytes()


def test_now_is_read_once_per_cycle(make: type[Mixer]) -> None:
    """Every record of one cycle carries the same timestamp and cycle id."""
    mixer = make(lists=TWO_LISTS, rules=BOOST, mode="dry-run")
    mixer.cycle()
    mixer.clock.advance(timedelta(seconds=0))
    stamps = {(r["ts"], r["cycle_id"]) for r in mixer.records()}
    assert len(stamps) == 1


def test_non_finite_facts_are_logged_as_null() -> None:
    """NaN or infinite fact values become null so every log line stays valid JSON."""
    from mixer.records import jsonable_facts as _jsonable

    assert _jsonable({"a": float("nan"), "b": float("inf"), "c": 1.23456}) == {
        "a": None,
        "b": None,
        "c": 1.2346,
    }


def read_threads(mixer: Mixer) -> list[str]:
    """Wrap the client's read so each call records the name of the thread it ran on."""
    names: list[str] = []
    read = mixer.runner.client.read_lists

    def recording(campaign: str, **kw: Any) -> Any:
        names.append(threading.current_thread().name)
        return read(campaign, **kw)

    mixer.runner.client.read_lists = recording  # type: ignore[method-assign]
    return names


def test_campaigns_share_one_pool_for_the_runner_life(make: type[Mixer]) -> None:
    """Several campaigns run on one thread pool, reused every cycle, ended by close()."""
    mixer = make(lists=TWO_LISTS, rules=BOOST, campaigns=["Sales", "Ghost"])
    names = read_threads(mixer)
    mixer.cycles(3)
    pool = mixer.runner._pool
    mixer.cycle()
    assert mixer.runner._pool is pool is not None
    assert len(names) == 8
    assert all(name.startswith("campaign") for name in names)
    assert len(set(names)) <= 2
    workers = [t for t in threading.enumerate() if t.name in set(names)]
    mixer.runner.close()
    assert mixer.runner._pool is None
    assert not any(t.is_alive() for t in workers)


def test_concurrency_1_runs_campaigns_in_turn(make: type[Mixer]) -> None:
    """``qm.concurrency: 1`` runs every campaign on the cycle's thread, in order."""
    mixer = make(lists=TWO_LISTS, rules=BOOST, campaigns=["Sales", "Ghost"], qm={"concurrency": 1})
    names = read_threads(mixer)
    reports = mixer.cycles(2)
    assert names == [threading.current_thread().name] * 4
    assert mixer.runner._pool is None
    assert [r.results["Sales"].outcome for r in reports] == ["ok", "ok"]


def test_one_campaign_is_read_without_a_pool(make: type[Mixer]) -> None:
    """A single campaign is read on the cycle's own thread; no pool is made."""
    mixer = make(lists=TWO_LISTS, rules=BOOST)
    names = read_threads(mixer)
    mixer.cycles(2)
    assert names == [threading.current_thread().name] * 2
    assert mixer.runner._pool is None


class _AppliedThenTimedOut(httpx.BaseTransport):
    """QM applies the write, but the reply never arrives (a read timeout)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if b"listUpdates" in request.read():
            raise httpx.ReadTimeout("timed out", request=request)
        return response


def test_write_that_landed_despite_an_error_is_not_an_override(make: type[Mixer]) -> None:
    """A write QM applied but never confirmed is read back and kept as the mixer's own."""
    mixer = make(lists=TWO_LISTS, rules=BOOST, wrap=_AppliedThenTimedOut)
    report = mixer.cycle()
    assert report.outcomes == {"Sales": "error"}
    assert mixer.qm_list("Boost Me").weight == 30
    (error,) = mixer.records("error")
    assert error["kind"] == "write"
    assert [d["applied"] for d in mixer.records("decision")] == [True]
    mixer.cycle()
    assert mixer.records("override") == []
