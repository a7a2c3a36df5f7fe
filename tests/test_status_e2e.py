"""The installed ``amo-mixer run`` serves the status page, its JSON and the why view on
its metrics port, against the emulator over loopback HTTP."""

from __future__ import annotations

import signal

import httpx
import pytest

from tests.test_daemon_e2e import Setup, finish, qm_url, setup

pytestmark = pytest.mark.e2e
__all__ = ["qm_url", "setup"]  # the fixtures this module shares with test_daemon_e2e


def test_run_serves_page_json_and_why(setup: Setup) -> None:
    """After a cycle, /, /status.json and /why answer from the daemon's last cycle, and
    the rule-set hash shown is the one its config event recorded."""
    process = setup.start()
    try:
        setup.messages_until("WATCHDOG=1")
        base = f"http://127.0.0.1:{setup.metrics_port}"
        page = httpx.get(base + "/", timeout=10)
        data = httpx.get(base + "/status.json", timeout=10).json()
        name = data["campaigns"][0]["lists"][0]["name"]
        why = httpx.get(base + "/why", params={"campaign": "Sales", "list": name}, timeout=10)
    finally:
        process.send_signal(signal.SIGTERM)
    code, _, err = finish(process)
    assert code == 0, err
    assert page.status_code == 200
    assert 'svg class="chart"' in page.text
    assert data["campaigns"][0]["outcome"] == "ok"
    assert data["mode"] == "dry-run"
    log = (setup.config.parent / "state" / "decisions.jsonl").read_text()
    assert data["rules_hash"] in log
    assert why.status_code == 200
    assert "pause-exhausted" in why.text
