"""Prometheus metrics: names, labels and values in the exposition text, and /metrics."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from mixer.errors import MixerError
from mixer.metrics import MixerMetrics, parse_listen

AT = datetime(2024, 4, 29, 8, 0, tzinfo=UTC)


def exposition(metrics: MixerMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_exposition_after_calls() -> None:
    """Every metric appears with its labels and the values the calls produced."""
    metrics = MixerMetrics(CollectorRegistry())
    metrics.cycle("Sales", "ok", 0.3, AT)
    metrics.cycle("Sales", "error", 1.2, AT.replace(hour=9))
    metrics.writes("Sales", 3)
    metrics.guardrail_stop("Sales", "no-reservable-list")
    metrics.override("Sales")
    metrics.lists("Sales", {"open": 2, "paused": 1})
    metrics.reload("error")
    text = exposition(metrics)
    assert 'amo_mixer_cycles_total{campaign="Sales",outcome="ok"} 1.0' in text
    assert 'amo_mixer_cycles_total{campaign="Sales",outcome="error"} 1.0' in text
    assert 'amo_mixer_cycle_duration_seconds_count{campaign="Sales"} 2.0' in text
    assert 'amo_mixer_cycle_duration_seconds_bucket{campaign="Sales",le="0.5"} 1.0' in text
    assert 'amo_mixer_last_success_timestamp_seconds{campaign="Sales"} 1.7143776e+09' in text
    assert 'amo_mixer_writes_total{campaign="Sales"} 3.0' in text
    assert (
        'amo_mixer_guardrail_stops_total{campaign="Sales",guardrail="no-reservable-list"} 1.0'
        in text
    )
    assert 'amo_mixer_overrides_total{campaign="Sales"} 1.0' in text
    assert 'amo_mixer_lists{campaign="Sales",state="open"} 2.0' in text
    assert 'amo_mixer_reloads_total{outcome="error"} 1.0' in text


def test_guardrail_outcome_counts_as_success() -> None:
    """A guardrail stop is a success: it moves the last-success timestamp, an error does not."""
    metrics = MixerMetrics(CollectorRegistry())
    metrics.cycle("B2B", "guardrail", 0.1, AT)
    metrics.cycle("B2B", "error", 0.1, AT.replace(hour=10))
    assert (
        metrics.registry.get_sample_value(
            "amo_mixer_last_success_timestamp_seconds", {"campaign": "B2B"}
        )
        == AT.timestamp()
    )


def test_list_states_absent_now_drop_to_zero() -> None:
    """A state present in an earlier read and absent now reads 0, not its stale count."""
    metrics = MixerMetrics(CollectorRegistry())
    metrics.lists("Sales", {"open": 2, "exhausted": 1})
    metrics.lists("Sales", {"open": 3})
    value = metrics.registry.get_sample_value
    assert value("amo_mixer_lists", {"campaign": "Sales", "state": "exhausted"}) == 0
    assert value("amo_mixer_lists", {"campaign": "Sales", "state": "open"}) == 3


def test_default_registry_is_private_with_process_metrics() -> None:
    """Two instances never collide, and the default one carries process metrics."""
    first, second = MixerMetrics(), MixerMetrics()
    assert first.registry is not second.registry
    assert "python_info" in exposition(first)


def test_serve_and_stop() -> None:
    """/metrics answers over loopback HTTP, and stopping frees the port."""
    metrics = MixerMetrics(CollectorRegistry())
    metrics.writes("Sales", 1)
    stop = metrics.serve("127.0.0.1:0")
    try:
        reply = httpx.get(f"http://127.0.0.1:{stop.port}/metrics", timeout=5)
        assert reply.status_code == 200
        assert 'amo_mixer_writes_total{campaign="Sales"} 1.0' in reply.text
    finally:
        stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{stop.port}/metrics", timeout=1)


def test_serve_on_a_busy_port_is_one_clear_error() -> None:
    """A port already taken is a MixerError naming the address and what to do."""
    metrics = MixerMetrics(CollectorRegistry())
    stop = metrics.serve("127.0.0.1:0")
    try:
        with pytest.raises(MixerError, match=rf"cannot serve metrics on 127.0.0.1:{stop.port}"):
            metrics.serve(f"127.0.0.1:{stop.port}")
    finally:
        stop()


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:9864", ("127.0.0.1", 9864)),
        ("[::1]:9864", ("::1", 9864)),
        (":9864", ("0.0.0.0", 9864)),
    ],
)
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    """host:port forms, IPv6 in brackets, and an empty host for every address."""
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["9864", "localhost:http", "127.0.0.1:70000"])
def test_parse_listen_rejects(listen: str) -> None:
    """Anything but host:port is a clear error."""
    with pytest.raises(MixerError, match="is not host:port"):
        parse_listen(listen)
