"""The daemon loop in-process: a fake runner, tiny real intervals, a real notify socket."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from mixer.clock import FakeClock
from mixer.daemon import Daemon
from mixer.errors import ConfigError, LockError, MixerError
from mixer.lock import StateLock
from mixer.notify import Notifier

START = datetime(2024, 4, 29, 8, 0, tzinfo=UTC)
WAIT = 10.0  # seconds: a ceiling for waits on events, never a sleep


@dataclass
class FakeMetricsSettings:
    listen: str


@dataclass
class FakeSettings:
    """The fields of Settings the daemon reads."""

    state_dir: Path
    interval: timedelta = timedelta(seconds=60)
    mode: str = "dry-run"
    metrics: FakeMetricsSettings | None = None
    warnings: list[str] = field(default_factory=list)
    rules_ok: bool = True
    label: str = "first"


def load_fake_settings(path: Path, *, environ: Mapping[str, str] | None = None) -> FakeSettings:
    """A JSON stand-in for load_settings: `invalid` in the file is a ConfigError."""
    data = json.loads(path.read_text())
    if data.get("invalid"):
        raise ConfigError(f"invalid configuration in {path}", ["interval: not a duration"])
    metrics = data.pop("metrics", None)
    return FakeSettings(
        state_dir=Path(data.pop("state_dir")),
        metrics=FakeMetricsSettings(metrics) if metrics else None,
        interval=timedelta(seconds=data.pop("interval", 60)),
        **data,
    )


@dataclass
class FakeReport:
    cycle_id: str
    now: datetime
    outcomes: dict[str, str]
    errors: dict[str, str]
    changes: int = 0
    writes: int = 0
    duration_s: float = 0.0


class FakeRunner:
    """Counts cycles; fails the cycles listed in ``fail``; can hold a cycle open."""

    def __init__(self, settings: FakeSettings, clock: Any, fail: set[int], hold: bool) -> None:
        self.settings = settings
        self.clock = clock
        self.fail = fail
        self.cycles = 0
        self.completed = 0
        self.closed = False
        self.configs: list[str] = []
        self.in_cycle = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def run_cycle(self) -> FakeReport:
        self.cycles += 1
        self.in_cycle.set()
        assert self.release.wait(WAIT)
        if self.cycles in self.fail:
            raise RuntimeError(f"cycle {self.cycles} broke")
        self.completed += 1
        return FakeReport(f"c{self.cycles}", self.clock.now(), {"Sales": "ok"}, {})

    def close(self) -> None:
        self.closed = True

    def log_config_loaded(self) -> None:
        self.configs.append("loaded")

    def log_config_refused(self, _config_path: Any, errors: Any) -> None:
        self.configs.append("refused")


class Factory:
    """Builds FakeRunners the way build_runner would; bad rules raise a MixerError."""

    def __init__(self, fail: set[int] | None = None, hold: bool = False) -> None:
        self.fail = fail or set()
        self.hold = hold
        self.runners: list[FakeRunner] = []
        self.built = threading.Condition()

    def __call__(self, settings: FakeSettings, **kwargs: Any) -> FakeRunner:
        assert set(kwargs) == {"clock", "transport", "metrics", "log"}
        if not settings.rules_ok:
            raise MixerError("rules/sales.yaml:3: rule 'boost': unknown name 'unpuled'")
        runner = FakeRunner(settings, kwargs["clock"], self.fail, self.hold)
        with self.built:
            self.runners.append(runner)
            self.built.notify_all()
        return runner


class NotifyListener:
    """The systemd side of NOTIFY_SOCKET: a bound datagram socket in tmp_path."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(WAIT)

    def next(self) -> list[str]:
        return self.sock.recv(4096).decode().split("\n")

    def until(self, key: str) -> list[list[str]]:
        """Every message up to and including the first one holding ``key``."""
        seen = []
        while True:
            message = self.next()
            seen.append(message)
            if key in message:
                return seen


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[NotifyListener]:
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.sock.close()


def write_config(path: Path, **fields: Any) -> Path:
    fields.setdefault("state_dir", str(path.parent / "state"))
    path.write_text(json.dumps(fields))
    return path


