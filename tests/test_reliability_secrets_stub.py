"""Issue 12 item 12: a server that echoes the password back — in a redirect's Location,
in a list name that fails validation — never gets it, or a piece of it, into stdout,
stderr, the decision log, the state directory or the HTML report of the installed
command."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from qm_stub import QMStub, Reply, listing, serve_stub, wire_list
from reliability_matrix import amo_mixer, write_config
from test_reliability_secrets import env

pytestmark = [pytest.mark.e2e]

PASSWORD = "Sup3r Secr3t!Pässwörd"
PIECES = ("Sup3r", "Secr3t!Pässwörd", "Secr3t", "Pässwörd")


def spellings() -> dict[str, bytes]:
    """The password and each piece a URL parser could quote, in every encoding a line
    could carry them."""
    found: dict[str, bytes] = {}
    for secret in (PASSWORD, *PIECES):
        for name, text in {
            "plain": secret,
            "quote": quote(secret, safe=""),
            "quote_plus": quote_plus(secret),
            "json": json.dumps(secret)[1:-1],
            "base64": base64.b64encode(secret.encode()).decode(),
        }.items():
            found[f"{name} {secret!r}"] = text.encode()
    return found


def leaks(blob: bytes) -> list[str]:
    return [name for name, form in spellings().items() if form in blob]


def test_the_scanner_finds_pieces() -> None:
    """A clean scan means something: a quoted piece is found."""
    assert "plain 'Sup3r'" in leaks(b"Invalid port: 'Sup3r'")
    assert leaks(b"Invalid port: '***'") == []


LOCATIONS = {
    "port": f"http://qm.example:{PASSWORD}/qm",
    "userinfo": f"http://robot:{quote(PASSWORD)}@qm.example/qm",
    "query": f"http://qm.example/qm?password={quote_plus(PASSWORD)}",
    "spaced": "http://qm.example:Sup3r Secr3t/qm",
}


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env(PASSWORD), capture_output=True, text=True, timeout=60, cwd=cwd
    )


def scan_all(tmp_path: Path, outputs: list[subprocess.CompletedProcess[str]]) -> dict[str, list]:
    found = {}
    for index, done in enumerate(outputs):
        for stream, text in (("stdout", done.stdout), ("stderr", done.stderr)):
            hits = leaks(text.encode())
            if hits:
                found[f"{index} {stream}"] = hits
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file() and path.suffix != ".yaml":
            hits = leaks(path.read_bytes())
            if hits:
                found[str(path.relative_to(tmp_path))] = hits
    return found


@pytest.mark.parametrize("where", sorted(LOCATIONS))
def test_a_redirect_carrying_the_password_leaks_no_piece_of_it(tmp_path: Path, where: str) -> None:
    """once fails in one line naming the redirect; no output or file holds any piece."""
    with serve_stub() as stub:
        stub.script = lambda _request: Reply(status=302, headers={"Location": LOCATIONS[where]})
        config = write_config(tmp_path, stub.url, user="robot")
        outputs = [run([*amo_mixer(), "once", "-c", str(config), "--apply"], tmp_path)]
        outputs.append(run([*amo_mixer(), "--debug", "once", "-c", str(config)], tmp_path))
    report = tmp_path / "report.html"
    outputs.append(run([*amo_mixer(), "report", "-c", str(config), "-o", str(report)], tmp_path))
    assert outputs[0].returncode == 1
    assert "redirected the call to" in outputs[0].stderr + outputs[0].stdout
    assert "Traceback" not in outputs[0].stderr
    assert scan_all(tmp_path, outputs) == {}


def test_a_bad_field_in_a_list_named_with_the_password_is_redacted(tmp_path: Path) -> None:
    """The list label of a bad-field message comes from QM: it is redacted like the rest."""
    stub = QMStub()
    stub.lists = [wire_list(f"Leads {PASSWORD}", weight="heavy")]  # type: ignore[arg-type]
    stub.script = lambda _request: Reply(body=listing("Sales", stub.lists))
    with serve_stub(stub):
        config = write_config(tmp_path, stub.url)
        outputs = [run([*amo_mixer(), "once", "-c", str(config), "--apply"], tmp_path)]
    report = tmp_path / "report.html"
    outputs.append(run([*amo_mixer(), "report", "-c", str(config), "-o", str(report)], tmp_path))
    assert outputs[0].returncode == 1
    assert "with a bad 'weight'" in outputs[0].stderr + outputs[0].stdout
    assert scan_all(tmp_path, outputs) == {}
