"""Prometheus metrics: what the daemon did, per campaign, per list and per rule.

Each ``MixerMetrics`` owns its registry (so tests and reloads never collide with the
process-wide default); the daemon serves it, with the status page, when
``metrics.listen`` is configured (``mixer.listener``).

Per-list series (``amo_mixer_list_*``, labels ``campaign`` and ``list``) number about
seven per list of every campaign; ``metrics.per_list: false`` turns them off. A list that
disappears from QM, or a fact that turns unknown (no deadline, no rate yet), drops its
series instead of leaving a stale value.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from mixer.errors import MixerError
from mixer.listener import UTC_ZONE, Listener, StatusApp, WhyViews, serve

if TYPE_CHECKING:
    from mixer.plan import CampaignPlan
    from mixer.status.board import StatusBoard

MetricsServer = Listener  # the name before the status page shared the listener

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
SUCCESS_OUTCOMES = frozenset({"ok", "guardrail"})


# Per-list gauges: metric name, help, and the fact (or derived value) each one shows.
LIST_GAUGES = (
    ("amo_mixer_list_weight", "The list's weight in QM after this cycle."),
    ("amo_mixer_list_paused", "1 when the list is paused in QM after this cycle, else 0."),
    ("amo_mixer_list_base_weight", "The baseline weight a human set (rules scale from it)."),
    ("amo_mixer_list_unpulled", "Numbers of the list not pulled yet."),
    (
        "amo_mixer_list_deadline_remaining_seconds",
        "Time left to the list's deadline (negative once overdue); absent without a deadline.",
    ),
    (
        "amo_mixer_list_eta_seconds",
        "Time to pull the unpulled numbers at the current pull rate; absent while unknown.",
    ),
    (
        "amo_mixer_list_on_track",
        "1 when a deadline list will be pulled in time at its pull rate, 0 when not; "
        "absent without a deadline or a known rate.",
    ),
)


class MixerMetrics:
    """The daemon's counters and gauges; the cycle code calls the methods."""

    def __init__(self, registry: CollectorRegistry | None = None, *, per_list: bool = True) -> None:
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
        self._reload_ok = Gauge(
            "amo_mixer_last_reload_success",
            "1 when the config and rules in force are the last ones loaded, 0 after a "
            "refused reload (the daemon runs on the old ones until a reload succeeds).",
            registry=registry,
        )
        self._reload_ok.set(1)  # a running daemon loaded its config at start
        self._interval = Gauge(
            "amo_mixer_cycle_interval_seconds",
            "The configured time between two cycles (alerts compare the last success to it).",
            registry=registry,
        )
        self._rule_firings = Counter(
            "amo_mixer_rule_firings",
            "Lists a rule fired for, summed over cycles (a rule in effect fires every cycle).",
            ["campaign", "rule"],
            registry=registry,
        )
        self._rule_errors = Counter(
            "amo_mixer_rule_errors",
            "Rule evaluations that raised for a list (the list was left as QM had it).",
            ["rule"],
            registry=registry,
        )
        self._list_gauges = {
            name: Gauge(name, doc, ["campaign", "list"], registry=registry)
            for name, doc in LIST_GAUGES
        }
        self.per_list = per_list
        self._states: dict[str, set[str]] = {}
        self._gauge_list = [self._list_gauges[name] for name, _ in LIST_GAUGES]
        # campaign -> (index in LIST_GAUGES, list) -> the gauge child set last cycle
        self._children: dict[str, dict[tuple[int, str], Any]] = {}

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
        self._reload_ok.set(1 if outcome == "ok" else 0)

    def interval(self, seconds: float) -> None:
        self._interval.set(seconds)

    def plan(self, plan: CampaignPlan, written: Collection[str] = ()) -> None:
        """Per-rule firing counters and (unless ``per_list`` is off) per-list gauges of one
        campaign's plan; ``written``: the lists whose update reached QM. (Rule errors are
        counted by ``rule_error`` as the cycle logs them.)"""
        campaign = plan.campaign
        fired: dict[str, int] = {}
        for evaluated in plan.evaluation.lists.values():
            for rule in evaluated.fired:
                fired[rule] = fired.get(rule, 0) + 1
        for rule, n in fired.items():
            self._rule_firings.labels(campaign, rule).inc(n)
        if self.per_list:
            self._list_series(plan, written)

    def _list_series(self, plan: CampaignPlan, written: Collection[str]) -> None:
        """Set each list's gauges through children kept from cycle to cycle (``labels()``
        costs a lock and a lookup per call: 3,500 calls per 500-list cycle otherwise);
        drop the series of lists gone and of values now unknown."""
        from mixer.status.model import on_track

        campaign = plan.campaign
        children = self._children.setdefault(campaign, {})
        gauges = self._gauge_list
        now: set[tuple[int, str]] = set()
        facts_of = plan.evaluation.facts
        outcomes = plan.outcomes
        for item in plan.snapshot.lists:
            name = item.name
            facts = facts_of.get(name, _NO_FACTS)
            weight, paused = item.weight, item.paused
            if name in written:
                outcome = outcomes.get(name)
                if outcome is not None:
                    weight, paused = outcome.weight, outcome.paused
            hours = facts.get("hours_to_deadline")
            eta = facts.get("eta_hours")
            track = on_track(facts)
            values = (
                weight,
                1.0 if paused else 0.0,
                _number(facts.get("base_weight")),
                _number(facts.get("unpulled")),
                hours * 3600 if isinstance(hours, int | float) else None,
                eta * 3600 if isinstance(eta, int | float) else None,
                None if track is None else float(track),
            )
            for index, value in enumerate(values):
                if value is None:
                    continue
                key = (index, name)
                child = children.get(key)
                if child is None:
                    child = children[key] = gauges[index].labels(campaign, name)
                child.set(value)
                now.add(key)
        for key in set(children) - now:
            index, name = key
            gauges[index].remove(campaign, name)
            del children[key]

    def serve(
        self,
        listen: str,
        board: StatusBoard | None = None,
        tz: ZoneInfo = UTC_ZONE,
        why: WhyViews | None = None,
    ) -> Listener:
        """Serve ``/metrics`` (and the status views of ``board``) on ``listen``
        (``host:port``) in a thread; call the result to stop."""
        host, port = parse_listen(listen)
        return serve(host, port, StatusApp(self.registry, board, tz, why))


_NO_FACTS: Mapping[str, object] = {}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def parse_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9864"``, ``"[::1]:9864"`` or ``":9864"`` (all addresses) → host, port."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise MixerError(
            f"metrics.listen {listen!r} is not host:port; write it like 127.0.0.1:9864"
        )
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)