def make_daemon(config: Path, factory: Factory, **kwargs: Any) -> Daemon:
    kwargs.setdefault("interval", 0.01)
    kwargs.setdefault("clock", FakeClock(START))
    return Daemon(
        config,
        runner_factory=factory,
        settings_loader=load_fake_settings,
        **kwargs,
    )


class InThread:
    """Runs a daemon in a thread; ``result`` is its exit code or exception."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.result: int | BaseException | None = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self.daemon.run()
        except BaseException as exc:
            self.result = exc

    def join(self) -> int | BaseException | None:
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the daemon did not stop"
        return self.result


def test_max_cycles_then_clean_exit(tmp_path: Path, listener: NotifyListener) -> None:
    """The loop runs max_cycles cycles, notifies READY, a WATCHDOG per cycle, STOPPING, exits 0."""
    config = write_config(tmp_path / "config.json")
    factory = Factory()
    daemon = make_daemon(config, factory, max_cycles=3, environ={"NOTIFY_SOCKET": listener.path})
    assert daemon.run() == 0
    runner = factory.runners[0]
    assert runner.completed == 3
    assert runner.closed
    messages = listener.until("STOPPING=1")
    keys = [m[0] for m in messages]
    assert keys == ["READY=1", "WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1", "STOPPING=1"]
    assert "STATUS=cycle c3: 1 campaigns, 0 changes, 0 written" in messages[3]


def test_failing_cycle_does_not_kill_the_loop(tmp_path: Path, listener: NotifyListener) -> None:
    """A cycle that raises is logged, the watchdog is still fed, and the next cycle runs."""
    config = write_config(tmp_path / "config.json")
    factory = Factory(fail={2})
    daemon = make_daemon(config, factory, max_cycles=3, environ={"NOTIFY_SOCKET": listener.path})
    with capture_logs() as logs:
        assert daemon.run() == 0
    assert factory.runners[0].cycles == 3
    assert factory.runners[0].completed == 2
    watchdogs = [m for m in listener.until("STOPPING=1") if m[0] == "WATCHDOG=1"]
    assert len(watchdogs) == 3
    assert watchdogs[1][1] == "STATUS=last cycle failed: RuntimeError: cycle 2 broke"
    failures = [e for e in logs if e["event"] == "cycle failed"]
    assert [f["error"] for f in failures] == ["RuntimeError: cycle 2 broke"]


def test_stop_lets_the_cycle_in_flight_finish(tmp_path: Path) -> None:
    """stop() during a cycle waits for it; the runner closes only after the cycle ended."""
    config = write_config(tmp_path / "config.json")
    factory = Factory(hold=True)
    run = InThread(make_daemon(config, factory))
    with factory.built:
        assert factory.built.wait_for(lambda: factory.runners, WAIT)
    runner = factory.runners[0]
    assert runner.in_cycle.wait(WAIT)
    run.daemon.stop()
    run.thread.join(0.2)
    assert run.thread.is_alive(), "stopped before the cycle in flight ended"
    assert not runner.closed
    runner.release.set()
    assert run.join() == 0
    assert runner.completed == 1
    assert runner.closed


def test_reload_good_then_bad_config(tmp_path: Path, listener: NotifyListener) -> None:
    """A good reload swaps the runner; a bad one keeps it and logs the reason in one line."""
    config = write_config(tmp_path / "config.json")
    factory = Factory()
    daemon = make_daemon(config, factory, environ={"NOTIFY_SOCKET": listener.path}, interval=5)
    with capture_logs() as logs:
        run = InThread(daemon)
        listener.until("WATCHDOG=1")

        write_config(config, label="second", mode="apply")
        daemon.reload()
        reload_messages = listener.until("READY=1")
        assert reload_messages[0][0] == "RELOADING=1"
        assert reload_messages[0][1].startswith("MONOTONIC_USEC=")
        assert reload_messages[-1] == ["READY=1", "STATUS=reloaded"]
        assert len(factory.runners) == 2
        assert factory.runners[0].closed
        assert daemon.settings is not None
        assert daemon.settings.mode == "apply"

        write_config(config, label="third", rules_ok=False)
        daemon.reload()
        failed = listener.until("READY=1")[-1]
        assert failed[1].startswith("STATUS=reload failed, running on the old config: rules/")

        config.write_text(json.dumps({"invalid": True}))
        daemon.reload()
        listener.until("READY=1")
        daemon.stop()
        assert run.join() == 0
    assert len(factory.runners) == 2
    assert not factory.runners[0].cycles > 1  # the first runner ran only before the reload
    assert factory.runners[1].closed
    assert daemon.settings.label == "second"  # type: ignore[attr-defined]
    failed = "reload failed; keeping the running config and rules"
    errors = [e for e in logs if e["event"] == failed]
    assert [e["error"] for e in errors] == [
        "rules/sales.yaml:3: rule 'boost': unknown name 'unpuled'",
        f"invalid configuration in {config}; interval: not a duration",
    ]
    assert (
        daemon.metrics.registry.get_sample_value("amo_mixer_reloads_total", {"outcome": "error"})
        == 2
    )


def test_reload_refuses_a_new_state_dir(tmp_path: Path, listener: NotifyListener) -> None:
    """Moving state_dir needs a restart: the reload is refused, the old runner kept."""
    config = write_config(tmp_path / "config.json")
    factory = Factory()
    daemon = make_daemon(config, factory, environ={"NOTIFY_SOCKET": listener.path}, interval=5)
    with capture_logs() as logs:
        run = InThread(daemon)
        listener.until("WATCHDOG=1")
        write_config(config, state_dir=str(tmp_path / "elsewhere"))
        daemon.reload()
        listener.until("READY=1")
        daemon.stop()
        assert run.join() == 0
    assert len(factory.runners) == 1
    assert any("restart the daemon to move it" in e.get("error", "") for e in logs)


def test_sigterm_and_sighup_in_the_main_thread(tmp_path: Path, listener: NotifyListener) -> None:
    """Real signals: SIGHUP reloads, SIGTERM stops with exit 0, handlers are restored after."""
    config = write_config(tmp_path / "config.json")
    factory = Factory()
    daemon = make_daemon(config, factory, environ={"NOTIFY_SOCKET": listener.path}, interval=5)
    before = signal.getsignal(signal.SIGTERM)
    seen: list[list[list[str]]] = []

    def drive() -> None:
        seen.append(listener.until("WATCHDOG=1"))
        write_config(config, label="reloaded")
        os.kill(os.getpid(), signal.SIGHUP)
        seen.append(listener.until("READY=1"))
        os.kill(os.getpid(), signal.SIGTERM)

    driver = threading.Thread(target=drive)
    driver.start()
    assert daemon.run() == 0
    driver.join(WAIT)
    assert seen[1][0][0] == "RELOADING=1"
    assert daemon.settings is not None
    assert daemon.settings.label == "reloaded"  # type: ignore[attr-defined]
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigint_stops_like_sigterm(tmp_path: Path, listener: NotifyListener) -> None:
    """SIGINT finishes the cycle and exits 0 instead of raising KeyboardInterrupt."""
    config = write_config(tmp_path / "config.json")
    factory = Factory()
    daemon = make_daemon(config, factory, environ={"NOTIFY_SOCKET": listener.path}, interval=5)

    def drive() -> None:
        listener.until("WATCHDOG=1")
        os.kill(os.getpid(), signal.SIGINT)

    driver = threading.Thread(target=drive)
    driver.start()
    assert daemon.run() == 0
    driver.join(WAIT)
    assert factory.runners[0].closed


def test_second_daemon_on_the_same_state_dir(tmp_path: Path) -> None:
    """A second daemon fails with a LockError naming the lock file; it builds nothing."""
    config = write_config(tmp_path / "config.json")
    factory = Factory()
    with (
        StateLock(tmp_path / "state"),
        pytest.raises(LockError, match=r"state/amo-mixer\.lock"),
    ):
        make_daemon(config, factory).run()
    assert factory.runners == []


def test_lock_released_when_startup_fails(tmp_path: Path) -> None:
    """Bad rules at start raise the rule error and leave the state_dir unlocked."""
    config = write_config(tmp_path / "config.json", rules_ok=False)
    with pytest.raises(MixerError, match="unknown name"):
        make_daemon(config, Factory()).run()
    with StateLock(tmp_path / "state") as lock:
        assert lock.held


def test_invalid_config_at_start_is_a_config_error(tmp_path: Path) -> None:
    """An invalid config stops the start with exit code 2, before any lock is taken."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"invalid": True}))
    with pytest.raises(ConfigError) as caught:
        make_daemon(config, Factory()).run()
    assert caught.value.exit_code == 2
    assert not (tmp_path / "state").exists()


