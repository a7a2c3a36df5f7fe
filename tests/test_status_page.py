"""The daemon's status views: the board the cycle publishes, /, /status.json, /why, and
that a reader never holds up a cycle."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client import CollectorRegistry

import mixer.listener
from mixer.commands.explain import render_trace, trace_as_json
from mixer.config import load_settings
from mixer.errors import ConfigError
from mixer.listener import Listener, WhyViews
from mixer.metrics import MixerMetrics
from mixer.status.board import StatusBoard
from tests.cycle_harness import Mixer

ZURICH = ZoneInfo("Europe/Zurich")
WAIT = 10.0  # a ceiling for waits on events, never a sleep

RULES = """
lists:
  - match: "Recall*"
    deadline: "2024-04-29 20:00"
rules:
  - name: boost-near-deadline
    description: "Deadline in {hours_to_deadline} h: boost."
    when: hours_to_deadline < 48 and unpulled > 0
    set: {weight: "base_weight * 3"}
  - name: pause-after-a-while
    match: "Cold*"
    when: unpulled > 0
    for: 30m
    set: {paused: true}
"""
LISTS = [
    {"name": "Recall A", "weight": 10, "numbers": 40},
    {"name": "Cold <b>&</b>", "weight": 5, "numbers": 40},
    {"name": "Plain", "weight": 7, "numbers": 40},
]


@pytest.fixture
def mixer_rig(tmp_path: Path) -> Iterator[Mixer]:
    rig = Mixer(tmp_path, lists=LISTS, rules=RULES, mode="apply")
    yield rig
    rig.close()


@pytest.fixture
def board() -> StatusBoard:
    return StatusBoard()


@pytest.fixture
def served(board: StatusBoard) -> Iterator[tuple[str, MixerMetrics]]:
    metrics = MixerMetrics(CollectorRegistry())
    why = WhyViews(text=render_trace, data=trace_as_json)
    stop: Listener = metrics.serve("127.0.0.1:0", board, ZURICH, why)
    yield f"http://127.0.0.1:{stop.port}", metrics
    stop()


def publish(board: StatusBoard, rig: Mixer, minutes: float = 1) -> Any:
    report = rig.cycle(minutes)
    board.publish(report, mode="apply", rules_hash="f00d" * 16, interval_s=60)
    return report


def test_board_shows_lists_deadlines_holds_timers_and_decisions(
    mixer_rig: Mixer, board: StatusBoard
) -> None:
    """One cycle's snapshot carries weights, who paused, deadlines, holds, timers, reasons."""
    publish(board, mixer_rig)
    mixer_rig.qm_list("Plain").weight = 33  # a human changes a list
    publish(board, mixer_rig)
    status = board.current.snapshot
    assert status.mode == "apply"
    assert status.rules_hash == "f00d" * 16
    sales = status.campaign("Sales")
    assert sales is not None
    assert sales.outcome == "ok"
    lists = {item.name: item for item in sales.lists}
    recall = lists["Recall A"]
    assert (recall.weight, recall.base_weight) == (30, 10)
    assert recall.hours_to_deadline is not None
    assert 0 < recall.hours_to_deadline < 14
    assert recall.rules == ("boost-near-deadline",)
    assert lists["Plain"].weight == 33
    assert [h.list for h in sales.holds] == ["Plain"]
    assert [(t.list, t.rule) for t in sales.timers] == [("Cold <b>&</b>", "pause-after-a-while")]
    assert sales.decisions[0].list == "Recall A"
    assert sales.decisions[0].reason.startswith("Deadline in")
    assert sales.decisions[0].applied is True


def test_paused_by_mixer_or_human(mixer_rig: Mixer, board: StatusBoard) -> None:
    """A list the mixer paused reads "mixer"; a list a human paused reads "human"."""
    mixer_rig.qm_list("Plain").paused = True
    publish(board, mixer_rig)
    publish(board, mixer_rig, minutes=31)
    publish(board, mixer_rig)
    sales = board.current.snapshot.campaign("Sales")
    assert sales is not None
    lists = {item.name: item for item in sales.lists}
    assert (lists["Cold <b>&</b>"].paused, lists["Cold <b>&</b>"].paused_by) == (True, "mixer")
    assert (lists["Plain"].paused, lists["Plain"].paused_by) == (True, "human")
    assert lists["Recall A"].paused_by is None


