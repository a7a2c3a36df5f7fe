"""The HTML report: what ``collect`` folds out of the log, and what the page holds."""

from __future__ import annotations

import json
import random
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mixer.errors import MixerError
from mixer.report import (
    INSTALL_HINT,
    ReportDependencyError,
    build_report,
    collect,
    keep_indices,
    write_report,
)
from mixer.report import build as report_build
from tests.report_fixtures import HTML_LIST, simulated_log

NOW = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
XSS = "<script>alert(1)</script>"


def ts(minute: int) -> str:
    return (datetime(2026, 4, 10, 8, 0, tzinfo=UTC) + timedelta(minutes=minute)).isoformat()


def cycle(minute: int, campaign: str = "Sales", **lists: dict[str, Any]) -> dict[str, Any]:
    return {
        "event": "cycle",
        "ts": ts(minute),
        "cycle_id": f"c{minute}",
        "campaign": campaign,
        "mode": "apply",
        "outcome": "ok",
        "lists": lists,
    }


def state(weight: int = 10, paused: bool = False, pulled: int = 0) -> dict[str, Any]:
    return {
        "weight": weight,
        "paused": paused,
        "added": 100,
        "pulled": pulled,
        "completed": pulled,
        "can_reserve": True,
    }


def decision(minute: int, name: str, before: int, after: int, **extra: Any) -> dict[str, Any]:
    record = {
        "event": "decision",
        "ts": ts(minute),
        "cycle_id": f"c{minute}",
        "campaign": "Sales",
        "list": name,
        "mode": "dry-run",
        "before": {"weight": before, "paused": False},
        "after": {"weight": after, "paused": False},
        "rules": ["boost"],
        "reason": "Boosted.",
        "applied": False,
    }
    record.update(extra)
    return record


def embedded(page: str) -> dict[str, Any]:
    match = re.search(
        r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S
    )
    assert match, "the data block is missing"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


@pytest.fixture
def no_plotly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend plotly is not installed."""
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.offline", None)


@pytest.fixture
def tiny_plotly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Swap the 4.8 MB bundle for a stub where a test looks at the rest of the page."""
    monkeypatch.setattr(report_build, "plotly_js", lambda: "/* plotly */")


# -- escaping and embedding ---------------------------------------------------------


def test_list_named_like_a_script_is_never_markup() -> None:
    """A list named <script>alert(1)</script> appears only as escaped JSON, never as a tag."""
    records = [
        cycle(0, **{XSS: state()}),
        decision(1, XSS, 10, 30, reason=f"Because {XSS} & more"),
    ]
    page = build_report(records, title=f"Report {XSS}", generated_at=NOW)
    assert XSS not in page
    assert "alert(1)</script" not in page
    assert "<title>Report &lt;script&gt;alert(1)&lt;/script&gt;</title>" in page
    data = embedded(page)
    assert data["campaigns"][0]["lists"][0]["name"] == XSS
    assert data["events"][0]["reason"] == f"Because {XSS} & more"


def test_page_has_no_external_references(tiny_plotly: None) -> None:
    """Nothing on the page is fetched from a network: no src, href or http in the markup."""
    page = build_report([cycle(0, A=state())], title="r", generated_at=NOW)
    assert "/* plotly */" in page
    for needle in ("src=", "href=", "http://", "https://", "@import", "url("):
        assert needle not in page, needle


def test_plotly_bundle_is_inlined() -> None:
    """The real plotly.js is inside the page, so it renders offline."""
    from plotly.offline import get_plotlyjs

    page = build_report([cycle(0, A=state())], title="r", generated_at=NOW)
    assert get_plotlyjs()[:2000] in page
    assert page.rstrip().endswith("</html>")


def test_data_embeds_series_markers_and_events() -> None:
    """Cycle states become per-list series; decisions become markers and table rows."""
    records = [
        cycle(0, A=state(10), B=state(20, paused=True)),
        decision(1, "A", 10, 30, applied=True, mode="apply"),
        cycle(1, A=state(10, pulled=5), B=state(20, paused=True)),
        cycle(2, A=state(30, pulled=9), B=state(20, paused=False)),
    ]
    data = embedded(build_report(records, title="r", generated_at=NOW))
    camp = data["campaigns"][0]
    a, b = camp["lists"]
    assert a["name"] == "A"
    assert a["weight"] == [10, 10, 30]
    assert a["pulled"][-1] == 9
    assert b["paused_spans"] == [[a["t"][0], a["t"][0] + 120_000]]
    assert b["paused_ms"] == 120_000
    assert camp["markers"][0]["weight"] == 30
    assert data["events"][0]["weight"] == [10, 30]
    assert data["events"][0]["applied"] is True


