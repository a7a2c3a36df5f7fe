"""The daemon with the real settings loader and rule loader: start, reload, bad reloads."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from mixer.clock import FakeClock
from mixer.daemon import Daemon
from mixer.errors import ConfigError
from mixer.rule_loading import load_rules

WAIT = 10.0
GOOD_RULES = """\
rules:
  - name: pause-exhausted
    when: not can_reserve and unpulled == 0
    set: {paused: true}
"""
BAD_RULES = """\
rules:
  - name: boost
    when: unpuled > 0
    set: {weight: "base_weight * 2"}
"""


class Report:
    def __init__(self, n: int) -> None:
        self.cycle_id = f"c{n}"
        self.outcomes = {"Sales": "ok"}
        self.errors: dict[str, str] = {}
        self.changes = 0
        self.writes = 0
        self.duration_s = 0.0


class RulesRunner:
    """A runner built like build_runner builds one (rules loaded for real), minus QM."""

    def __init__(self, settings: Any, **_: Any) -> None:
        self.settings = settings
        self.rules = load_rules(settings.rule_files())
        self.cycles = 0
        self.closed = False
        self.configs: list[str] = []

    def run_cycle(self) -> Report:
        self.cycles += 1
        return Report(self.cycles)

    def close(self) -> None:
        self.closed = True

    def log_config_loaded(self) -> None:
        self.configs.append("loaded")

    def log_config_refused(self, _config_path: Any, errors: Any) -> None:
        self.configs.append("refused")


def write_config(tmp_path: Path, **overrides: Any) -> Path:
    config: dict[str, Any] = {
        "qm": {
            "url": "http://127.0.0.1:9/qm",
            "user": "robot",
            "password": "bot",
            "timezone": "Europe/Zurich",
        },
        "campaigns": ["Sales"],
        "rules": ["rules/*.yaml"],
        "mode": "dry-run",
        "interval": "60s",
        "state_dir": "state",
    }
    config.update(overrides)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "10-sales.yaml").write_text(GOOD_RULES)
    return rules


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(WAIT)
    yield sock, path
    sock.close()


def until(sock: socket.socket, key: str) -> list[str]:
    while True:
        message = sock.recv(4096).decode().split("\n")
        if key in message:
            return message


def test_reload_with_broken_rules_keeps_the_running_rules(
    tmp_path: Path, rules_dir: Path, notify: tuple[socket.socket, str]
) -> None:
    """Broken rules at reload: the old runner stays, the log line names file, line and rule."""
    sock, path = notify
    config = write_config(tmp_path)
    runners: list[RulesRunner] = []

    def factory(settings: Any, **kwargs: Any) -> RulesRunner:
        runners.append(RulesRunner(settings, **kwargs))
        return runners[-1]

    daemon = Daemon(
        config,
        clock=FakeClock(datetime(2024, 4, 29, 6, 0, tzinfo=UTC)),
        environ={"NOTIFY_SOCKET": path},
        runner_factory=factory,
        interval=5,
    )
    with capture_logs() as logs:
        thread = threading.Thread(target=daemon.run)
        thread.start()
        until(sock, "WATCHDOG=1")
        (rules_dir / "20-broken.yaml").write_text(BAD_RULES)
        daemon.reload()
        until(sock, "READY=1")
        (rules_dir / "20-broken.yaml").unlink()
        write_config(tmp_path, mode="apply", intervall="5s")
        daemon.reload()
        until(sock, "READY=1")
        write_config(tmp_path, mode="apply")
        daemon.reload()
        until(sock, "READY=1")
        daemon.stop()
        thread.join(WAIT)
    assert not thread.is_alive()
    assert len(runners) == 2
    assert runners[1].settings.mode == "apply"
    failures = [e["error"] for e in logs if e["event"].startswith("reload failed")]
    assert len(failures) == 2
    assert "20-broken.yaml:3: rule 'boost'" in failures[0]
    assert "unpuled" in failures[0]
    assert "\n" not in failures[0]
    assert "intervall" in failures[1]


def test_start_with_an_invalid_config_is_exit_code_2(tmp_path: Path, rules_dir: Path) -> None:
    """An invalid config file fails the start with ConfigError (exit 2) listing the key."""
    config = write_config(tmp_path, mode="sometimes")
    with pytest.raises(ConfigError) as caught:
        Daemon(config, environ={}, runner_factory=RulesRunner).run()
    assert caught.value.exit_code == 2
    assert any("mode" in str(p) for p in caught.value.problems)


def test_config_warnings_are_logged_at_start(tmp_path: Path, rules_dir: Path) -> None:
    """Settings.warnings (here: an unknown AMO_MIXER_ variable) appear in the log at start."""
    config = write_config(tmp_path)
    daemon = Daemon(
        config,
        environ={"AMO_MIXER_NOPE": "1"},
        runner_factory=RulesRunner,
        interval=0.01,
        max_cycles=1,
    )
    with capture_logs() as logs:
        assert daemon.run() == 0
    warnings = [e["warning"] for e in logs if e["event"] == "config warning"]
    assert any("AMO_MIXER_NOPE" in w for w in warnings)