def test_a_failed_read_keeps_the_last_lists_and_says_so(
    mixer_rig: Mixer, board: StatusBoard
) -> None:
    """After a read error the campaign shows the error and the lists of the last good read."""
    publish(board, mixer_rig)
    good = board.current.snapshot.campaign("Sales")
    assert good is not None
    mixer_rig.runner.client.read_lists = _failing_read  # type: ignore[method-assign]
    publish(board, mixer_rig)
    failed = board.current.snapshot.campaign("Sales")
    assert failed is not None
    assert failed.outcome == "error"
    assert failed.error == "QM unreachable (test)"
    assert failed.lists == good.lists
    assert failed.lists_as_of == good.lists_as_of != failed.last_cycle


def _failing_read(campaign: str, *, now: Any) -> Any:
    from mixer.errors import MixerError

    raise MixerError("QM unreachable (test)")


def test_page_json_and_why_over_http(
    mixer_rig: Mixer, board: StatusBoard, served: tuple[str, MixerMetrics]
) -> None:
    """/ is one HTML page without external resources; /status.json and /why agree with it."""
    url, _ = served
    before = httpx.get(url + "/", timeout=WAIT)
    assert before.status_code == 200
    assert "No cycle has run yet" in before.text
    publish(board, mixer_rig)
    page = httpx.get(url + "/", timeout=WAIT)
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    assert 'class="list"' in text
    assert "Recall A" in text
    assert "Cold &lt;b&gt;&amp;&lt;/b&gt;" in text
    assert "<b>&</b>" not in text
    assert 'svg class="chart"' in text
    for external in ("http://", "https://", "src=", "@import"):
        assert external not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "08:01:00" in text  # 06:01 UTC shown in QM's zone (Zurich, CEST)
    data = httpx.get(url + "/status.json", timeout=WAIT).json()
    assert data["campaigns"][0]["name"] == "Sales"
    assert {item["name"] for item in data["campaigns"][0]["lists"]} == {x["name"] for x in LISTS}
    why = httpx.get(url + "/why", params={"campaign": "Sales", "list": "Recall A"}, timeout=WAIT)
    assert why.status_code == 200
    assert "[FIRED] boost-near-deadline" in why.text
    trace = httpx.get(
        url + "/why.json", params={"campaign": "Sales", "list": "Recall A"}, timeout=WAIT
    ).json()
    assert trace["fired"] == ["boost-near-deadline"]
    missing = httpx.get(url + "/why", params={"campaign": "Sales", "list": "Nope"}, timeout=WAIT)
    assert missing.status_code == 404
    assert httpx.get(url + "/nothing", timeout=WAIT).status_code == 404
    assert httpx.post(url + "/status.json", timeout=WAIT).status_code == 405


def test_why_reads_no_qm(
    mixer_rig: Mixer, board: StatusBoard, served: tuple[str, MixerMetrics]
) -> None:
    """The page, the JSON and the why view are served without a single QM request."""
    url, _ = served
    publish(board, mixer_rig)
    before = dict(mixer_rig.app.stats.requests)
    for path in ("/", "/status.json", "/why?campaign=Sales&list=Plain"):
        assert httpx.get(url + path, timeout=WAIT).status_code == 200
    assert dict(mixer_rig.app.stats.requests) == before