# -- counts -------------------------------------------------------------------------


def test_counts_match_the_records() -> None:
    """Per campaign: cycles, decisions, applied, overrides, guardrail stops and errors."""
    records = simulated_log(days=2, step_minutes=10)
    data = collect(records)
    for camp in data.campaigns:
        mine = [r for r in records if r["campaign"] == camp["name"]]

        def count(event: str, mine: list[dict[str, Any]] = mine) -> int:
            return sum(r["event"] == event for r in mine)

        assert camp["counts"]["cycles"] == count("cycle")
        assert camp["counts"]["decisions"] == count("decision")
        assert camp["counts"]["applied"] == sum(
            r["event"] == "decision" and r["applied"] for r in mine
        )
        assert camp["counts"]["overrides"] == count("override")
        assert camp["counts"]["guardrails"] == count("guardrail")
        assert camp["counts"]["errors"] == count("error")
    assert data.total("overrides") == 2
    assert data.total("errors") == 1
    assert "2 campaigns, 8 lists" in data.summary_line()


def test_dry_run_repeats_fold_into_one_row() -> None:
    """The same proposal in consecutive cycles is one row; a cycle without it starts anew."""
    records = [
        decision(0, "A", 10, 30),
        cycle(0, A=state()),
        decision(1, "A", 10, 30, reason="Boosted again."),
        cycle(1, A=state()),
        decision(2, "A", 10, 30),
        cycle(2, A=state()),
        cycle(3, A=state()),
        decision(4, "A", 10, 30),
        cycle(4, A=state()),
    ]
    data = collect(records)
    rows = data.events
    assert [r["repeat"] for r in rows] == [3, 1]
    assert rows[0]["until"] == rows[0]["t"] + 2 * 60_000
    assert rows[0]["reason"] == "Boosted."
    assert data.total("decisions") == 4


def test_overrides_guardrails_and_errors_become_rows() -> None:
    """Every event kind shows in the table, with its reason."""
    base = {"ts": ts(0), "cycle_id": "c0", "campaign": "Sales"}
    records = [
        {
            "event": "override",
            **base,
            "list": "A",
            "expected": {"weight": 30, "paused": False},
            "found": {"weight": 5, "paused": False},
            "hold_until": ts(60),
            "reason": "Changed.",
        },
        {
            "event": "guardrail",
            **base,
            "guardrail": "no-reservable-list",
            "lists": ["A", "B"],
            "reason": "Would leave none.",
        },
        {"event": "error", **base, "error": "QM timed out", "kind": "read"},
    ]
    rows = collect(records).events
    assert [r["event"] for r in rows] == ["override", "guardrail", "error"]
    assert rows[0]["weight"] == [30, 5]
    assert "hold until" in rows[0]["reason"]
    assert rows[1]["list"] == "A, B"
    assert rows[1]["reason"] == "no-reservable-list: Would leave none."
    assert rows[2]["reason"] == "read: QM timed out"


def test_malformed_records_are_skipped() -> None:
    """Records without a time or campaign, or with odd fields, do not break the report."""
    records: list[dict[str, Any]] = [
        {"event": "cycle"},
        {"event": "decision", "ts": "yesterday", "campaign": "S"},
        {"event": "cycle", "ts": ts(0), "campaign": "S", "lists": {"A": "bad", "B": {}}},
        {"event": "decision", "ts": ts(0), "campaign": "S", "before": None, "rules": None},
    ]
    data = collect(records)
    assert data.total("cycles") == 1
    assert data.total("decisions") == 1
    assert data.events[0]["weight"] == [None, None]


# -- downsampling -------------------------------------------------------------------


def test_keep_indices_keeps_every_change_and_the_ends() -> None:
    """Thinning keeps each change of state and both ends, and about `limit` others."""
    rng = random.Random(3)
    states = []
    value = 0
    for _ in range(20_000):
        if rng.random() < 0.002:
            value = rng.randrange(5)
        states.append(value)
    kept = keep_indices(states, 1000)
    changes = [i for i in range(1, len(states)) if states[i] != states[i - 1]]
    assert set(changes) <= set(kept)
    assert kept[0] == 0
    assert kept[-1] == len(states) - 1
    assert len(kept) <= 1000 + len(changes) + 2
    assert keep_indices(states[:50], 1000) == list(range(50))


