"""Odd replies from QM (issue 12, items 2, 3, 4, 9) against the loopback stub: list
identity (re-created lists, unknown states, duplicate names), DST fall-back, human values
outside the limits, and one bad value confined to its campaign.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import stamina
import structlog
from qm_stateful_stub import StatefulQM, qm_list, stub_config, stub_settings

from mixer.clock import FakeClock, SystemClock
from mixer.cycle import CycleRunner
from mixer.qm.wire import latest_not_after, parse_last_pull
from mixer.wiring import build_runner

ZURICH = ZoneInfo("Europe/Zurich")
# Sets every list with numbers to weight 50: a change the tests can watch for.
HEAVIER = """\
rules:
  - name: heavier
    when: added > 0
    set: {weight: 50}
"""


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    with stamina.set_testing(True, attempts=1):
        yield


def runner(config: Path, clock: Any = None) -> CycleRunner:
    return build_runner(stub_settings(config), clock=clock or SystemClock())


def records(config: Path, event: str) -> list[dict[str, Any]]:
    log = stub_settings(config).decision_log
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["event"] == event]


def written(stub: StatefulQM) -> list[tuple[str, int, bool]]:
    return [
        (e["listName"], e["weight"], e["paused"]) for _, entries in stub.writes for e in entries
    ]


EXHAUSTED_RULES = """\
rules:
  - name: pause-exhausted
    when: not can_reserve and unpulled == 0
    set: {paused: true}
  - name: resume-refilled
    when: paused_by_mixer and can_reserve and unpulled > 0
    set: {paused: false}
"""


def test_a_recreated_list_starts_with_fresh_memory(tmp_path: Path) -> None:
    """2(a): a list the mixer paused, deleted and re-created paused by a human (its
    counters went backwards), is not resumed by resume-refilled; the cycle says so."""
    stub = StatefulQM(
        {
            "Sales": [
                qm_list("A", nNumbersAdded=100, nNumbersPulled=100, dialerCanReserve="closed"),
                qm_list("B"),
            ]
        }
    )
    with stub.serve() as url:
        config = stub_config(tmp_path, url, EXHAUSTED_RULES)
        mixer = runner(config)
        mixer.run_cycle()
        assert written(stub) == [("A", 10, True)]
        stub.campaigns["Sales"][0] = qm_list(
            "A", nNumbersAdded=50, nNumbersPulled=0, nNumbersCompleted=0, listState="paused"
        )
        mixer.run_cycle()
        mixer.run_cycle()
        kept = mixer.store.history("Sales", since=datetime(2000, 1, 1, tzinfo=UTC))["A"]
        mixer.close()
    assert [s.pulled for s in kept] == [0, 0], "the old list's counters feed the new one's rates"
    assert written(stub) == [("A", 10, True)], "a human's pause on the new list was undone"
    cycles = records(config, "cycle")
    assert cycles[1]["recreated"] == ["A"]
    assert "recreated" not in cycles[2]


def test_an_unknown_list_state_is_never_written_nor_counted_reservable(tmp_path: Path) -> None:
    """2(b): lists whose listState is "suspended", "disabled" or "1" are never written and
    do not count as the campaign's reservable list; the cycle record says why."""
    rules = """\
rules:
  - name: heavier
    when: added > 0
    set: {weight: 50}
  - name: pause-b
    match: "B"
    when: added > 0
    set: {paused: true}
"""
    stub = StatefulQM(
        {
            "Sales": [
                qm_list("S1", listState="suspended"),
                qm_list("S2", listState="Disabled"),
                qm_list("S3", listState="1"),
                qm_list("B"),
            ]
        }
    )
    with stub.serve() as url, structlog.testing.capture_logs() as logged:
        config = stub_config(tmp_path, url, rules)
        mixer = runner(config)
        mixer.run_cycle()
        mixer.run_cycle()
        mixer.close()
    assert written(stub) == []  # S*: not understood; B: the only reservable list
    warned = [e["list"] for e in logged if e["event"] == "list left alone"]
    assert sorted(warned) == ["S1", "S2", "S3"]  # when it begins, not every cycle
    stop = records(config, "guardrail")[0]
    assert stop["lists"] == ["B"]
    skipped = records(config, "cycle")[0]["skipped"]
    assert sorted(skipped) == ["S1", "S2", "S3"]
    assert "'suspended' is not one QM documents" in skipped["S1"]


