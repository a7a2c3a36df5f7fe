"""What ships under contrib/: the Prometheus alert rules (checked and unit-tested by
promtool), the Grafana dashboard (valid JSON, queries only name exported metrics), and
promtool's verdict on a real /metrics scrape."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry

from mixer.metrics import MixerMetrics
from tests.cycle_harness import Mixer

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "contrib" / "prometheus" / "amo-mixer.rules.yaml"
RULE_TESTS = ROOT / "contrib" / "prometheus" / "amo-mixer.rules.test.yaml"
DASHBOARD = ROOT / "contrib" / "grafana" / "amo-mixer.json"
METRIC = re.compile(r"\bamo_mixer_[a-z_]+")
ALERTS = {
    "AmoMixerDown",
    "AmoMixerNotCycling",
    "AmoMixerCyclesFailing",
    "AmoMixerDeadlineListOffTrack",
    "AmoMixerOverridesPilingUp",
    "AmoMixerReloadFailed",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is not installed, and CI must check the alert rules")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return found


def exported() -> set[str]:
    """Every series name the daemon's registry can expose (types' suffixes included)."""
    names = set()
    for family in MixerMetrics(CollectorRegistry()).registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_count", "_sum"))
        else:
            names.add(family.name)
    return names


def dashboard_queries(board: dict[str, Any]) -> list[str]:
    queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for variable in board["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            queries.append(query["query"])
    return queries


def test_dashboard_is_json_and_queries_only_exported_metrics() -> None:
    """Every panel and variable query of the dashboard names metrics the daemon exports."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = dashboard_queries(board)
    assert len(board["panels"]) >= 8
    assert all(p.get("targets") for p in board["panels"])
    used = {name for q in queries for name in METRIC.findall(q)}
    assert used <= exported(), sorted(used - exported())
    for needed in ("amo_mixer_list_weight", "amo_mixer_list_paused", "amo_mixer_list_eta_seconds"):
        assert needed in used


def test_dashboard_check_catches_an_unknown_metric() -> None:
    """The name check fails on a query naming a metric the daemon does not export."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    board["panels"][0]["targets"][0]["expr"] = "amo_mixer_list_wieght"
    used = {name for q in dashboard_queries(board) for name in METRIC.findall(q)}
    assert used - exported() == {"amo_mixer_list_wieght"}


def test_alert_rules_name_exported_metrics_with_for_and_runbook() -> None:
    """Each shipped alert waits (`for:`), carries a runbook line, and reads real metrics."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert {r["alert"] for r in rules} == ALERTS
    for rule in rules:
        assert rule["for"], rule["alert"]
        assert rule["annotations"]["runbook"], rule["alert"]
        assert set(METRIC.findall(rule["expr"])) <= exported(), rule["alert"]


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    """`promtool check rules` accepts the file and `promtool test rules` passes."""
    tool = promtool()
    check = subprocess.run(
        [tool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in check.stdout
    test = subprocess.run(
        [tool, "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULE_TESTS.parent,
    )
    assert test.returncode == 0, test.stdout + test.stderr


def test_promtool_accepts_a_real_scrape(tmp_path: Path) -> None:
    """`promtool check metrics` finds nothing to fix in /metrics after real cycles."""
    tool = promtool()
    rules = """
rules:
  - name: boost
    when: hours_to_deadline < 48 and unpulled > 0
    set: {weight: "base_weight * 2"}
"""
    lists = [
        {"name": "Recall", "weight": 5, "numbers": 10, "notes": "deadline: 2024-04-30"},
        {"name": "Plain", "weight": 5, "numbers": 10},
    ]
    rig = Mixer(tmp_path, lists=lists, rules=rules)
    metrics = MixerMetrics()
    rig.runner.metrics = metrics
    try:
        rig.cycles(3)
    finally:
        rig.close()
    stop = metrics.serve("127.0.0.1:0")
    try:
        scrape = httpx.get(f"http://127.0.0.1:{stop.port}/metrics", timeout=10).text
    finally:
        stop()
    assert 'amo_mixer_list_weight{campaign="Sales",list="Recall"} 10.0' in scrape
    result = subprocess.run(
        [tool, "check", "metrics"], input=scrape, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