def test_a_stuck_reader_does_not_hold_up_a_cycle(
    mixer_rig: Mixer,
    board: StatusBoard,
    served: tuple[str, MixerMetrics],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While a page request is stuck mid-render (and a client sends half a request), the
    cycle runs and publishes; the stuck reader then finishes with the snapshot it took."""
    url, _ = served
    publish(board, mixer_rig)
    first_cycle = board.current.snapshot.cycle_id
    entered, release = threading.Event(), threading.Event()
    real_render = mixer.listener.render_page

    def stuck_render(*args: Any) -> str:
        entered.set()
        assert release.wait(WAIT)
        return real_render(*args)

    monkeypatch.setattr(mixer.listener, "render_page", stuck_render)
    result: dict[str, str] = {}
    reader = threading.Thread(
        target=lambda: result.update(page=httpx.get(url + "/", timeout=WAIT).text)
    )
    reader.start()
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=WAIT) as half:
        half.sendall(b"GET /status.json HTTP/1.1\r\nHost: x\r\n")  # and never the end
        assert entered.wait(WAIT)
        cycled: dict[str, Any] = {}
        cycle = threading.Thread(target=lambda: cycled.update(report=publish(board, mixer_rig)))
        cycle.start()  # the cycle runs while both readers hang
        cycle.join(WAIT)
        assert not cycle.is_alive(), "the cycle waited for a page reader"
        assert not release.is_set()
        assert reader.is_alive()
        assert board.current.snapshot.cycle_id == cycled["report"].cycle_id != first_cycle
        release.set()
        reader.join(WAIT)
    assert first_cycle is not None
    assert first_cycle in result["page"]


def test_metrics_per_list_and_per_rule(mixer_rig: Mixer) -> None:
    """Per-list gauges and per-rule counters follow the cycle; a list gone drops its series."""
    metrics = MixerMetrics(CollectorRegistry())
    mixer_rig.runner.metrics = metrics
    mixer_rig.cycle()
    value = metrics.registry.get_sample_value
    recall = {"campaign": "Sales", "list": "Recall A"}
    assert value("amo_mixer_list_weight", recall) == 30
    assert value("amo_mixer_list_base_weight", recall) == 10
    assert value("amo_mixer_list_paused", recall) == 0
    assert value("amo_mixer_list_unpulled", recall) == 40
    left = value("amo_mixer_list_deadline_remaining_seconds", recall)
    assert left is not None
    assert 0 < left < 14 * 3600
    assert value("amo_mixer_list_eta_seconds", recall) is None  # no rate yet: absent
    plain = {"campaign": "Sales", "list": "Plain"}
    assert value("amo_mixer_list_deadline_remaining_seconds", plain) is None
    firing = {"campaign": "Sales", "rule": "boost-near-deadline"}
    assert value("amo_mixer_rule_firings_total", firing) == 1
    mixer_rig.cycle()
    assert value("amo_mixer_rule_firings_total", firing) == 2
    mixer_rig.app.state.campaigns["Sales"].pop("Plain")
    mixer_rig.cycle()
    assert value("amo_mixer_list_weight", plain) is None


def test_rule_errors_are_counted_per_rule(tmp_path: Path) -> None:
    """A rule that raises for a list counts in amo_mixer_rule_errors_total."""
    rules = """
rules:
  - name: divide
    when: unpulled > 0
    set: {weight: "base_weight / (added - added)"}
"""
    rig = Mixer(tmp_path, lists=[{"name": "A", "weight": 5, "numbers": 3}], rules=rules)
    try:
        metrics = MixerMetrics(CollectorRegistry())
        rig.runner.metrics = metrics
        rig.cycle()
        labels = {"rule": "divide"}
        assert metrics.registry.get_sample_value("amo_mixer_rule_errors_total", labels) == 1
    finally:
        rig.close()


def test_per_list_series_can_be_turned_off(mixer_rig: Mixer) -> None:
    """metrics.per_list false: no amo_mixer_list_* series, the rule counters stay."""
    metrics = MixerMetrics(CollectorRegistry(), per_list=False)
    mixer_rig.runner.metrics = metrics
    mixer_rig.cycle()
    names = {m.name for m in metrics.registry.collect() for _ in m.samples}
    assert not {n for n in names if n.startswith("amo_mixer_list_")}
    assert "amo_mixer_rule_firings" in names


@pytest.mark.parametrize("listen", ["0.0.0.0:9864", "192.0.2.7:9864", "[::]:9864"])
def test_a_non_loopback_listener_needs_allow_remote(tmp_path: Path, listen: str) -> None:
    """metrics.listen off loopback is refused unless metrics.allow_remote is true."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(
        "rules:\n  - name: r\n    when: unpulled == 0\n    set: {paused: true}\n"
    )
    base = (
        "qm: {url: 'http://qm.test/qm', user: robot, password: bot, timezone: UTC}\n"
        "campaigns: [Sales]\nrules: [rules/*.yaml]\n"
    )
    config = tmp_path / "config.yaml"
    config.write_text(base + f"metrics: {{listen: '{listen}'}}\n")
    config.chmod(0o600)
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert "allow_remote" in str(caught.value.problems)
    config.write_text(base + f"metrics: {{listen: '{listen}', allow_remote: true}}\n")
    settings = load_settings(config, environ={})
    assert settings.metrics is not None
    assert settings.metrics.allow_remote