def test_a_duplicate_list_name_is_never_written(tmp_path: Path) -> None:
    """2(c): a name that appears twice in one reply is never written (an update by name
    could reach either); other lists are; the cycle record says why."""
    rules = HEAVIER
    stub = StatefulQM({"Sales": [qm_list("D", 10), qm_list("D", 20), qm_list("C", 30)]})
    with stub.serve() as url:
        config = stub_config(tmp_path, url, rules)
        mixer = runner(config)
        mixer.run_cycle()
        mixer.close()
    assert written(stub) == [("C", 50, False)]
    assert "appears 2 times" in records(config, "cycle")[0]["skipped"]["D"]


def test_an_ambiguous_last_pull_is_the_latest_reading_not_in_the_future() -> None:
    """3: on the fall-back night, "02:30" read at 02:35 of the second pass is 5 minutes
    ago (not 65); read at 02:35 of the first pass, the second 02:30 is in the future, so
    the first one is meant."""
    parsed = parse_last_pull("2024-10-27 02:30:00", ZURICH)
    assert parsed is not None
    second_pass = datetime(2024, 10, 27, 1, 35, tzinfo=UTC)  # 02:35 CET
    first_pass = datetime(2024, 10, 27, 0, 35, tzinfo=UTC)  # 02:35 CEST
    assert second_pass - latest_not_after(parsed, second_pass) == (
        datetime(2024, 10, 27, 1, 35, tzinfo=UTC) - datetime(2024, 10, 27, 1, 30, tzinfo=UTC)
    )
    assert (first_pass - latest_not_after(parsed, first_pass)).total_seconds() == 300
    plain = parse_last_pull("2024-10-27 04:30:00", ZURICH)
    assert plain is not None
    assert latest_not_after(plain, second_pass) is plain


def test_an_idle_rule_does_not_pause_a_list_pulled_minutes_ago_on_fall_back(
    tmp_path: Path,
) -> None:
    """3, through the cycle: at 02:35 on the second pass an idle rule leaves alone a list
    whose lastPull says 02:30."""
    rules = """\
rules:
  - name: pause-idle
    when: idle_minutes > 30
    set: {paused: true}
"""
    stub = StatefulQM({"Sales": [qm_list("A", lastPull="2024-10-27 02:30:00"), qm_list("B")]})
    clock = FakeClock(datetime(2024, 10, 27, 1, 35, tzinfo=UTC))
    with stub.serve() as url:
        config = stub_config(tmp_path, url, rules)
        mixer = runner(config, clock)
        report = mixer.run_cycle()
        mixer.close()
    plan = report.results["Sales"].plan
    assert plan is not None
    assert plan.evaluation.lists["A"].facts.get("idle_minutes", 5) == 5
    assert all(name != "A" for name, _, _ in written(stub))


def test_human_weights_outside_the_limits_are_never_written_by_no_rule(tmp_path: Path) -> None:
    """4: a list no rule changes keeps a human's weight 0 or 500; the limits bound what
    rules produce (a rule's 500 is written as 100)."""
    rules = """\
rules:
  - name: boost-c
    match: "C"
    when: added > 0
    set: {weight: "base_weight * 50"}
"""
    stub = StatefulQM({"Sales": [qm_list("Z", 0), qm_list("H", 500), qm_list("C", 10)]})
    with stub.serve() as url:
        config = stub_config(tmp_path, url, rules)
        mixer = runner(config)
        mixer.run_cycle()
        mixer.run_cycle()
        mixer.close()
    assert written(stub) == [("C", 100, False)]
    assert stub.weights("Sales") == {"Z": 0, "H": 500, "C": 100}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nNumbersAdded", str(10**19)),
        ("weight", str(10**20)),
        ("nNumbersPulled", "9" * 4300),  # more digits than Python converts by default
        ("nNumbersCompleted", "-1"),
    ],
    ids=["added-1e19", "weight-1e20", "4300-digits", "negative"],
)
def test_one_bad_value_fails_its_campaign_only(tmp_path: Path, field: str, value: str) -> None:
    """9: a value out of range is a bad reply for its campaign (an error event naming list
    and field, nothing written there); the other campaign is planned and written."""
    rules = HEAVIER
    item = qm_list("X")
    stub = StatefulQM({"Bad": [item], "Good": [qm_list("Y")]})
    body = json.dumps({"amoCampaignName": "Bad", "lists": [item]})
    original = f'"{field}": {item[field]}'
    assert body.count(original) == 1
    stub.raw_reads["Bad"] = body.replace(original, f'"{field}": {value}').encode()
    with stub.serve() as url:
        config = stub_config(tmp_path, url, rules, campaigns=["Bad", "Good"])
        mixer = runner(config)
        report = mixer.run_cycle()
        mixer.close()
    assert report.outcomes == {"Bad": "error", "Good": "ok"}
    assert [c for c, _ in stub.writes] == ["Good"]
    [error] = records(config, "error")
    assert error["campaign"] == "Bad"
    assert error["kind"] == "read"
    assert "list 'X'" in error["error"] or "cannot be read" in error["error"]
    assert len(error["error"]) < 400
    assert {r["campaign"] for r in records(config, "cycle")} == {"Bad", "Good"}