def test_warnings_logged_and_metrics_served(tmp_path: Path) -> None:
    """Settings warnings are logged at start, and /metrics is served while running."""
    import httpx

    config = write_config(
        tmp_path / "config.json", warnings=["mode is apply"], metrics="127.0.0.1:0"
    )
    factory = Factory()
    daemon = make_daemon(config, factory, interval=5)
    with capture_logs() as logs:
        run = InThread(daemon)
        assert daemon.wait_started(WAIT)
        assert daemon.metrics_server is not None
        reply = httpx.get(f"http://127.0.0.1:{daemon.metrics_server.port}/metrics", timeout=5)
        daemon.stop()
        assert run.join() == 0
    assert reply.status_code == 200
    assert "amo_mixer_cycles_total" in reply.text
    assert {"event": "config warning", "warning": "mode is apply", "log_level": "warning"} in logs


def test_interval_comes_from_settings_and_watchdog_is_checked(tmp_path: Path) -> None:
    """Without an override the interval is settings.interval; one >= WatchdogSec is warned."""
    config = write_config(tmp_path / "config.json", interval=600)
    environ = {"WATCHDOG_USEC": "300000000"}
    daemon = make_daemon(config, Factory(), interval=None, max_cycles=1, environ=environ)
    with capture_logs() as logs:
        assert daemon.run() == 0
    started = next(e for e in logs if e["event"] == "daemon started")
    assert started["interval_s"] == 600
    assert any("watchdog" in e["event"] for e in logs)


