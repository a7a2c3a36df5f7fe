"""Logging as configured for the daemon: JSON lines off a TTY, redaction, UTC, levels."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import structlog

from mixer.logs import REDACTED, configure_logging, get_logger


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put structlog and the root logger back as they were."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_with_utc_iso_timestamps_off_a_tty() -> None:
    """Off a terminal each event is one JSON object with level and an ISO UTC timestamp."""
    out = io.StringIO()
    configure_logging(stream=out)
    get_logger().info("cycle", campaign="Sales", changes=2)
    (record,) = lines(out)
    assert record["event"] == "cycle"
    assert record["campaign"] == "Sales"
    assert record["level"] == "info"
    stamp = datetime.fromisoformat(record["timestamp"])
    assert stamp.utcoffset() == timedelta(0)


def test_secrets_are_redacted_whatever_logs_them() -> None:
    """Keys named like password, authorization, secret or token are replaced, even nested."""
    out = io.StringIO()
    configure_logging(stream=out)
    get_logger().info(
        "request",
        password="bot",
        qm_password="bot",
        headers={"Authorization": "Basic cm9ib3Q6Ym90", "Accept": "json"},
        client_secret="s",
        user="robot",
    )
    (record,) = lines(out)
    assert record["password"] == REDACTED
    assert record["qm_password"] == REDACTED
    assert record["headers"] == {"Authorization": REDACTED, "Accept": "json"}
    assert record["client_secret"] == REDACTED
    assert record["user"] == "robot"
    assert "cm9ib3Q6Ym90" not in out.getvalue()


def test_debug_level_only_with_debug() -> None:
    """debug events are dropped unless debug=True."""
    out = io.StringIO()
    configure_logging(stream=out)
    get_logger().debug("hidden")
    assert out.getvalue() == ""
    configure_logging(stream=out, debug=True)
    get_logger().debug("shown")
    assert [r["event"] for r in lines(out)] == ["shown"]


def test_stdlib_loggers_share_the_renderer() -> None:
    """APScheduler's and httpx's stdlib warnings come out as the same JSON lines, redacted."""
    out = io.StringIO()
    configure_logging(stream=out)
    logging.getLogger("apscheduler.scheduler").info("Added job")  # below WARNING: dropped
    logging.getLogger("apscheduler.scheduler").warning("Run time of job was missed")
    (record,) = lines(out)
    assert record["event"] == "Run time of job was missed"
    assert record["logger"] == "apscheduler.scheduler"
    assert record["level"] == "warning"


def test_configuring_twice_keeps_one_stdlib_handler() -> None:
    """Reconfiguring replaces the handler instead of doubling every stdlib line."""
    out = io.StringIO()
    configure_logging(stream=out)
    configure_logging(stream=out)
    logging.getLogger("httpx").warning("once")
    assert len(lines(out)) == 1


def test_console_rendering_on_a_tty() -> None:
    """On a terminal the output is the readable console form, not JSON."""
    out = FakeTTY()
    configure_logging(stream=out)
    get_logger().info("daemon started", mode="dry-run", password="bot")
    text = out.getvalue()
    assert "daemon started" in text
    assert "mode" in text
    assert not text.lstrip().startswith("{")
    assert "bot" not in text.replace("robot", "")


def test_quiet_logging_keeps_warnings_only() -> None:
    """quiet=True drops info lines (a command's own output says it) but keeps warnings."""
    stream = io.StringIO()
    configure_logging(stream=stream, json=True, quiet=True)
    log = get_logger()
    log.info("cycle", campaign="Sales")
    log.warning("retrying", campaign="Sales")
    text = stream.getvalue()
    assert "retrying" in text
    assert '"cycle"' not in text
