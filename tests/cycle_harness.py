"""A mixer wired to the in-process emulator with a fake clock: the cycle tests' rig.

Everything is real — config loading, the QM client over httpx's WSGI transport, the
state store, the decision log, the rule engine — except time, which the test moves.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from mixer.clock import FakeClock
from mixer.config import load_settings
from mixer.cycle import CycleReport, CycleRunner
from mixer.emulator.app import EmulatorApp, create_app
from mixer.emulator.scenario import load_scenario
from mixer.emulator.state import CallList
from mixer.wiring import build_runner

# 2024-04-29 is a Monday; 08:00 in Zurich (CEST) is 06:00 UTC.
START = datetime(2024, 4, 29, 6, 0, tzinfo=UTC)


def scenario_yaml(lists: list[dict[str, Any]], campaign: str = "Sales", **extra: Any) -> str:
    document: dict[str, Any] = {
        "start": "2024-04-29 08:00",
        "duration": "2d",
        "timezone": "Europe/Zurich",
        "seed": 1,
        "campaigns": {campaign: {"lists": lists}},
        "agents": [],
    }
    document.update(extra)
    return yaml.safe_dump(document, sort_keys=False)


class Mixer:
    """One configured mixer against one emulator."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        lists: list[dict[str, Any]],
        rules: str,
        mode: str = "apply",
        guardrails: dict[str, Any] | None = None,
        campaigns: list[str] | None = None,
        scenario: str | None = None,
        wrap: Callable[[httpx.BaseTransport], httpx.BaseTransport] | None = None,
        qm: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.tmp_path = tmp_path
        self.wrap = wrap
        self.clock = FakeClock(START)
        scenario_file = tmp_path / "scenario.yaml"
        scenario_file.write_text(scenario or scenario_yaml(lists), encoding="utf-8")
        self.app: EmulatorApp = create_app(
            load_scenario(scenario_file), clock=self.clock, dialer=False
        )
        rules_dir = tmp_path / "rules"
        rules_dir.mkdir(exist_ok=True)
        (rules_dir / "50-test.yaml").write_text(textwrap.dedent(rules), encoding="utf-8")
        config = {
            "qm": {
                "url": "http://qm.test/qm",
                "user": "robot",
                "password": "bot",
                "timezone": "Europe/Zurich",
                "timeout": "5s",
                **(qm or {}),
            },
            "campaigns": campaigns or ["Sales"],
            "rules": ["rules/*.yaml"],
            "mode": mode,
            "interval": "60s",
            "state_dir": "state",
            "guardrails": guardrails or {},
            "history": {"window": "60m", "min_history": "15m"},
            **(config or {}),
        }
        self.config_path = tmp_path / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.config_path.chmod(0o600)
        self.settings = load_settings(self.config_path, environ={})
        self.runner: CycleRunner = self._build()

    def _build(self) -> CycleRunner:
        transport: httpx.BaseTransport = httpx.WSGITransport(app=self.app)
        if self.wrap is not None:
            transport = self.wrap(transport)
        return build_runner(self.settings, clock=self.clock, transport=transport)

    def restart(self) -> None:
        """Close and rebuild the runner, as a daemon restart would."""
        self.runner.close()
        self.runner = self._build()

    def cycle(self, minutes: float = 1) -> CycleReport:
        self.clock.advance(timedelta(minutes=minutes))
        return self.runner.run_cycle()

    def cycles(self, count: int) -> list[CycleReport]:
        return [self.cycle() for _ in range(count)]

    def qm_list(self, name: str, campaign: str = "Sales") -> CallList:
        found = self.app.state.find_list(campaign, name)
        assert found is not None, name
        return found

    def exhaust(self, name: str, complete: bool = True) -> None:
        """Pull (and by default complete) every number of a list, as agents would."""
        call_list = self.qm_list(name)
        now = self.clock.now().timestamp()
        while call_list.can_reserve(now):
            number = call_list.reserve(now)
            if complete:
                call_list.finalize(number)

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        path = self.settings.decision_log
        if not path.exists():
            return []
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        return [r for r in rows if event is None or r["event"] == event]

    @property
    def update_calls(self) -> int:
        return self.app.stats.update_calls

    def close(self) -> None:
        self.runner.close()