def test_status_json_is_strict_json(mixer_rig: Mixer, board: StatusBoard) -> None:
    """/status.json has no NaN or Infinity, which strict parsers reject."""
    from mixer.status.page import as_json_bytes

    publish(board, mixer_rig)
    publish(board, mixer_rig, minutes=20)
    json.loads(as_json_bytes(board.current.snapshot), parse_constant=_reject)


def _reject(name: str) -> None:
    raise AssertionError(f"{name} in JSON")


def test_timers_count_down(mixer_rig: Mixer, board: StatusBoard) -> None:
    """A pending for: timer shows when it fires, and is gone once the rule fired."""
    publish(board, mixer_rig)
    sales = board.current.snapshot.campaign("Sales")
    assert sales is not None
    assert sales.timers
    assert sales.timers[0].left_s == timedelta(minutes=30).total_seconds()
    publish(board, mixer_rig, minutes=31)
    sales = board.current.snapshot.campaign("Sales")
    assert sales is not None
    assert not sales.timers


class CycleSignal:
    """A notifier stand-in: ``watchdog`` (sent after each cycle) sets an event."""

    def __init__(self) -> None:
        self.cycled = threading.Event()

    def ready(self, status: str = "") -> None: ...

    def reloading(self) -> None: ...

    def stopping(self, status: str = "") -> None: ...

    def watchdog(self, status: str = "") -> None:
        self.cycled.set()

    def watchdog_interval(self) -> None:
        return None


def test_the_daemon_serves_its_last_cycle(tmp_path: Path) -> None:
    """`run` publishes each cycle to the page on its metrics listener, in QM's zone."""
    import yaml

    from mixer.daemon import Daemon

    rig = Mixer(tmp_path, lists=LISTS, rules=RULES, mode="dry-run")
    rig.runner.close()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = yaml.safe_load(rig.config_path.read_text())
    config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    rig.config_path.write_text(yaml.safe_dump(config))
    signal = CycleSignal()
    daemon = Daemon(
        rig.config_path,
        environ={},
        clock=rig.clock,
        transport=httpx.WSGITransport(app=rig.app),
        notifier=signal,  # type: ignore[arg-type]
        interval=3600,
    )
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        assert signal.cycled.wait(WAIT)
        data = httpx.get(f"http://127.0.0.1:{port}/status.json", timeout=WAIT).json()
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=WAIT).text
    finally:
        daemon.stop()
        thread.join(WAIT)
    assert data["mode"] == "dry-run"
    assert data["rules_hash"]
    assert len(data["rules_hash"]) == 64
    assert data["campaigns"][0]["outcome"] == "ok"
    assert "Recall A" in page
    assert "Europe/Zurich" in page


def test_off_track_deadline_lists_lead_the_page(mixer_rig: Mixer, board: StatusBoard) -> None:
    """A deadline list nobody pulls (rate 0 once the history is long enough) reads off
    track, in the list table, the JSON and the call-out above the charts."""
    from mixer.status.page import render_page

    publish(board, mixer_rig)
    first = board.current.snapshot.campaign("Sales")
    assert first is not None
    assert {i.name: i.on_track for i in first.lists}["Recall A"] is None  # no rate yet
    publish(board, mixer_rig, minutes=20)
    sales = board.current.snapshot.campaign("Sales")
    assert sales is not None
    lists = {i.name: i for i in sales.lists}
    assert lists["Recall A"].on_track is False
    assert lists["Recall A"].pull_rate_per_hour == 0
    assert lists["Plain"].on_track is None  # no deadline
    page = render_page(board.current.snapshot, ZURICH)
    assert '<p class="off" id="off-track-Sales">1 deadline list(s) off track: Recall A (' in page
    assert page.index("off track: Recall A") < page.index('<svg class="chart"')
