"""The QM password never leaks: not on stdout or stderr (with or without --debug), not in the
decision log, the state database or any other file of the state directory, in plain,
URL-encoded, JSON-escaped or base64 form, on every fault path and every command; and a
config file holding a literal password that others can read is warned about.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import yaml
from reliability_matrix import FAULT_CASES, amo_mixer, make_app, read_log, write_config

from mixer.emulator.app import EmulatorApp
from mixer.emulator.server import serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "s3cr3t-Pässwörd/+="
USER = "robot"
WAIT_S = 30.0
WARNING = "holds a literal qm.password and is readable by other users"


def leak_forms(secret: str = PASSWORD, user: str = USER) -> dict[str, bytes]:
    """Every spelling of the password a careless log line or file could hold."""
    forms = {
        "plain": secret,
        "quote": quote(secret),
        "quote-safe-none": quote(secret, safe=""),
        "quote_plus": quote_plus(secret),
        "json": json.dumps(secret)[1:-1],
        "base64": base64.b64encode(secret.encode()).decode(),
        "base64 user:password": base64.b64encode(f"{user}:{secret}".encode()).decode(),
    }
    found = {name: text.encode() for name, text in forms.items()}
    found["latin-1"] = secret.encode("latin-1")
    return found


def leaks(blob: bytes) -> list[str]:
    return [name for name, form in leak_forms().items() if form in blob]


def test_leak_forms_catch_the_password() -> None:
    """The scanner finds each form (so a clean scan means something)."""
    header = "Authorization: Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert "base64 user:password" in leaks(header.encode())
    assert "quote_plus" in leaks(quote_plus(PASSWORD).encode())
    assert leaks(b"nothing here") == []


@pytest.fixture
def qm() -> Iterator[tuple[EmulatorApp, str]]:
    app = make_app(password=PASSWORD)
    with serve(app) as url:
        yield app, url


def env(password: str = PASSWORD) -> dict[str, str]:
    found = {k: v for k, v in os.environ.items() if not k.startswith("AMO_MIXER_")}
    found["AMO_MIXER_QM_PASSWORD"] = password
    return found


def command(config: Path, name: str, *args: str, debug: bool) -> list[str]:
    return [*amo_mixer(), *(["--debug"] if debug else []), name, "-c", str(config), *args]


def scan_state(state: Path) -> dict[str, list[str]]:
    """Leaks per file of the state directory (decision log, database, lock, torn, ...)."""
    found = {}
    for path in sorted(state.rglob("*")):
        if path.is_file():
            hits = leaks(path.read_bytes())
            if hits:
                found[str(path.relative_to(state))] = hits
    return found


def run_daemon_briefly(argv: list[str], log: Path, environ: dict[str, str]) -> tuple[str, str]:
    """Start `run`, wait for one more cycle in the decision log, SIGTERM; its output."""
    before = len(read_log(log))
    daemon = subprocess.Popen(
        argv, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + WAIT_S
    try:
        while len(read_log_complete(log)) <= before:
            assert time.monotonic() < deadline, "the daemon never cycled"
            time.sleep(0.1)
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=WAIT_S)
    assert daemon.returncode == 0, err
    return out, err


def read_log_complete(log: Path) -> list[bytes]:
    if not log.exists():
        return []
    return [line for line in log.read_bytes().split(b"\n") if line.endswith(b"}")]


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_no_command_or_fault_path_leaks_the_password(
    debug: bool, tmp_path: Path, qm: tuple[EmulatorApp, str]
) -> None:
    """once under every fault, a wrong password, check, explain, log and run leak nothing."""
    app, url = qm
    config = write_config(tmp_path, url, interval="1s")
    state = tmp_path / "state"
    outputs: dict[str, str] = {}

    def run(label: str, argv: list[str], environ: dict[str, str] | None = None) -> None:
        done = subprocess.run(
            argv, env=environ or env(), capture_output=True, text=True, timeout=60, check=False
        )
        outputs[label] = done.stdout + done.stderr

    for case in FAULT_CASES:
        if case.kind is None or case.in_process:
            continue
        app.faults.clear()
        app.faults.set(case.kind, **case.options)
        run(f"once under {case.name}", command(config, "once", "--apply", debug=debug))
    app.faults.clear()
    run("once, wrong password", command(config, "once", debug=debug), env(PASSWORD[::-1]))
    run("once", command(config, "once", "--apply", debug=debug))
    run("once --json", command(config, "once", "--json", debug=debug))
    run("check", command(config, "check", debug=debug))
    explain = ["--campaign", "Sales", "--list", "Recalls"]
    run("explain", command(config, "explain", *explain, debug=debug))
    run("log", command(config, "log", "--format", "json", debug=debug))
    out, err = run_daemon_briefly(
        command(config, "run", debug=debug), state / "decisions.jsonl", env()
    )
    outputs["run"] = out + err

    assert len(outputs) >= 14
    assert "HTTP 500" in outputs["once under HTTP 500"], "the fault paths really ran"
    assert {
        label: leaks(text.encode()) for label, text in outputs.items() if leaks(text.encode())
    } == {}
    assert (state / "decisions.jsonl").exists()
    assert scan_state(state) == {}


def test_literal_password_in_a_readable_config_is_warned_about(
    tmp_path: Path, qm: tuple[EmulatorApp, str]
) -> None:
    """check and run warn about a group/other-readable config holding qm.password."""
    _app, url = qm
    config = write_config(tmp_path, url, interval="1s")
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    document["qm"]["password"] = PASSWORD
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AMO_MIXER_")}

    config.chmod(0o600)
    private = subprocess.run(
        command(config, "check", debug=False), env=environ, capture_output=True, text=True
    )
    config.chmod(0o644)
    shared = subprocess.run(
        command(config, "check", debug=False), env=environ, capture_output=True, text=True
    )
    out, err = run_daemon_briefly(
        command(config, "run", debug=False), tmp_path / "state" / "decisions.jsonl", environ
    )

    assert WARNING not in private.stdout + private.stderr
    assert WARNING in shared.stdout + shared.stderr
    assert shared.returncode == 0, "a warning, not a failure"
    assert WARNING in out + err
    assert leaks((shared.stdout + shared.stderr + out + err).encode()) == []