def test_an_unexpected_exception_is_contained_to_its_campaign(tmp_path: Path) -> None:
    """9: anything raised while one campaign is planned is an error event for that
    campaign, in one line; the other campaigns go on."""
    rules = HEAVIER
    stub = StatefulQM({"Bad": [qm_list("X")], "Good": [qm_list("Y")]})
    with stub.serve() as url:
        config = stub_config(tmp_path, url, rules, campaigns=["Bad", "Good"])
        mixer = runner(config)
        real = mixer.store.load_memory

        def explode(campaign: str) -> Any:
            if campaign == "Bad":
                raise OverflowError("Python int too large to convert to SQLite INTEGER")
            return real(campaign)

        mixer.store.load_memory = explode  # type: ignore[method-assign]
        report = mixer.run_cycle()
        mixer.close()
    assert report.outcomes == {"Bad": "error", "Good": "ok"}
    assert "internal error (campaign 'Bad'): OverflowError" in report.errors["Bad"]
    assert [c for c, _ in stub.writes] == ["Good"]
    [error] = records(config, "error")
    assert error["kind"] == "internal"


def test_an_unexpected_exception_while_reading_is_contained_to_its_campaign(
    tmp_path: Path,
) -> None:
    """9: a read that raises something outside the error tree fails its campaign only."""
    rules = HEAVIER
    stub = StatefulQM({"Bad": [qm_list("X")], "Good": [qm_list("Y")]})
    with stub.serve() as url:
        config = stub_config(tmp_path, url, rules, campaigns=["Bad", "Good"])
        mixer = runner(config)
        real = mixer.client.read_lists

        def explode(campaign: str, *, now: datetime) -> Any:
            if campaign == "Bad":
                raise RecursionError("maximum recursion depth exceeded")
            return real(campaign, now=now)

        mixer.client.read_lists = explode  # type: ignore[method-assign]
        report = mixer.run_cycle()
        mixer.close()
    assert report.outcomes == {"Bad": "error", "Good": "ok"}
    assert "internal error (campaign 'Bad'): RecursionError" in report.errors["Bad"]
    assert [c for c, _ in stub.writes] == ["Good"]


def test_a_rescheduled_number_is_not_a_recreated_list(tmp_path: Path) -> None:
    """2(a): pulled going back by a rescheduled number (never below the completed
    count) is a living list: its memory is kept, the mixer still resumes what it paused."""
    stub = StatefulQM(
        {
            "Sales": [
                qm_list(
                    "A",
                    nNumbersAdded=100,
                    nNumbersPulled=100,
                    nNumbersCompleted=90,
                    dialerCanReserve="closed",
                ),
                qm_list("B"),
            ]
        }
    )
    with stub.serve() as url:
        config = stub_config(tmp_path, url, EXHAUSTED_RULES)
        mixer = runner(config)
        mixer.run_cycle()
        a = stub.list("Sales", "A")
        a.update(nNumbersPulled=95, dialerCanReserve="open")  # five numbers rescheduled
        mixer.run_cycle()
        mixer.close()
    assert written(stub) == [("A", 10, True), ("A", 10, False)]
    assert all("recreated" not in c for c in records(config, "cycle"))
