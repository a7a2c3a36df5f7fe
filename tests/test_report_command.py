"""``amo-mixer report``: reading the configured log, filters, output and one-line errors."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mixer.cli import main
from mixer.commands._common import parse_when
from mixer.errors import UsageError
from tests.report_fixtures import simulated_log

CONFIG = """\
qm:
  url: http://127.0.0.1:8080/qm
  user: robot
campaigns: [Sales, Support]
state_dir: ./state
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config whose decision log lives at tmp_path/state/decisions.jsonl (not yet written)."""
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return path


def write_log(config: Path, records: list[dict[str, Any]]) -> Path:
    log = config.parent / "state" / "decisions.jsonl"
    log.parent.mkdir(exist_ok=True)
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    return log


def data_of(page: str) -> dict[str, Any]:
    start = page.index('id="report-data">') + len('id="report-data">')
    result: dict[str, Any] = json.loads(page[start : page.index("</script>", start)])
    return result


def test_missing_log_is_one_line_and_exit_1(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No decision log yet: exit 1 with one line naming the path, and no file written."""
    out = tmp_path / "r.html"
    assert main(["report", "-c", str(config), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no decision log at" in err
    assert str(tmp_path / "state" / "decisions.jsonl") in err
    assert not out.exists()


def test_writes_the_report_and_prints_path_and_summary(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-o writes the page; stdout is one line with the path and the counts."""
    write_log(config, simulated_log(days=1, step_minutes=15))
    out = tmp_path / "r.html"
    assert main(["report", "-c", str(config), "-o", str(out)]) == 0
    line = capsys.readouterr().out
    assert line.count("\n") == 1
    assert line.startswith(f"{out}: 2 campaigns, 8 lists")
    page = out.read_text(encoding="utf-8")
    assert "<title>amo-mixer decisions · config.yaml</title>" in page
    assert [c["name"] for c in data_of(page)["campaigns"]] == ["Sales", "Support"]


def test_campaign_glob_and_time_range_filter(config: Path, tmp_path: Path) -> None:
    """--campaign takes a glob; --since is inclusive and --until exclusive."""
    write_log(config, simulated_log(days=2, step_minutes=30))
    out = tmp_path / "r.html"
    args = [
        "report",
        "-c",
        str(config),
        "-o",
        str(out),
        "--campaign",
        "Sup*",
        "--since",
        "2026-04-07T00:00",
        "--until",
        "2026-04-07T12:00:00+00:00",
    ]
    assert main(args) == 0
    data = data_of(out.read_text(encoding="utf-8"))
    assert [c["name"] for c in data["campaigns"]] == ["Support"]
    assert data["campaigns"][0]["counts"]["cycles"] == 24
    assert data["first"] == int(datetime(2026, 4, 7, tzinfo=UTC).timestamp() * 1000)


def test_rotated_files_are_read_in_order(config: Path, tmp_path: Path) -> None:
    """Records in decisions.jsonl.1 come before those in decisions.jsonl."""
    records = simulated_log(days=1, step_minutes=60)
    log = write_log(config, records[len(records) // 2 :])
    Path(f"{log}.1").write_text("".join(json.dumps(r) + "\n" for r in records[: len(records) // 2]))
    out = tmp_path / "r.html"
    assert main(["report", "-c", str(config), "-o", str(out)]) == 0
    data = data_of(out.read_text(encoding="utf-8"))
    assert sum(c["counts"]["cycles"] for c in data["campaigns"]) == 48


def test_empty_log_still_writes_a_page(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing but empty log gives a page that says there is nothing yet."""
    write_log(config, [])
    out = tmp_path / "r.html"
    assert main(["report", "-c", str(config), "-o", str(out)]) == 0
    assert "Nothing yet" in out.read_text(encoding="utf-8")
    assert "no records" in capsys.readouterr().out


def test_bad_since_is_a_usage_error(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unreadable --since exits 2 with one line showing the accepted forms."""
    assert main(["report", "-c", str(config), "--since", "last tuesday"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "24h" in err


def test_missing_plotly_is_one_line_with_the_install_command(
    config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without plotly: exit 1 and one line saying pip install 'amo-mixer[report]'."""
    write_log(config, simulated_log(days=1, step_minutes=60))
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.offline", None)
    assert main(["report", "-c", str(config), "-o", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "pip install 'amo-mixer[report]'" in err


def test_parse_when_takes_durations_and_iso_times() -> None:
    """24h means a day before now; a naive ISO time is UTC; an offset is honoured."""
    now = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
    assert parse_when("24h", now, "--since") == now - timedelta(hours=24)
    assert parse_when("2026-04-09T08:00", now, "--since") == datetime(2026, 4, 9, 8, tzinfo=UTC)
    assert parse_when("2026-04-09T10:00+02:00", now, "--since") == datetime(
        2026, 4, 9, 8, tzinfo=UTC
    )
    assert parse_when(None, now, "--since") is None
    with pytest.raises(UsageError):
        parse_when("soon", now, "--until")
