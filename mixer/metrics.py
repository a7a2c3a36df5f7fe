"""Prometheus metrics: what the daemon did, per campaign, and the ``/metrics`` endpoint.

Each ``MixerMetrics`` owns its registry (so tests and reloads never collide with the
process-wide default); the daemon serves it when ``metrics.listen`` is configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from threading import Thread
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from mixer.errors import MixerError

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
SUCCESS_OUTCOMES = frozenset({"ok", "guardrail"})


class MixerMetrics:
    """The daemon's counters and gauges; the cycle code calls the methods."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        if registry is None:
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        self.registry = registry
        self._cycles = Counter(
            "amo_mixer_cycles",
            "Campaign cycles run, by outcome (ok, error, guardrail).",
            ["campaign", "outcome"],
            registry=registry,
        )
        self._duration = Histogram(
            "amo_mixer_cycle_duration_seconds",
            "Time one campaign's cycle took: read, plan, write, log.",
            ["campaign"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self._last_success = Gauge(
            "amo_mixer_last_success_timestamp_seconds",
            "When a campaign's cycle last ended ok or with a guardrail stop (Unix time).",
            ["campaign"],
            registry=registry,
        )
        self._writes = Counter(
            "amo_mixer_writes",
            "Lists whose weight or paused flag was written to QM.",
            ["campaign"],
            registry=registry,
        )
        self._guardrail_stops = Counter(
            "amo_mixer_guardrail_stops",
            "Plans a guardrail refused to apply.",
            ["campaign", "guardrail"],
            registry=registry,
        )
        self._overrides = Counter(
            "amo_mixer_overrides",
            "Manual changes detected (a human changed what the mixer wrote).",
            ["campaign"],
            registry=registry,
        )
        self._lists = Gauge(
            "amo_mixer_lists",
            "Lists seen in the last read, by state (open, paused, exhausted, completed).",
            ["campaign", "state"],
            registry=registry,
        )
        self._reloads = Counter(
            "amo_mixer_reloads",
            "Configuration reloads (SIGHUP), by outcome (ok, error).",
            ["outcome"],
            registry=registry,
        )
        self._rule_errors = Counter(
            "amo_mixer_rule_errors",
            "Rule evaluations that raised for a list (the list was left as QM had it).",
            ["rule"],
            registry=registry,
        )
        self._states: dict[str, set[str]] = {}

    def cycle(self, campaign: str, outcome: str, seconds: float, at: datetime) -> None:
        self._cycles.labels(campaign, outcome).inc()
        self._duration.labels(campaign).observe(seconds)
        if outcome in SUCCESS_OUTCOMES:
            self._last_success.labels(campaign).set(at.timestamp())

    def writes(self, campaign: str, n: int) -> None:
        self._writes.labels(campaign).inc(n)

    def guardrail_stop(self, campaign: str, name: str) -> None:
        self._guardrail_stops.labels(campaign, name).inc()

    def override(self, campaign: str) -> None:
        self._overrides.labels(campaign).inc()

    def lists(self, campaign: str, counts: Mapping[str, int]) -> None:
        """Set the per-state list counts; a state seen before and absent now drops to 0."""
        seen = self._states.setdefault(campaign, set())
        for state in seen - set(counts):
            self._lists.labels(campaign, state).set(0)
        for state, n in counts.items():
            self._lists.labels(campaign, state).set(n)
        seen.update(counts)

    def rule_error(self, rule: str) -> None:
        self._rule_errors.labels(rule).inc()

    def reload(self, outcome: str) -> None:
        self._reloads.labels(outcome).inc()

    def serve(self, listen: str) -> MetricsServer:
        """Serve ``/metrics`` on ``listen`` (``host:port``) in a thread; call the result to stop."""
        host, port = parse_listen(listen)
        try:
            server, thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise MixerError(
                f"cannot serve metrics on {listen}: {exc.strerror or exc}; "
                "choose a free address in metrics.listen, or remove metrics to disable it"
            ) from exc
        return MetricsServer(server, thread)


class MetricsServer:
    """A running ``/metrics`` server; calling it shuts it down and joins its thread."""

    def __init__(self, server: Any, thread: Thread) -> None:
        self._server = server
        self._thread = thread
        address = server.server_address
        self.host: str = address[0]
        self.port: int = address[1]

    def __call__(self) -> None:
        if not self._thread.is_alive():
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def parse_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9864"``, ``"[::1]:9864"`` or ``":9864"`` (all addresses) → host, port."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise MixerError(
            f"metrics.listen {listen!r} is not host:port; write it like 127.0.0.1:9864"
        )
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)
