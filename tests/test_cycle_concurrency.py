"""Campaigns as concurrent pipelines: read → plan → write → verify → log per campaign,
at most ``qm.concurrency`` QM requests at once, with one consistent store and log."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.cycle_harness import Mixer

BOOST = """
rules:
  - name: boost
    when: unpulled > 0 and weight < 30
    set: {weight: 30}
"""
CAMPAIGNS = [f"C{n:02d}" for n in range(12)]


def many_campaigns() -> str:
    def lists() -> list[dict[str, Any]]:  # a new list each: scenarios refuse YAML aliases
        return [{"name": f"L{i}", "numbers": 20, "weight": 10 + i} for i in range(3)]

    return yaml.safe_dump(
        {
            "start": "2024-04-29 08:00",
            "duration": "2d",
            "timezone": "Europe/Zurich",
            "seed": 1,
            "campaigns": {name: {"lists": lists()} for name in CAMPAIGNS},
            "agents": [],
        }
    )


@pytest.fixture
def mixers(tmp_path: Path) -> Iterator[list[Mixer]]:
    made: list[Mixer] = []
    yield made
    for mixer in made:
        mixer.close()


def _is_write(request: httpx.Request) -> bool:
    return b"listUpdates" in request.read()


class _ReadOfGhostWaitsForSalesWrite(httpx.BaseTransport):
    """Ghost's read is answered only once Sales' write has been: sequential phases (every
    read, then every write) would never let it through."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.sales_written = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        if b"Ghost" in body and not self.sales_written.wait(timeout=10):
            raise httpx.ConnectError("Sales was never written before Ghost's read", request=request)
        response = self.inner.handle_request(request)
        if b"Sales" in body and _is_write(request):
            self.sales_written.set()
        return response


def test_a_campaign_is_written_without_waiting_for_other_reads(
    tmp_path: Path, mixers: list[Mixer]
) -> None:
    """Sales is planned and written while Ghost's read is still outstanding, and the cycle
    record says how long Sales' read-to-write window was."""
    wrapped: list[_ReadOfGhostWaitsForSalesWrite] = []

    def wrap(inner: httpx.BaseTransport) -> httpx.BaseTransport:
        wrapped.append(_ReadOfGhostWaitsForSalesWrite(inner))
        return wrapped[-1]

    lists = [{"name": "Boost Me", "numbers": 50, "weight": 10}]
    mixer = Mixer(tmp_path, lists=lists, rules=BOOST, campaigns=["Ghost", "Sales"], wrap=wrap)
    mixers.append(mixer)
    report = mixer.cycle()
    assert wrapped[0].sales_written.is_set()
    assert report.results["Sales"].writes == 1
    assert report.outcomes == {"Ghost": "error", "Sales": "ok"}
    assert "Unknown campaign" in (report.results["Ghost"].error or "")  # read, not timed out
    cycles = {r["campaign"]: r for r in mixer.records("cycle")}
    assert cycles["Sales"]["read_to_write_ms"] > 0
    assert cycles["Ghost"]["read_to_write_ms"] is None


class _CountsInFlight(httpx.BaseTransport):
    """Holds each request at a barrier of ``parties``: exactly that many must be in flight
    together for any to pass, and more than that at once is recorded."""

    def __init__(self, inner: httpx.BaseTransport, parties: int) -> None:
        self.inner = inner
        self.barrier = threading.Barrier(parties, timeout=10)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            self.barrier.wait()
            return self.inner.handle_request(request)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_requests_in_flight_are_bounded_by_qm_concurrency(
    tmp_path: Path, mixers: list[Mixer]
) -> None:
    """With ``qm.concurrency: 3``, QM sees three requests at once, never more."""
    counters: list[_CountsInFlight] = []

    def wrap(inner: httpx.BaseTransport) -> httpx.BaseTransport:
        counters.append(_CountsInFlight(inner, 3))
        return counters[-1]

    ghosts = [f"Ghost {n}" for n in range(6)]  # unknown to QM: one read each, no write
    lists = [{"name": "A", "numbers": 5, "weight": 10}]
    mixer = Mixer(
        tmp_path, lists=lists, rules=BOOST, campaigns=ghosts, wrap=wrap, qm={"concurrency": 3}
    )
    mixers.append(mixer)
    report = mixer.cycle()
    assert set(report.outcomes.values()) == {"error"}
    assert list(report.results) == ghosts  # in configured order, whatever finished first
    assert counters[0].most == 3


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in record.items()
        if k not in ("cycle_id", "duration_ms", "read_to_write_ms", "ts")
    }


def test_store_and_log_match_a_sequential_run_under_concurrency(
    tmp_path: Path, mixers: list[Mixer]
) -> None:
    """Twelve campaigns with changes, eight at once, over three cycles: every log line is
    whole, each campaign's records keep their order (decisions before its cycle record),
    and the log and the state store hold what one campaign at a time leaves."""
    runs: list[Mixer] = []
    for concurrency in (1, 8):
        folder = tmp_path / f"c{concurrency}"
        folder.mkdir()
        mixer = Mixer(
            folder,
            lists=[],
            rules=BOOST,
            campaigns=CAMPAIGNS,
            scenario=many_campaigns(),
            qm={"concurrency": concurrency},
        )
        mixers.append(mixer)
        runs.append(mixer)
        for _ in range(3):
            mixer.cycle()
            for name in ("C03", "C07"):  # a supervisor's change every cycle
                mixer.qm_list("L0", name).weight += 1
    sequential, concurrent = runs
    records = concurrent.records()
    assert len(records) == len(sequential.records())
    for campaign in CAMPAIGNS:
        alone = [_comparable(r) for r in sequential.records() if r.get("campaign") == campaign]
        mixed = [_comparable(r) for r in records if r.get("campaign") == campaign]
        assert mixed == alone
    assert {r["event"] for r in records} >= {"decision", "cycle", "override"}
    for campaign in CAMPAIGNS:
        assert concurrent.runner.store.load_memory(campaign) == sequential.runner.store.load_memory(
            campaign
        )


def test_a_failing_pipeline_ends_the_cycle_only_after_the_others(
    tmp_path: Path, mixers: list[Mixer]
) -> None:
    """A pipeline that raises (a bug) fails its campaign only (issue 12, item 9), and the
    cycle ends once every other campaign's pipeline has finished: nothing still writes
    when the cycle is over."""
    release = threading.Event()
    finished: list[str] = []
    lists = [{"name": "A", "numbers": 5, "weight": 10}]
    mixer = Mixer(tmp_path, lists=lists, rules=BOOST, campaigns=["Boom", "Sales"])
    mixers.append(mixer)
    runner = mixer.runner
    run_campaign = runner._run_campaign

    def failing(campaign: str, *args: Any) -> Any:
        if campaign == "Boom":
            release.set()
            raise RuntimeError("a bug")
        release.wait(timeout=10)  # Sales plans only once Boom has failed
        result = run_campaign(campaign, *args)
        finished.append(campaign)
        return result

    runner._run_campaign = failing  # type: ignore[method-assign]
    report = mixer.cycle()
    assert finished == ["Sales"]
    assert report.outcomes["Boom"] == "error"
    assert "internal error (campaign 'Boom'): RuntimeError: a bug" in report.errors["Boom"]
    assert report.outcomes["Sales"] != "error"
