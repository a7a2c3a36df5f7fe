"""The embedded demo: the emulator on a loopback port, the real daemon in accelerated time.

Nothing is mocked: the daemon loop (APScheduler), the config loading, the QM client over
HTTP and the decision log are the production code. A ``ScaledClock`` shared by the
emulator and the daemon makes a simulated day pass in seconds; the daemon's interval is
one simulated minute in real seconds.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from mixer.clock import ScaledClock
from mixer.daemon import Daemon
from mixer.emulator.app import create_app
from mixer.emulator.scenario import Scenario
from mixer.emulator.server import serve
from mixer.logs import SilentLog
from mixer.printable import printable
from mixer.shipped import shipped_rule_files
from mixer.simulate.backtest import BacktestResult, backtest
from mixer.simulate.live import DecisionPrinter
from mixer.simulate.workdir import DECISION_LOG, STATE_DIR, scratch_dir, write_config
from mixer.wiring import build_runner

REPORT_NAME = "report.html"
BACKTEST_NAME = "backtest.json"


@dataclass(frozen=True)
class DemoResult:
    """Where the demo left its files and what it saw."""

    folder: Path
    config: Path
    decision_log: Path
    report: Path | None
    report_error: str | None
    backtest: BacktestResult
    exit_code: int
    decisions: int
    cycles: int
    daemon_seconds: float
    wall_seconds: float


def run_demo(
    scenario: Scenario,
    *,
    speed: float,
    hours: float,
    output: Path,
    stream: TextIO,
    color: bool | None = None,
) -> DemoResult:
    """Run the daemon against the emulator for ``hours`` simulated hours, then backtest."""
    started = time.monotonic()
    span = min(timedelta(hours=hours), scenario.duration)
    rule_files = shipped_rule_files()
    output.mkdir(parents=True, exist_ok=True)
    clock = ScaledClock(scenario.start, speed)
    app = create_app(scenario, clock=clock)
    printer = DecisionPrinter(scenario.tz, stream, color=color)
    interval = 60.0 / speed  # one simulated minute, in real seconds
    cycles = max(int(span / timedelta(minutes=1)), 1)
    with serve(app) as url:
        config = write_config(
            output, url=url, scenario=scenario, rule_files=rule_files, interval="60s"
        )
        factory = functools.partial(_quiet_runner, build_runner, printer)
        daemon = Daemon(
            config,
            clock=clock,
            environ={},
            runner_factory=factory,
            interval=interval,
            max_cycles=cycles,
            log=ProblemLog(stream),
        )
        stopper = _stop_at(daemon, clock, scenario.start + span)
        scheduler_log = logging.getLogger("apscheduler")
        level = scheduler_log.level
        # At 2880x a slow cycle makes the scheduler skip runs, which it reports each time;
        # in the demo that is expected (simulated time moves on), not worth a line.
        scheduler_log.setLevel(logging.ERROR)
        try:
            exit_code = daemon.run()
        finally:
            stopper.set()
            scheduler_log.setLevel(level)
    daemon_seconds = time.monotonic() - started
    with scratch_dir("amo-mixer-demo-") as scratch:
        comparison = backtest(scenario, rule_files, workdir=scratch, duration=span)
    (output / BACKTEST_NAME).write_text(comparison.to_json() + "\n", encoding="utf-8")
    decision_log = output / STATE_DIR / DECISION_LOG
    report, report_error = _write_report(decision_log, output / REPORT_NAME, scenario)
    return DemoResult(
        folder=output,
        config=config,
        decision_log=decision_log,
        report=report,
        report_error=report_error,
        backtest=comparison,
        exit_code=exit_code,
        decisions=printer.decisions,
        cycles=daemon.cycles,
        daemon_seconds=daemon_seconds,
        wall_seconds=time.monotonic() - started,
    )


class ProblemLog(SilentLog):
    """The daemon's logger in the demo: warnings and errors as one line, the rest dropped."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def warning(self, event: str, **fields: Any) -> None:
        self._line("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._line("error", event, fields)

    def _line(self, level: str, event: str, fields: dict[str, Any]) -> None:
        fields.pop("exc_info", None)
        detail = " ".join(f"{k}={v}" for k, v in fields.items())
        self.stream.write(printable(f"daemon {level}: {event} {detail}".rstrip()) + "\n")
        self.stream.flush()


def _quiet_runner(
    build_runner: Callable[..., Any], printer: DecisionPrinter, *args: Any, **kwargs: Any
) -> Any:
    """``build_runner`` with live decision lines instead of a log line per cycle."""
    kwargs["on_result"] = printer
    kwargs["log"] = SilentLog()
    return build_runner(*args, **kwargs)


def _stop_at(daemon: Daemon, clock: ScaledClock, end: datetime) -> threading.Event:
    """Ask the daemon to stop once simulated time passes ``end``, if cycles fall behind."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            if clock.now() >= end + timedelta(minutes=1):
                daemon.stop()
                return

    threading.Thread(target=watch, name="demo-stop", daemon=True).start()
    return done


def _write_report(
    decision_log: Path, path: Path, scenario: Scenario
) -> tuple[Path | None, str | None]:
    try:
        from mixer.decisions import read_records
        from mixer.report import build_report, write_report
    except ImportError:
        return None, "the report module is not available"
    from mixer.errors import MixerError

    try:
        text = build_report(
            read_records(decision_log),
            title=f"amo-mixer demo: {scenario.name or 'scenario'}",
            generated_at=datetime.now(UTC),
        )
        write_report(path, text)
    except MixerError as exc:
        return None, exc.message
    return path, None
