"""Issue 12 item 5: no failure in a reload, a cycle or the log output ends the daemon's
control thread: SIGHUP is answered with READY again, SIGTERM still stops it; an absurd
duration is one line from `check`, not an internal OverflowError."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from test_daemon import (
    Factory,
    FakeSettings,
    InThread,
    NotifyListener,
    load_fake_settings,
    make_daemon,
    write_config,
)

from mixer.cli import main
from mixer.durations import DurationTooLongError, parse_duration
from mixer.logs import configure_logging, get_logger


@pytest.fixture
def listener(tmp_path: Path) -> Any:
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.sock.close()


@pytest.mark.parametrize("value", ["99999999999w", 10**400, 1e300, "9" * 40 + "d"])
def test_an_absurd_duration_is_a_value_error_not_an_overflow(value: object) -> None:
    """Durations beyond about 100 years are refused with a ValueError naming the maximum."""
    with pytest.raises(DurationTooLongError, match="longer than the maximum of 36500d"):
        parse_duration(value)  # type: ignore[arg-type]


def test_check_reports_an_overflowing_for_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`check` on `for: 99999999999w` names file, line and the maximum (no internal error)."""
    monkeypatch.setenv("AMO_MIXER_QM_PASSWORD", "bot")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "10-idle.yaml").write_text(
        textwrap.dedent(
            """
            rules:
              - name: idle
                when: unpulled > 0
                for: 99999999999w
                set: {paused: true}
            """
        ),
        encoding="utf-8",
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "qm": {"url": "http://127.0.0.1:9/qm", "user": "robot", "timezone": "UTC"},
                "campaigns": ["Sales"],
                "rules": ["rules/*.yaml"],
                "state_dir": "state",
            }
        )
    )
    assert main(["check", "-c", str(config)]) == 1
    captured = capsys.readouterr()
    assert "internal error" not in captured.err + captured.out
    assert "10-idle.yaml:5: rule 'idle': for: invalid duration '99999999999w'" in captured.out


def overflowing_loader(path: Path, *, environ: Any = None) -> FakeSettings:
    """load_fake_settings, but `overflow` in the file raises what a bad duration once did."""
    data = json.loads(path.read_text())
    if data.get("overflow"):
        raise OverflowError("Python int too large to convert to C int")
    if data.get("directory"):
        raise IsADirectoryError(21, "Is a directory", data["directory"])
    return load_fake_settings(path, environ=environ)


@pytest.mark.parametrize(
    "bad", [{"overflow": True}, {"directory": "/var/lib/amo-mixer"}], ids=["overflow", "isdir"]
)
def test_a_reload_failing_unexpectedly_keeps_the_daemon_answering(
    tmp_path: Path, listener: NotifyListener, bad: dict[str, Any]
) -> None:
    """RELOADING is followed by READY, the old runner keeps cycling, a second SIGHUP is
    still handled, and stop() ends the daemon with exit 0."""
    config = write_config(tmp_path / "config.json")
    factory = Factory()
    environ = {"NOTIFY_SOCKET": listener.path}
    daemon = make_daemon(config, factory, environ=environ, interval=5)
    daemon.settings_loader = overflowing_loader
    with capture_logs() as logs:
        run = InThread(daemon)
        listener.until("WATCHDOG=1")
        config.write_text(json.dumps({"state_dir": str(tmp_path / "state"), **bad}))
        daemon.reload()
        answer = listener.until("READY=1")
        assert answer[0][0] == "RELOADING=1"
        assert answer[-1][1].startswith("STATUS=reload failed, running on the old config: ")
        write_config(config, label="second")
        daemon.reload()
        assert listener.until("READY=1")[-1] == ["READY=1", "STATUS=reloaded"]
        daemon.stop()
        assert run.join() == 0
    assert daemon.settings is not None
    assert daemon.settings.label == "second"  # type: ignore[attr-defined]
    event = "reload failed; keeping the running config and rules"
    failed = [e for e in logs if e["event"] == event]
    assert len(failed) == 1
    assert "\n" not in failed[0]["error"]


def test_a_broken_stdout_pipe_never_raises_from_logging(tmp_path: Path) -> None:
    """Logging to a pipe whose reader has gone drops the line instead of raising
    BrokenPipeError into the daemon (structlog and stdlib loggers alike)."""
    import logging

    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = os.fdopen(write_end, "w", buffering=1)
    try:
        configure_logging(stream=stream, json=True)
        get_logger().info("cycle", campaigns=1)
        get_logger().error("cycle failed", error="x")
        logging.getLogger("apscheduler").warning("missed run")
    finally:
        configure_logging()
        try:
            stream.close()
        except OSError:
            pass
