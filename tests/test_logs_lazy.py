"""Logging configured without loading structlog: the first line logged loads it, with the
configuration asked for (renderer, redaction, level), from a mixer logger or the stdlib."""

from __future__ import annotations

import json
import subprocess
import sys

_SCRIPT = """
import io, json, logging, sys
from mixer.logs import configure_logging, get_logger

out = io.StringIO()
configure_logging(stream=out, json=True, quiet=True)
log = get_logger()  # a logger is had before structlog is
loaded = ["structlog" in sys.modules]
FIRST
loaded.append("structlog" in sys.modules)
log.info("dropped: quiet keeps warnings")
log.warning("from the mixer", password="hunter2", campaign="Sales")
logging.getLogger("httpx").warning("from the stdlib")
print(json.dumps({"loaded": loaded, "lines": out.getvalue().splitlines()}))
"""


def _run(first: str) -> tuple[list[bool], list[dict[str, object]]]:
    code = _SCRIPT.replace("FIRST", first)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return found["loaded"], [json.loads(line) for line in found["lines"]]


def test_a_mixer_logger_first_loads_structlog_with_the_configuration() -> None:
    """structlog is not loaded by configuring or getting a logger; the first line loads
    it, rendered as configured: JSON, level filtered, secrets redacted, stdlib alike."""
    loaded, lines = _run("log.warning('first', token='abc')")
    assert loaded == [False, True]
    assert [(line["event"], line["level"]) for line in lines] == [
        ("first", "warning"),
        ("from the mixer", "warning"),
        ("from the stdlib", "warning"),
    ]
    assert lines[0]["token"] == lines[1]["password"] == "[redacted]"
    assert lines[1]["campaign"] == "Sales"
    assert lines[2]["logger"] == "httpx"
    assert all(str(line["timestamp"]).endswith("Z") for line in lines)


def test_a_stdlib_record_first_loads_structlog_with_the_configuration() -> None:
    """A standard-library record logged before any mixer line renders through the same
    JSON renderer, and the mixer's own lines after it are configured too."""
    loaded, lines = _run("logging.getLogger('apscheduler').warning('stdlib first')")
    assert loaded == [False, True]
    events = [line["event"] for line in lines]
    assert events == ["stdlib first", "from the mixer", "from the stdlib"]
    assert lines[0]["logger"] == "apscheduler"
    assert lines[1]["password"] == "[redacted]"
