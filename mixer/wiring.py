"""From settings to working parts: the QM client, the pure core's settings, a runner.

The one place that turns the configuration into objects, so ``once``, ``run``,
``explain``, the simulator and the tests build them alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from mixer.audit import fingerprint
from mixer.clock import Clock
from mixer.config import Settings
from mixer.cycle import CampaignResult, CycleRunner
from mixer.decisions import DecisionLog, PreviewLog, read_records
from mixer.engine.facts import EngineSettings
from mixer.engine.rules import RuleSet
from mixer.errors import ConfigError
from mixer.guardrails import Limits
from mixer.logs import get_logger
from mixer.preflight import check_setup
from mixer.qm import QMClient
from mixer.store import StateStore, refuse_lost_state

if TYPE_CHECKING:  # the metrics module (prometheus_client) loads only where it serves
    from mixer.metrics import MixerMetrics
    from mixer.records import Mode

STATE_FILE = "state.sqlite3"


def state_path(settings: Settings) -> Path:
    """The state store's file in ``state_dir``."""
    return settings.state_dir / STATE_FILE


def limits_from(settings: Settings) -> Limits:
    g = settings.guardrails
    return Limits(
        min_weight=g.min_weight,
        max_weight=g.max_weight,
        manual_hold=g.manual_hold,
        max_step=g.max_step,
        max_step_percent=g.max_step_percent,
        max_changes_per_day=g.max_changes_per_day,
    )


def engine_settings_from(settings: Settings) -> EngineSettings:
    return EngineSettings(
        timezone=settings.qm.tz,
        history_window=settings.history.window,
        min_history=settings.history.min_history,
    )


def client_from(settings: Settings, *, transport: httpx.BaseTransport | None = None) -> QMClient:
    """The QM client the settings describe; refuses to start without a password."""
    password = settings.qm.password
    if password is None:
        raise ConfigError(
            "no QM password: set AMO_MIXER_QM_PASSWORD, qm.password_file, or the systemd "
            "credential qm_password"
        )
    return QMClient(
        settings.qm.url,
        settings.qm.user,
        password.get_secret_value(),
        timezone=settings.qm.tz,
        timeout=settings.qm.timeout.total_seconds(),
        verify_tls=settings.qm.verify_tls,
        transport=transport,
        max_reply_bytes=settings.qm.max_reply_bytes,
    )


def build_runner(
    settings: Settings,
    *,
    clock: Clock,
    transport: httpx.BaseTransport | None = None,
    metrics: MixerMetrics | None = None,
    log: Any = None,
    mode: Mode | None = None,
    rules: RuleSet | None = None,
    on_result: Callable[[CampaignResult], None] | None = None,
    preview: bool = False,
) -> CycleRunner:
    """Open the client, the state store and the decision log; load the rules.

    ``preview``: plan from the state as it is on disk (a running daemon's, or none) and
    write nothing there — no memory, no history, no decision-log record.
    """
    if rules is None:
        checked = check_setup(settings)
        rules = checked.rules
        for warning in rules.warnings:  # the settings' own are the caller's to show
            (log or get_logger()).warning("rules warning", warning=warning)
    if not preview:  # a preview writes nothing: it cannot compound, and says baselines
        refuse_lost_state(  # come from QM when there is no state
            state_path(settings), settings.decision_log, lambda: wrote(settings.decision_log)
        )
    return CycleRunner(
        settings,
        client=client_from(settings, transport=transport),
        store=StateStore(state_path(settings), preview=preview),
        decision_log=(PreviewLog if preview else DecisionLog)(settings.decision_log),
        clock=clock,
        rules=rules,
        limits=limits_from(settings),
        engine_settings=engine_settings_from(settings),
        metrics=metrics,
        log=log,
        mode=mode,
        on_result=on_result,
        fingerprint=fingerprint(settings.config_path, [Path(f.path) for f in rules.files]),
    )


def wrote(decision_log: Path) -> bool:
    """The decision log (with its rotated files) records a write the mixer applied."""
    return any(r.get("applied") is True for r in read_records(decision_log, event="decision"))
