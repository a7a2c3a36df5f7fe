"""The report in a real browser: headless Chromium loads it offline, draws it, no JS errors."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mixer.report import build_report, write_report
from tests.report_fixtures import simulated_log

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 4, 9, 6, 0, tzinfo=UTC)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=10000",
]


def chromium() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed, and CI must run the browser test")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def browse(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def status(dom: str) -> dict[str, Any]:
    match = re.search(r'<pre id="report-status">(.*?)</pre>', dom, re.S)
    assert match, "the page's status element is missing"
    result: dict[str, Any] = json.loads(html.unescape(match.group(1)))
    return result


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three simulated days of two campaigns of four lists, as a report file."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_report(path, build_report(simulated_log(days=3), title="Three days", generated_at=NOW))
    return path


@pytest.fixture(scope="module")
def rendered(
    page: Path, tmp_path_factory: pytest.TempPathFactory
) -> subprocess.CompletedProcess[str]:
    """The page's DOM after load, as Chromium dumps it."""
    return browse(tmp_path_factory.mktemp("browser"), page.as_uri(), "--dump-dom")


def test_report_renders_without_errors_and_draws_charts(
    rendered: subprocess.CompletedProcess[str],
) -> None:
    """Every campaign gets a plotly chart with drawn traces, and no script error occurs."""
    run = rendered
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    state = status(dom)
    assert state["errors"] == []
    assert state["rendered"] is True
    assert state["charts"] == 2
    assert "Uncaught" not in run.stderr
    assert dom.count('class="main-svg"') >= 2
    lines = re.findall(r'<path class="js-line" d="([^"]*)"', dom)
    assert len([d for d in lines if len(d) > 20]) >= 16  # 8 weight lines + 8 pulled lines
    bars = re.findall(r'<g class="point"><path d="(M[^"]+)"', dom)
    assert bars, "no paused band was drawn"
    rows = re.findall(r"<tr><td class=\"time\">", dom)
    assert len(rows) > 10
    assert 'Leads &lt;b&gt;&amp;&lt;/b&gt; "VIP"' in dom  # shown as text, not markup
    assert "<b>&amp;</b>" not in dom


def test_filter_box_narrows_the_table(
    page: Path, tmp_path: Path, rendered: subprocess.CompletedProcess[str]
) -> None:
    """A filter (here from the #q= link) keeps only rows matching every word."""
    run = browse(tmp_path, page.as_uri() + "#q=business-hours%20Callbacks", "--dump-dom")
    dom = run.stdout
    assert status(dom)["errors"] == []
    body = dom[dom.index('<table id="events-table">') :]
    body = body[: body.index("</table>")]
    rows = re.findall(r"<tr><td class=\"time\">.*?</tr>", body, re.S)
    assert rows
    assert all("Callbacks" in r and "business-hours" in r for r in rows)
    assert rendered.stdout.count('<tr><td class="time">') > len(rows)


def test_screenshot_is_a_real_picture(page: Path, tmp_path: Path) -> None:
    """Chromium's screenshot of the page is a 1400x2000 PNG with real content."""
    shot = tmp_path / "report.png"
    run = browse(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1400,2000")
    assert run.returncode == 0, run.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 2000)
    assert len(data) > 60_000  # a blank page of that size compresses to a few kB
