"""Fail closed in the cycle: a rule that raises leaves its list alone; repeated
guardrail refusals are logged when they begin and when they end, not every cycle."""

from __future__ import annotations

from mixer.metrics import MixerMetrics
from tests.cycle_harness import Mixer

# 100 / (base_weight - 10) raises for a list whose baseline is 10 (division by zero) and works
# for the others; `boost-all` would boost every list.
RAISING = """
rules:
  - name: boost-all
    when: unpulled > 0
    set: {weight: "base_weight * 3"}
  - name: fragile
    when: unpulled > 0
    set: {weight: "100 / (base_weight - 10)"}
"""

LISTS = [
    {"name": "Ten", "numbers": 50, "weight": 10},
    {"name": "Twenty", "numbers": 50, "weight": 20},
]


def test_a_rule_that_raises_leaves_its_list_as_qm_has_it(make: type[Mixer]) -> None:
    """The failing list is not written (no baseline reset); the other list is."""
    mixer = make(lists=LISTS, rules=RAISING)
    report = mixer.cycle()
    assert report.exit_code == 1
    (result,) = report.results.values()
    assert [(e.list, e.rule) for e in result.rule_errors] == [("Ten", "fragile")]
    assert [d["list"] for d in mixer.records("decision")] == ["Twenty"]
    assert mixer.qm_list("Ten").weight == 10
    assert mixer.qm_list("Twenty").weight == 10  # 100 / (20 - 10), written
    (error,) = mixer.records("error")
    assert (error["kind"], error["rule"], error["list"]) == ("rule", "fragile", "Ten")
    assert "division by zero" in error["error"] or "zero" in error["error"]


def test_a_rule_error_is_logged_when_it_begins_not_every_cycle(make: type[Mixer]) -> None:
    """Three failing cycles give one error event; the metric counts all three."""
    mixer = make(lists=LISTS, rules=RAISING)
    metrics = MixerMetrics()
    mixer.runner.metrics = metrics
    mixer.cycles(3)
    assert len(mixer.records("error")) == 1
    value = metrics.registry.get_sample_value("amo_mixer_rule_errors_total", {"rule": "fragile"})
    assert value == 3


def test_a_failing_list_keeps_its_rule_timers(make: type[Mixer]) -> None:
    """A `for:` timer of a list whose rules raise does not start while they raise."""
    rules = """
    rules:
      - name: slow
        when: unpulled > 0
        for: 2m
        set: {paused: true}
      - name: fragile
        when: unpulled > 0
        set: {weight: "100 / (base_weight - 10)"}
    """
    mixer = make(lists=[*LISTS, {"name": "Other", "numbers": 5, "weight": 30}], rules=rules)
    mixer.cycles(4)
    memory = mixer.runner.store.load_memory("Sales")
    assert "slow" not in memory["Ten"].rules or memory["Ten"].rules["slow"].holding_since is None
    assert memory["Twenty"].rules["slow"].holding_since is not None


def test_a_repeated_guardrail_stop_is_logged_as_edges(make: type[Mixer]) -> None:
    """A stop that repeats for 5 cycles is one begin record (with its refused decisions)
    and one end record carrying the count, whatever the number of cycles."""
    pause_all = """
    rules:
      - name: pause-everything
        when: weight < 50
        set: {paused: true}
    """
    mixer = make(lists=LISTS, rules=pause_all)
    reports = mixer.cycles(5)
    assert all(r.outcomes == {"Sales": "guardrail"} for r in reports)
    assert len(mixer.records("guardrail")) == 1
    assert len(mixer.records("decision")) == 2
    assert len(mixer.records("cycle")) == 5
    # A human raises both weights above 50: the rule stops asking, the stop ends.
    mixer.qm_list("Ten").weight = 60
    mixer.qm_list("Twenty").weight = 60
    mixer.cycle()
    begin, end = mixer.records("guardrail")
    assert "ended" not in begin
    assert (end["ended"], end["cycles"]) == (True, 5)
    assert end["guardrail"] == begin["guardrail"]


def test_a_different_stop_is_logged_again(make: type[Mixer]) -> None:
    """When the refused plan changes, the old stop ends and the new one begins."""
    pause_all = """
    rules:
      - name: pause-everything
        when: weight < 50
        set: {paused: true}
    """
    mixer = make(lists=LISTS, rules=pause_all)
    mixer.cycles(2)
    mixer.exhaust("Twenty", complete=False)  # one reservable list left: another stop
    mixer.cycles(2)
    records = mixer.records("guardrail")
    assert [bool(r.get("ended")) for r in records] == [False, True, False]


def test_the_daemon_log_warns_when_a_rule_error_begins_and_when_it_clears(
    make: type[Mixer],
) -> None:
    """One warning when (rule, list) starts failing, one when it stops, with the count."""
    from structlog.testing import capture_logs

    mixer = make(lists=LISTS, rules=RAISING)
    with capture_logs() as logs:
        mixer.cycles(3)
        mixer.qm_list("Ten").weight = 15  # a human's baseline: the ratio works again
        mixer.cycle()
    warnings = [(e["event"], e.get("list")) for e in logs if e["log_level"] == "warning"]
    assert warnings == [("rule error", "Ten"), ("rule error cleared", "Ten")]
    (cleared,) = [e for e in logs if e["event"] == "rule error cleared"]
    assert cleared["cycles"] == 3
