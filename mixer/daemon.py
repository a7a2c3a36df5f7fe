"""The long-running daemon: a scheduler around ``CycleRunner``, signals, reload, systemd.

Lifecycle::

    load settings ─► lock state_dir ─► serve /metrics ─► build runner ─► READY=1
        ─► cycle every interval (never two at once; WATCHDOG=1 after each, failed or not)
        ─► SIGHUP: RELOADING=1, new settings + rules + runner between cycles, READY=1
           (an invalid reload keeps the running ones and logs why, in one line)
        ─► SIGTERM/SIGINT: STOPPING=1, the cycle in flight finishes, exit 0

Signal handlers only record the request and wake a control thread; the control thread
does the work, so nothing runs inside a handler that could re-enter the scheduler. The
``_cycle_lock`` makes a cycle, a reload and the final shutdown mutually exclusive.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler

from mixer.clock import Clock, SystemClock
from mixer.clock_steps import StepDetector
from mixer.errors import MixerError
from mixer.listener import WhyViews
from mixer.lock import StateLock
from mixer.logs import get_logger
from mixer.metrics import MetricsServer, MixerMetrics
from mixer.notify import Notifier
from mixer.status.board import StatusBoard

if TYPE_CHECKING:
    from mixer.config import Settings

JOB_ID = "cycle"
STEP_CHECK_S = 5.0  # how often the control thread looks for a stepped wall clock
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Report(Protocol):
    """What the daemon reads from a ``CycleReport``."""

    cycle_id: str
    duration_s: float

    @property
    def outcomes(self) -> Mapping[str, str]: ...

    @property
    def errors(self) -> Mapping[str, str]: ...

    @property
    def changes(self) -> int: ...

    @property
    def writes(self) -> int: ...


class Runner(Protocol):
    """What the daemon needs from a ``CycleRunner``."""

    def run_cycle(self) -> Report: ...

    def log_config_loaded(self) -> None: ...

    def log_config_refused(self, config_path: Path, errors: Sequence[str]) -> None: ...

    def close(self) -> None: ...


RunnerFactory = Callable[..., Runner]
SettingsLoader = Callable[..., "Settings"]


class Daemon:
    """``amo-mixer run``: builds everything from the config file, then cycles until told."""

    def __init__(
        self,
        config_path: Path,
        *,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
        runner_factory: RunnerFactory | None = None,
        interval: float | None = None,
        transport: httpx.BaseTransport | None = None,
        max_cycles: int | None = None,
        settings_loader: SettingsLoader | None = None,
        notifier: Notifier | None = None,
        log: Any = None,
        why: WhyViews | None = None,
        wall: Callable[[], float] | None = None,
        step_check_s: float = STEP_CHECK_S,
    ) -> None:
        if runner_factory is None:
            from mixer.wiring import build_runner

            runner_factory = build_runner
        if settings_loader is None:
            from mixer.config import load_settings

            settings_loader = load_settings
        if interval is not None and interval <= 0:
            raise MixerError(f"the cycle interval must be positive, not {interval}")
        self.config_path = config_path
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.environ = environ
        self.runner_factory = runner_factory
        self.settings_loader = settings_loader
        self.interval_override = interval
        self.transport = transport
        self.max_cycles = max_cycles
        self.log = log if log is not None else get_logger()
        self.notifier = notifier if notifier is not None else Notifier(environ, log=self.log)
        self.metrics = MixerMetrics()
        self.board = StatusBoard()
        self.why = why  # the status page's per-list trace (amo-mixer run passes explain's)
        self.rules_hash: str | None = None
        self.cycles = 0
        self.reloads = 0
        self.settings: Settings | None = None
        self.metrics_server: MetricsServer | None = None
        self._runner: Runner | None = None
        self._scheduler: BlockingScheduler | None = None
        self._cycle_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop_requested = False
        self._reload_requested = False
        self._finished = False
        self._stopping_sent = False
        self._started = threading.Event()
        self._steps = StepDetector() if wall is None else StepDetector(wall=wall)
        self._step_check_s = step_check_s
        self._last_cycle_at: float | None = None  # monotonic start of the last cycle

    # -- requests: safe from signal handlers and other threads ------------------------

    def stop(self) -> None:
        """Ask for shutdown after the cycle in flight."""
        self._stop_requested = True
        self._wake.set()

    def reload(self) -> None:
        """Ask for a reload of config and rules before the next cycle."""
        self._reload_requested = True
        self._wake.set()

    def wait_started(self, timeout: float | None = None) -> bool:
        """Block until the scheduler runs (tests and embedding code)."""
        return self._started.wait(timeout)

    # -- the lifecycle ------------------------------------------------------------------

    def run(self) -> int:
        """Run until stopped; 0 on a clean stop. Startup problems raise ``MixerError``."""
        settings = self.settings_loader(self.config_path, environ=self.environ)
        self.settings = settings
        for warning in settings.warnings:
            self.log.warning("config warning", warning=warning)
        lock = StateLock(settings.state_dir).acquire()
        previous: dict[int, Any] = {}
        control: threading.Thread | None = None
        try:
            if settings.metrics is not None:
                self.metrics.per_list = getattr(settings.metrics, "per_list", True)
                self.metrics_server = self.metrics.serve(
                    settings.metrics.listen, self.board, _zone(settings), self.why
                )
            self._runner = self._build(settings)
            self._runner.log_config_loaded()
            interval = self._interval(settings)
            self.metrics.interval(interval)
            self._check_watchdog(interval)
            scheduler = self._scheduler = BlockingScheduler(
                timezone=UTC, executors={"default": ThreadPoolExecutor(max_workers=1)}
            )
            scheduler.add_job(
                self._tick,
                "interval",
                seconds=interval,
                id=JOB_ID,
                next_run_time=datetime.now(UTC),
                max_instances=1,
                coalesce=True,
                misfire_grace_time=_grace(interval),
            )
            thread = control = threading.Thread(
                target=self._control_loop, name="amo-mixer-control", daemon=True
            )
            scheduler.add_listener(lambda _event: thread.start(), EVENT_SCHEDULER_STARTED)
            previous = self._install_signal_handlers()
            self.log.info(
                "daemon started",
                config=str(self.config_path),
                state_dir=str(settings.state_dir),
                mode=settings.mode,
                interval_s=interval,
                metrics=settings.metrics.listen if settings.metrics else None,
                lock=str(lock.path),
            )
            self.notifier.ready(f"started; a cycle every {_seconds(interval)}")
            scheduler.start()  # blocks until the control thread shuts it down
        finally:
            self._finished = True
            self._wake.set()
            with self._cycle_lock:  # the cycle in flight, if any, ends first
                self._notify_stopping()
                self._restore_signal_handlers(previous)
                if self._runner is not None:
                    self._close(self._runner)
                    self._runner = None
                if self.metrics_server is not None:
                    self.metrics_server()
                lock.release()
            if control is not None and control.is_alive():
                control.join(timeout=5)
        self.log.info("daemon stopped", cycles=self.cycles, reloads=self.reloads)
        return 0

    def _control_loop(self) -> None:
        """Turn stop and reload requests into scheduler calls, outside signal handlers."""
        self._started.set()
        while not self._finished:
            if not self._wake.wait(self._step_check_s):
                self._contained("clock step check", self._follow_clock_step)
                continue
            self._wake.clear()
            if self._stop_requested or self._finished:
                break
            if self._reload_requested:
                self._reload_requested = False
                self._contained("reload", self._reload)
        runner = self._runner
        interrupt = getattr(runner, "interrupt", None)
        if callable(interrupt):  # a cycle waiting on QM reads ends now, not at its deadline
            self._contained("interrupting the cycle", interrupt)
        scheduler = self._scheduler
        if scheduler is not None and scheduler.running:
            self._contained("stop", self._notify_stopping)
            self._contained("stop", lambda: self.log.info("stopping after the cycle in flight"))
            scheduler.shutdown(wait=False)

    def _contained(self, what: str, step: Callable[[], object]) -> None:
        """Run ``step``; an unexpected exception is logged, never ends the control thread
        (which alone turns SIGTERM and SIGHUP into actions)."""
        try:
            step()
        except Exception as exc:
            self._log_error(f"{what} failed unexpectedly", error=_describe(exc), exc_info=True)

    def _log_error(self, event: str, **fields: Any) -> None:
        """Log an error; a logger that fails (an injected one, a broken stream) is ignored."""
        try:
            self.log.error(event, **fields)
        except Exception:
            pass

    def _follow_clock_step(self) -> None:
        """After a wall-clock step, plan the next cycle one interval after the start of
        the last one in real (monotonic) time: not an hour late after a step back, not
        skipped after a step forward."""
        step = self._steps.check()
        scheduler = self._scheduler
        if step is None or scheduler is None or not scheduler.running or self.settings is None:
            return
        interval = self._interval(self.settings)
        last = self._last_cycle_at
        elapsed = time.monotonic() - last if last is not None else interval
        due = datetime.now(UTC) + timedelta(seconds=max(0.0, interval - elapsed))
        self.log.warning(
            "wall clock stepped; the next cycle keeps its real-time cadence",
            step_s=round(step, 3),
            next_cycle=due.isoformat(),
        )
        scheduler.modify_job(JOB_ID, next_run_time=due)

    def _tick(self) -> None:
        """One scheduled cycle. Never raises: a failing cycle is logged and the loop goes on."""
        with self._cycle_lock:
            if self._stop_requested or self._finished or self._runner is None:
                return
            self._last_cycle_at = time.monotonic()
            status = self._cycle(self._runner)
            self.cycles += 1
            self._contained("watchdog notification", lambda: self.notifier.watchdog(status))
            if self.max_cycles is not None and self.cycles >= self.max_cycles:
                self.stop()

    def _cycle(self, runner: Runner) -> str:
        try:
            report = runner.run_cycle()
        except MixerError as exc:
            self.log.error("cycle failed", error=exc.message)
            return f"last cycle failed: {exc.message}"
        except Exception as exc:
            self._log_error("cycle failed", error=_describe(exc), exc_info=True)
            return f"last cycle failed: {_describe(exc)}"
        self._contained("publishing the cycle", lambda: self._publish(report))
        failed = sorted(report.errors)
        return (
            f"cycle {report.cycle_id}: {len(report.outcomes)} campaigns, "
            f"{report.changes} changes, {report.writes} written"
            + (f", errors in {', '.join(failed)}" if failed else "")
        )

    def _reload(self) -> None:
        """New settings, rules and runner between cycles; on any problem keep the old ones.

        Whatever goes wrong — a ``MixerError`` or anything else (an ``OSError`` from a
        decision log that is a directory) — systemd hears READY again after RELOADING.
        """
        try:
            self.notifier.reloading()
            self._swap()
        except Exception as exc:
            self.metrics.reload("error")
            self._log_error(
                "reload failed; keeping the running config and rules",
                error=_describe(exc),
                exc_info=True,
            )
            self.notifier.ready(f"reload failed, running on the old config: {_describe(exc)}")

    def _swap(self) -> None:
        self.log.info("reloading", config=str(self.config_path))
        with self._cycle_lock:
            if self._finished or self._runner is None or self.settings is None:
                return
            old = self.settings
            try:
                settings = self.settings_loader(self.config_path, environ=self.environ)
                if settings.state_dir != old.state_dir:
                    raise MixerError(
                        f"state_dir changed from {old.state_dir} to {settings.state_dir}; "
                        "restart the daemon to move it"
                    )
                runner = self._build(settings)
            except MixerError as exc:
                self._runner.log_config_refused(self.config_path, _problems(exc))
                self.metrics.reload("error")
                self.log.error(
                    "reload failed; keeping the running config and rules",
                    error=_one_line(exc),
                )
                self.notifier.ready(f"reload failed, running on the old config: {exc.message}")
                return
            self._close(self._runner)
            self._runner, self.settings = runner, settings
            runner.log_config_loaded()
            if settings.metrics is not None:
                self.metrics.per_list = getattr(settings.metrics, "per_list", True)
            self.reloads += 1
            self.metrics.reload("ok")
            for warning in settings.warnings:
                self.log.warning("config warning", warning=warning)
            if _listen(settings) != _listen(old):
                self.log.warning(
                    "metrics.listen changed; restart the daemon to apply it",
                    running=_listen(old),
                    configured=_listen(settings),
                )
            self._reschedule(settings, old)
            self.log.info("reloaded", config=str(self.config_path), mode=settings.mode)
            self.notifier.ready("reloaded")

    def _reschedule(self, settings: Settings, old: Settings) -> None:
        interval = self._interval(settings)
        self.metrics.interval(interval)
        if interval == self._interval(old) or self._scheduler is None:
            return
        self._scheduler.reschedule_job(JOB_ID, trigger="interval", seconds=interval)
        self._scheduler.modify_job(JOB_ID, misfire_grace_time=_grace(interval))
        self.log.info("interval changed", interval_s=interval)
        self._check_watchdog(interval)

    # -- pieces -------------------------------------------------------------------------

    def _notify_stopping(self) -> None:
        if not self._stopping_sent:
            self._stopping_sent = True
            self.notifier.stopping("stopping after the cycle in flight")

    def _publish(self, report: Report) -> None:
        """Hand the cycle's results to the status page; a failure here is logged, never
        allowed to fail the cycle."""
        settings = self.settings
        try:
            self.board.publish(
                report,
                mode=getattr(settings, "mode", None),
                rules_hash=self.rules_hash,
                interval_s=self._interval(settings) if settings is not None else None,
            )
        except Exception as exc:
            self.log.error(
                "status page update failed", error=f"{type(exc).__name__}: {exc}", exc_info=True
            )

    def _build(self, settings: Settings) -> Runner:
        runner = self._build_runner(settings)
        self.rules_hash = _rules_hash(runner)
        return runner

    def _build_runner(self, settings: Settings) -> Runner:
        return self.runner_factory(
            settings,
            clock=self.clock,
            transport=self.transport,
            metrics=self.metrics,
            log=self.log,
        )

    def _interval(self, settings: Settings) -> float:
        if self.interval_override is not None:
            return self.interval_override
        return settings.interval.total_seconds()

    def _check_watchdog(self, interval: float) -> None:
        watchdog = self.notifier.watchdog_interval()
        if watchdog is not None and interval >= watchdog.total_seconds():
            self.log.warning(
                "interval is not shorter than the systemd watchdog: systemd will kill the "
                "daemon between cycles; lower interval or raise WatchdogSec",
                interval_s=interval,
                watchdog_s=watchdog.total_seconds(),
            )

    def _close(self, runner: Runner) -> None:
        try:
            runner.close()
        except Exception as exc:
            self.log.error("closing the cycle runner failed", error=f"{type(exc).__name__}: {exc}")

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}  # embedded in a thread (tests): stop() and reload() drive it
        previous: dict[int, Any] = {}

        def on_stop(signum: int, _frame: FrameType | None) -> None:
            self.stop()

        def on_reload(signum: int, _frame: FrameType | None) -> None:
            self.reload()

        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, on_stop)
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_reload)
        return previous

    def _restore_signal_handlers(self, previous: Mapping[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _describe(exc: BaseException) -> str:
    """One line for an unexpected exception: its type and first line, at most 300 chars."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _problems(exc: MixerError) -> list[str]:
    """Every problem of a refused reload, one line each (a config error lists them all)."""
    problems = getattr(exc, "problems", None)
    return [str(p) for p in problems] if problems else [exc.message]


def _one_line(exc: MixerError) -> str:
    """The message and every problem's first line (a rule problem adds a caret excerpt)."""
    problems = [str(p).strip().splitlines()[0] for p in getattr(exc, "problems", None) or ()]
    return "; ".join([exc.message, *problems]).replace("\n", " ")


def _grace(interval: float) -> int:
    """A run may start up to one interval late (a suspended host); later ones coalesce."""
    return max(1, math.ceil(interval))


def _seconds(interval: float) -> str:
    return str(timedelta(seconds=interval)) if interval >= 1 else f"{interval:g}s"


def _rules_hash(runner: Runner) -> str | None:
    """The hash of the rule set the runner loaded, as its ``config`` event records it
    (None for a runner without one, as tests build)."""
    found = getattr(runner, "fingerprint", None)
    return found.rules_hash if found is not None else None


def _zone(settings: Settings) -> Any:
    """QM's time zone for the status page (UTC for settings without one)."""
    from mixer.listener import UTC_ZONE

    qm = getattr(settings, "qm", None)
    return getattr(qm, "tz", None) or UTC_ZONE


def _listen(settings: Settings) -> str | None:
    return settings.metrics.listen if settings.metrics is not None else None