def test_notifier_without_socket_is_silent(tmp_path: Path) -> None:
    """Outside systemd the daemon runs the same with notify as a no-op."""
    config = write_config(tmp_path / "config.json")
    daemon = make_daemon(config, Factory(), max_cycles=2, notifier=Notifier({}))
    assert daemon.run() == 0
    assert daemon.cycles == 2


def test_interval_must_be_positive(tmp_path: Path) -> None:
    """A zero or negative interval override is refused up front."""
    with pytest.raises(MixerError, match="must be positive"):
        make_daemon(tmp_path / "config.json", Factory(), interval=0)


class SteppableWall:
    """time.time() plus an offset the test moves: a wall clock stepped by NTP."""

    def __init__(self) -> None:
        import time

        self.offset = 0.0
        self._time = time.time

    def __call__(self) -> float:
        return self._time() + self.offset


def test_a_wall_clock_step_back_keeps_the_cycle_cadence(
    tmp_path: Path, listener: NotifyListener
) -> None:
    """After the wall clock steps back an hour (the scheduler's next run now an hour
    away), the step is logged and the next cycle comes one interval after the last."""
    from mixer.daemon import JOB_ID

    config = write_config(tmp_path / "config.json")
    wall = SteppableWall()
    daemon = make_daemon(
        config,
        Factory(),
        environ={"NOTIFY_SOCKET": listener.path},
        interval=1.0,
        wall=wall,
        step_check_s=0.05,
    )
    with capture_logs() as logs:
        run = InThread(daemon)
        listener.until("WATCHDOG=1")
        scheduler = daemon._scheduler
        assert scheduler is not None
        job = scheduler.get_job(JOB_ID)
        # what APScheduler's wall-time plan looks like right after a step back of 1 h
        scheduler.modify_job(JOB_ID, next_run_time=job.next_run_time + timedelta(hours=1))
        wall.offset = -3600.0
        listener.until("WATCHDOG=1")
        daemon.stop()
        assert run.join() == 0
    steps = [e for e in logs if e["event"].startswith("wall clock stepped")]
    assert len(steps) == 1
    assert steps[0]["step_s"] == pytest.approx(-3600, abs=1)
    assert daemon.cycles >= 2
