"""The status page in a real browser: headless Chromium loads it from the daemon's
listener with 500 lists, draws the charts and the table, no script errors, with and
without JavaScript."""

from __future__ import annotations

import html
import json
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client import CollectorRegistry

from mixer.metrics import MixerMetrics
from mixer.status.board import StatusBoard
from tests.cycle_harness import Mixer
from tests.test_report_browser import browse

pytestmark = pytest.mark.e2e

LISTS = 500
RULES = """
rules:
  - name: boost-near-deadline
    when: hours_to_deadline < 48 and unpulled > 0
    set: {weight: "base_weight * 2"}
  - name: pause-exhausted
    when: not can_reserve and unpulled == 0
    set: {paused: true}
"""


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A listener serving the status of two cycles of one campaign of 500 lists."""
    lists = [
        {
            "name": f"List {n:03d}",
            "weight": 5 + n % 20,
            "numbers": 0 if n % 50 == 0 else 30,
            "notes": f"deadline: 2024-04-{29 + n % 2} 18:00" if n % 3 == 0 else "",
        }
        for n in range(LISTS)
    ]
    rig = Mixer(tmp_path_factory.mktemp("status"), lists=lists, rules=RULES)
    board = StatusBoard()
    for _ in range(2):
        board.publish(rig.cycle(), mode="apply", rules_hash="ab" * 32, interval_s=60)
    rig.close()
    stop = MixerMetrics(CollectorRegistry()).serve("127.0.0.1:0", board, ZoneInfo("Europe/Zurich"))
    yield f"http://127.0.0.1:{stop.port}/"
    stop()


def page_state(dom: str) -> dict[str, Any]:
    match = re.search(r'<pre id="page-state"[^>]*>(.*?)</pre>', dom, re.S)
    assert match, "the page's state element is missing"
    result: dict[str, Any] = json.loads(html.unescape(match.group(1)))
    return result


def test_page_renders_500_lists_with_charts_and_no_errors(url: str, tmp_path: Path) -> None:
    """Chromium draws the charts, the 500-row table, and reports no script error."""
    run = browse(tmp_path, url, "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    state = page_state(dom)
    ms = state.pop("ms")
    assert state == {"errors": [], "rendered": True, "charts": 2, "rows": LISTS}
    assert ms > 0  # navigation start to the script's end: the benchmark records it
    assert "Uncaught" not in run.stderr
    assert len(re.findall(r'<rect class="bar"[^>]* width="[1-9]', dom)) >= 40
    assert dom.count('<tr class="list"') == LISTS


def test_filter_from_the_link_narrows_the_table(url: str, tmp_path: Path) -> None:
    """#q=List%20042 in the address keeps only the matching row visible."""
    run = browse(tmp_path, url + "#q=List%20042", "--dump-dom")
    dom = run.stdout
    assert page_state(dom)["errors"] == []
    visible = re.findall(r'<tr class="list"( style="")?>', dom)
    hidden = dom.count('<tr class="list" style="display: none;">')
    assert hidden == LISTS - 1
    assert len(visible) == 1


def test_table_works_without_javascript(url: str) -> None:
    """The table rows and the charts are in the HTML the server sends: no script makes
    them (the script only adds the filter box, hidden until it runs)."""
    raw = httpx.get(url, timeout=30).text
    assert raw.count('<tr class="list"') == LISTS
    assert raw.count('<svg class="chart"') == 2
    assert '<input id="filter"' in raw
    assert "#filter{display:none" in raw


def test_screenshot_is_kept(url: str, tmp_path: Path) -> None:
    """Chromium's screenshot of the page is a real picture, kept next to the test's files."""
    shot = tmp_path / "status-page.png"
    run = browse(tmp_path, url, f"--screenshot={shot}", "--window-size=1400,2000")
    assert run.returncode == 0, run.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1400, 2000)
    assert len(data) > 60_000
