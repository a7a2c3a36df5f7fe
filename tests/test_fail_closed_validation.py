"""One validation everywhere: what `check` finds, `once`, `explain` and a reload refuse,
before any QM call (and a refused reload keeps the running rules writing)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mixer.cli import main
from mixer.clock import FakeClock
from mixer.daemon import Daemon
from mixer.emulator.app import EmulatorApp, create_app
from mixer.emulator.server import serve
from tests.test_fail_closed_commands import amo_mixer

GOOD = """\
rules:
  - name: boost-recalls
    match: "Recalls*"
    when: hour >= 12
    set: {weight: "base_weight * 2"}
"""

# Each case: the files it writes under rules/ (None: remove), the config's rules globs,
# and what the one-line error must say.
CASES: dict[str, tuple[dict[str, str | None], list[str], str]] = {
    "glob-matches-nothing": ({}, ["rules/*.yml"], "'rules/*.yml' matches no file"),
    "campaign-typo": (
        {"10-good.yaml": "campaigns: [Sale]\n" + GOOD.replace("* 2", "* 3")},
        ["rules/*.yaml"],
        "campaigns ['Sale'] match none of the configured campaigns (Sales): did you mean 'Sales'?",
    ),
    "misspelt-deadline": (
        {"20-lists.yaml": "lists:\n  - match: Recalls*\n    dedline: '2024-05-01'\nrules: []\n"},
        ["rules/*.yaml"],
        "unknown key 'dedline' in a lists: entry: did you mean 'deadline'?",
    ),
    "misspelt-standby": (
        {"20-lists.yaml": "lists:\n  - match: Reserve*\n    standbye: true\nrules: []\n"},
        ["rules/*.yaml"],
        "unknown key 'standbye' in a lists: entry: did you mean 'standby'?",
    ),
    "weight-out-of-bounds": (
        {"10-good.yaml": GOOD.replace('"base_weight * 2"', "500")},
        ["rules/*.yaml"],
        "set.weight 500 is outside [1, 100]",
    ),
    "no-enabled-rule": (
        {"10-good.yaml": GOOD + "    enabled: false\n"},
        ["rules/*.yaml"],
        "no enabled rule in",
    ),
}


def write_setup(folder: Path, url: str, files: dict[str, str | None], globs: list[str]) -> Path:
    rules = folder / "rules"
    rules.mkdir(exist_ok=True)
    for name, text in {"10-good.yaml": GOOD, **files}.items():
        if text is None:
            (rules / name).unlink(missing_ok=True)
        else:
            (rules / name).write_text(text, encoding="utf-8")
    config = folder / "config.yaml"
    document: dict[str, Any] = {
        "qm": {"url": url, "user": "robot", "timezone": "Europe/Zurich", "timeout": "3s"},
        "campaigns": ["Sales"],
        "rules": globs,
        "state_dir": "state",
        "mode": "apply",
    }
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    return config


@pytest.fixture
def emulator() -> Iterator[tuple[EmulatorApp, str]]:
    app = create_app("default", dialer=False)
    with serve(app, host="127.0.0.1", port=0) as base_url:
        yield app, base_url


@pytest.mark.e2e
@pytest.mark.parametrize("case", sorted(CASES))
def test_once_refuses_before_any_qm_call(
    case: str, tmp_path: Path, emulator: tuple[EmulatorApp, str]
) -> None:
    """`once --apply` exits 2 with the problem (file:line, what, what to do) and sends
    nothing to QM; `check` reports the same problem."""
    app, url = emulator
    files, globs, message = CASES[case]
    config = write_setup(tmp_path, url, files, globs)
    done = amo_mixer("once", "-c", str(config), "--apply")
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert sum(app.stats.requests.values()) == 0
    checked = amo_mixer("check", "-c", str(config))
    assert checked.returncode == 1
    assert message in checked.stdout


@pytest.mark.parametrize("case", ["campaign-typo", "misspelt-deadline"])
def test_explain_refuses_before_any_qm_call(
    case: str, tmp_path: Path, emulator: tuple[EmulatorApp, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`explain` runs the same validation: exit 2, no QM call."""
    app, url = emulator
    monkeypatch.setenv("AMO_MIXER_QM_PASSWORD", "bot")
    files, globs, _message = CASES[case]
    config = write_setup(tmp_path, url, files, globs)
    code = main(["explain", "-c", str(config), "--campaign", "Sales", "--list", "Recalls Apr 24"])
    assert code == 2
    assert sum(app.stats.requests.values()) == 0


def test_a_custom_fact_is_declared_under_facts(tmp_path: Path) -> None:
    """`facts:` carries custom facts; an old-style key far from every known key still
    works, with a deprecation warning in `check`."""
    rules = """\
lists:
  - match: "Recalls*"
    facts: {region: north}
  - match: "B2B*"
    segment: smb
rules:
  - name: north-first
    when: region == "north" and segment != "smb"
    set: {weight: 50}
"""
    config = write_setup(tmp_path, "http://127.0.0.1:9/qm", {"10-good.yaml": rules}, ["rules/*"])
    done = amo_mixer("check", "-c", str(config))
    assert done.returncode == 0, done.stdout
    assert "lists[1].segment: a custom fact outside facts: is deprecated" in done.stdout


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_refused_reload_keeps_the_running_rules_writing(case: str, tmp_path: Path) -> None:
    """With the daemon in apply mode, a reload to a bad setup is refused, and the next
    cycles write what the running rules say (here x2 at noon), not the new files."""
    clock = FakeClock(datetime(2024, 4, 29, 6, 0, tzinfo=UTC))  # 08:00 in Zurich
    app = create_app("default", clock=clock, dialer=False)
    config = write_setup(tmp_path, "http://qm.test/qm", {}, ["rules/*.yaml"])
    daemon = Daemon(
        config,
        clock=clock,
        environ={"AMO_MIXER_QM_PASSWORD": "bot"},
        transport=httpx.WSGITransport(app=app),
        interval=0.05,
    )
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        _wait(lambda: daemon.cycles >= 1)
        files, globs, _message = CASES[case]
        write_setup(tmp_path, "http://qm.test/qm", files, globs)
        daemon.reload()
        _wait(
            lambda: (
                daemon.metrics.registry.get_sample_value(
                    "amo_mixer_reloads_total", {"outcome": "error"}
                )
                == 1
            )
        )
        clock.advance(timedelta(hours=4, minutes=30))  # 12:30: the running rule fires
        seen = daemon.cycles
        _wait(lambda: daemon.cycles >= seen + 2)
    finally:
        daemon.stop()
        thread.join(10)
    recalls = app.state.find_list("Sales", "Recalls Apr 24")
    assert recalls is not None
    assert recalls.weight == 20  # the running rules' base_weight * 2, never * 3 or 500


def _wait(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