def test_a_week_of_minutes_is_thinned_and_steps_stay_exact() -> None:
    """10,080 one-minute cycles shrink to about max_points, and the weight line is exact."""
    start = datetime(2026, 4, 6, tzinfo=UTC)
    weights = [10 + (i // 777) % 4 * 10 for i in range(10_080)]
    records = [
        {
            "event": "cycle",
            "ts": (start + timedelta(minutes=i)).isoformat(),
            "cycle_id": str(i),
            "campaign": "S",
            "lists": {"A": state(w, paused=(i // 1000) % 2 == 1, pulled=i)},
        }
        for i, w in enumerate(weights)
    ]
    series = collect(records, max_points=2000).campaigns[0]["lists"][0]
    assert series["points"] == 10_080
    assert len(series["t"]) < 2100
    t0 = int(start.timestamp() * 1000)
    kept = dict(zip(series["t"], zip(series["weight"], series["paused"], strict=True), strict=True))
    current = None
    for i, w in enumerate(weights):
        current = kept.get(t0 + i * 60_000, current)
        assert current == (w, (i // 1000) % 2 == 1), i


def test_week_of_twenty_lists_stays_a_reasonable_size(tiny_plotly: None) -> None:
    """A week of 1-minute cycles over 20 lists makes a page of a few MB, not tens."""
    start = datetime(2026, 4, 6, tzinfo=UTC)
    names = [f"List {n:02d}" for n in range(20)]
    records = [
        {
            "event": "cycle",
            "ts": (start + timedelta(minutes=i)).isoformat(),
            "cycle_id": str(i),
            "campaign": "S",
            "lists": {n: state(10 + (i // 500) % 3, pulled=i) for n in names},
        }
        for i in range(10_080)
    ]
    page = build_report(records, title="week", generated_at=NOW)
    assert len(page.encode()) < 6_000_000


# -- empty and writing --------------------------------------------------------------


def test_empty_log_gives_a_valid_page_saying_nothing_yet() -> None:
    """No records: the page still renders and says there is nothing yet."""
    page = build_report([], title="Empty", generated_at=NOW)
    assert "Nothing yet" in page
    assert page.startswith("<!doctype html>")
    assert page.rstrip().endswith("</html>")
    assert embedded(page)["campaigns"] == []
    assert "no records" in collect([]).summary_line()


def test_missing_plotly_says_how_to_install(no_plotly: None) -> None:
    """Without plotly the error is one line naming the extra to install."""
    with pytest.raises(ReportDependencyError) as info:
        build_report([], title="r", generated_at=NOW)
    assert INSTALL_HINT in info.value.message
    assert "\n" not in info.value.message


def test_write_report_replaces_atomically(tmp_path: Path) -> None:
    """The file is replaced whole and no temp file is left behind."""
    target = tmp_path / "report.html"
    target.write_text("old")
    write_report(target, "<!doctype html>new")
    assert target.read_text() == "<!doctype html>new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_write_report_into_missing_folder_is_one_line(tmp_path: Path) -> None:
    """An unwritable destination is a MixerError saying where and what to do."""
    with pytest.raises(MixerError) as info:
        write_report(tmp_path / "nope" / "report.html", "x")
    assert "choose another -o path" in info.value.message
    assert "nope" in info.value.message


def test_simulated_log_lists_with_markup_in_their_names_round_trip() -> None:
    """A list name with <b>, & and quotes survives into the data unchanged."""
    data = embedded(
        build_report(simulated_log(days=1, step_minutes=15), title="r", generated_at=NOW)
    )
    names = {lst["name"] for c in data["campaigns"] for lst in c["lists"]}
    assert HTML_LIST in names


def test_config_changes_are_marked_on_the_timelines() -> None:
    """Start-ups and reloads (applied or refused) become the report's config markers."""
    from mixer.audit import fingerprint, loaded_record, refused_record

    now = datetime(2024, 4, 29, 8, 0, tzinfo=UTC)
    loaded = loaded_record(
        now,
        Path("config.yaml"),
        fingerprint(None, []),
        rule_count=4,
        campaigns=["Sales"],
        mode="apply",
    )
    refused = refused_record(now + timedelta(hours=1), Path("config.yaml"), ["x.yaml:3: bad"])
    data = collect([loaded.to_json(), refused.to_json()])
    assert [c["outcome"] for c in data.config] == ["loaded", "refused"]
    assert data.config[0]["text"].startswith(f"config loaded: rules {loaded.rules_hash[:12]}")
    assert "x.yaml:3: bad" in data.config[1]["text"]
    assert data.as_json()["config"] == data.config
