"""The shipped systemd units (the single one and the per-QM-target template): verify-clean,
exposure at most 1.5, every directive explained."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "amo-mixer.service"
TEMPLATE = ROOT / "systemd" / "amo-mixer@.service"
UNITS = pytest.mark.parametrize("unit", [UNIT, TEMPLATE], ids=["single", "template"])
SCRIPT = ROOT / ".ci" / "check-systemd"

needs_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None and os.environ.get("CI") != "true",
    reason="systemd-analyze is not installed (apt-get install systemd); required when CI=true",
)


def check(unit: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.setdefault("AMO_MIXER_BIN", shutil.which("amo-mixer") or sys.executable)
    return subprocess.run(
        ["bash", str(SCRIPT), str(unit)], capture_output=True, text=True, env=env, timeout=60
    )


def directives(text: str) -> list[tuple[int, str, str]]:
    """(line number, key, value) for every directive of a unit file."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            found.append((number, key, value))
    return found


@needs_systemd
@UNITS
def test_shipped_unit_passes_the_ci_check(unit: Path) -> None:
    """.ci/check-systemd accepts the shipped units: verify prints nothing, exposure <= 1.5."""
    result = check(unit)
    assert result.returncode == 0, result.stderr
    exposure = float(result.stdout.split("exposure ")[1].split()[0])
    assert exposure <= 1.5


@needs_systemd
@UNITS
def test_a_typo_fails_the_check(tmp_path: Path, unit: Path) -> None:
    """An unknown key, which systemd-analyze verify merely warns about, fails the check."""
    broken = tmp_path / unit.name
    broken.write_text(unit.read_text().replace("ProtectHome=yes", "ProtectHom=yes"))
    result = check(broken)
    assert result.returncode == 1
    assert "Unknown key 'ProtectHom'" in result.stderr


@needs_systemd
def test_weak_hardening_fails_the_check(tmp_path: Path) -> None:
    """A unit without the sandboxing directives is rejected for its exposure level."""
    weak = tmp_path / "amo-mixer.service"
    keep = [
        line
        for line in UNIT.read_text().splitlines()
        if not line.startswith(("Protect", "Private", "Restrict", "SystemCall", "Capability"))
    ]
    weak.write_text("\n".join(keep) + "\n")
    result = check(weak)
    assert result.returncode == 1
    assert "is above 1.5" in result.stderr


def test_unit_runs_the_daemon_as_systemd_expects() -> None:
    """Type=notify with a watchdog, reload by SIGHUP, the credential, state and config dirs."""
    keys = {(key, value) for _, key, value in directives(UNIT.read_text())}
    for expected in [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("WatchdogSec", "5min"),
        ("Restart", "on-failure"),
        ("ExecStart", "/opt/amo-mixer/bin/amo-mixer run -c /etc/amo-mixer/config.yaml"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("StateDirectory", "amo-mixer"),
        ("ConfigurationDirectory", "amo-mixer"),
        ("LoadCredential", "qm_password:/etc/amo-mixer/qm_password"),
        ("MemoryDenyWriteExecute", "yes"),
        ("CapabilityBoundingSet", ""),
        ("UMask", "0077"),
    ]:
        assert expected in keys


def test_template_runs_one_daemon_per_qm_target() -> None:
    """Each instance has its own config, state directory, credential and working directory,
    and the template differs from the single unit in nothing else but comments."""
    keys = {(key, value) for _, key, value in directives(TEMPLATE.read_text())}
    for expected in [
        ("ExecStart", "/opt/amo-mixer/bin/amo-mixer run -c /etc/amo-mixer/%i/config.yaml"),
        ("StateDirectory", "amo-mixer/%i"),
        ("ConfigurationDirectory", "amo-mixer/%i"),
        ("LoadCredential", "qm_password:/etc/amo-mixer/%i/qm_password"),
        ("WorkingDirectory", "/var/lib/amo-mixer/%i"),
    ]:
        assert expected in keys
    single = {(key, value) for _, key, value in directives(UNIT.read_text())}
    differ = {key for key, _ in keys ^ single}
    assert differ == {
        "Description",
        "ExecStart",
        "StateDirectory",
        "ConfigurationDirectory",
        "LoadCredential",
        "WorkingDirectory",
    }


@UNITS
def test_every_directive_has_a_comment(unit: Path) -> None:
    """Each directive, or each run of directives that share one purpose, follows a comment."""
    lines = unit.read_text().splitlines()
    for number, key, _ in directives(unit.read_text()):
        above = number - 2
        while above >= 0 and not lines[above].startswith("#") and "=" in lines[above]:
            above -= 1  # StandardOutput/StandardError-style pairs share one comment
        assert above >= 0, f"line {number}: {key} unexplained"
        assert lines[above].startswith("#"), f"line {number}: {key} unexplained"
        assert number - above <= 3, f"line {number}: {key} is far from its comment"


def test_python_runs_under_memory_deny_write_execute() -> None:
    """The daemon's imports work with W^X enforced (PR_SET_MDWE, as MemoryDenyWriteExecute)."""
    code = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    print("unsupported"); sys.exit(0)
import mmap
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
except OSError:
    pass
else:
    print("not enforced"); sys.exit(1)
import sqlite3, ssl, yaml, httpx, pydantic, structlog, prometheus_client, apscheduler
import mixer.cli, mixer.daemon, mixer.config, mixer.engine.rules
from mixer.metrics import MixerMetrics
stop = MixerMetrics().serve("127.0.0.1:0")
httpx.get(f"http://127.0.0.1:{stop.port}/metrics", timeout=5).raise_for_status()
stop()
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    if result.stdout.strip() == "unsupported":
        pytest.skip("the kernel has no PR_SET_MDWE (Linux < 6.3)")
    assert result.stdout.strip() == "ok", result.stderr
