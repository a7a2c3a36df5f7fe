"""Issue 12 item 13: output hygiene — names with control characters cannot forge rows or
escape sequences in any human-facing output; decomposed (NFD) names match composed globs;
a glob matching no list is warned about; a sub-minute hold is not "0 min"."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from qm_stub import QMStub, Reply, listing, serve_stub, wire_list
from test_reconcile import memory, snap

from mixer.cli import main
from mixer.engine.metadata import ListMetadata
from mixer.engine.names import glob_matches, glob_warnings
from mixer.printable import printable
from mixer.reconcile import reconcile_memory
from mixer.rule_loading import load_rules
from mixer.snapshot import CampaignSnapshot

NOW = datetime(2024, 4, 29, 8, 0, tzinfo=UTC)
EVIL = "Promo\nSales      Fake      10→99  no→no  boost\x1b[2J\u202e"
NFD = unicodedata.normalize("NFD", "Rückrufe Standby")


def test_printable_escapes_what_could_forge_output() -> None:
    """Newlines, ESC, C1 controls and bidi overrides become visible escapes."""
    assert printable("a\nb\x1b[2J\x9b\u202ec\td") == "a\\nb\\x1b[2J\\x9b\\u202ec\\td"
    assert printable("Rückrufe → B2B") == "Rückrufe → B2B"


def test_an_nfd_name_matches_an_nfc_glob_and_case_still_counts() -> None:
    """`Rückrufe*` matches the decomposed name; `B2B*` does not match `b2b leads`."""
    assert NFD != "Rückrufe Standby"
    assert glob_matches(NFD, "Rückrufe*")
    assert glob_matches("Rückrufe Standby", unicodedata.normalize("NFD", "Rückrufe*"))
    assert not glob_matches("b2b leads", "B2B*")


def test_rules_metadata_and_expressions_match_nfd_names(tmp_path: Path) -> None:
    """A rule's match, a lists: entry and matches() in a condition all see the NFD list."""
    path = tmp_path / "10-standby.yaml"
    path.write_text(
        "lists:\n  - {match: 'Rückrufe*', tags: [recall]}\n"
        "rules:\n  - name: standby\n    match: 'Rückrufe*'\n"
        "    when: \"matches(list, 'Rückrufe*')\"\n    set: {paused: false}\n",
        encoding="utf-8",
    )
    campaign = load_rules([path]).for_campaign("Sales")
    (rule,) = campaign.rules
    assert rule.matches(NFD, ())
    assert campaign.lists[0].matches(NFD)
    assert rule.when is not None
    assert rule.when({"list": NFD}) is True


def test_glob_warnings_name_the_glob_and_hint_at_case() -> None:
    """A glob matching nothing is warned about, with the name it misses only by case."""
    warnings = glob_warnings(
        "Sales", [("boost", ("B2B*", "Promo*"))], ["b2b leads", "Promo"], "this read"
    )
    assert warnings == [
        "warning: rule 'boost': match 'B2B*' matches no list of campaign 'Sales' in this "
        "read; matching is case-sensitive: did you mean 'b2b leads'?"
    ]


@pytest.mark.parametrize(
    ("hold", "text"),
    [
        (timedelta(seconds=30), "left alone for 30 s"),
        (timedelta(seconds=90), "left alone for 90 s"),
        (timedelta(minutes=15), "left alone for 15 min"),
        (timedelta(0), "not held (manual_hold is 0)"),
    ],
)
def test_a_sub_minute_hold_is_said_in_seconds(hold: timedelta, text: str) -> None:
    """The override reason never says "left alone for 0 min"."""
    snapshot = CampaignSnapshot("Sales", (snap("A", 5),), NOW)
    _, overrides = reconcile_memory(
        snapshot, {"A": memory(last_written_weight=10)}, {"A": ListMetadata()}, NOW, hold
    )
    assert overrides[0].reason.endswith(text + ".")


RULES = """
rules:
  - name: boost
    description: "Boost {list}."
    match: "*"
    when: unpulled > 0
    set: {weight: "base_weight * 2"}
  - name: b2b
    match: "B2B*"
    set: {weight: 50}
"""


def write_config(tmp_path: Path, url: str) -> Path:
    import yaml

    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "10-test.yaml").write_text(RULES, encoding="utf-8")
    config: dict[str, Any] = {
        "qm": {"url": url, "user": "robot", "timezone": "Europe/Zurich", "timeout": "5s"},
        "campaigns": ["Sales"],
        "rules": ["rules/*.yaml"],
        "state_dir": "state",
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_once_log_explain_and_check_print_no_raw_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A list named with a newline, ESC and a bidi override shows escaped in once, log,
    explain and check, never as a fake row; the unmatched B2B* glob is warned about."""
    monkeypatch.setenv("AMO_MIXER_QM_PASSWORD", "pw")
    stub = QMStub()
    stub.lists = [wire_list(EVIL), wire_list("b2b leads")]
    stub.script = lambda _request: Reply(body=listing("Sales", stub.lists))
    with serve_stub(stub):
        config = write_config(tmp_path, stub.url)
        # the stub takes no write: exit 1 ("did not take every update"), the log is written
        assert main(["once", "-c", str(config), "--apply"]) == 1
        once = capsys.readouterr()
        assert main(["log", "-c", str(config)]) == 0
        log = capsys.readouterr()
        assert main(["explain", "-c", str(config), "--campaign", "Sales", "--list", EVIL]) == 0
        explain = capsys.readouterr()
    assert main(["check", "-c", str(config)]) == 0
    check = capsys.readouterr()
    for name, out in (("once", once), ("log", log), ("explain", explain), ("check", check)):
        text = out.out + out.err
        assert "\x1b" not in text, name
        assert "\u202e" not in text, name
        assert "\nSales      Fake" not in text, name
    assert "Promo\\nSales" in once.out
    assert "Promo\\nSales" in log.out
    assert "Promo\\nSales" in explain.out
    assert "match 'B2B*' matches no list of campaign 'Sales' in this read" in explain.err
    assert "did you mean 'b2b leads'?" in check.out


def test_report_data_and_demo_lines_escape_names_and_reasons() -> None:
    """The HTML report's rows and the demo's decision lines carry escaped names."""
    import io

    from mixer.report.data import collect
    from mixer.simulate.live import DecisionPrinter

    record = {
        "event": "decision",
        "ts": "2024-04-29T08:00:00+00:00",
        "campaign": "Sales",
        "list": EVIL,
        "mode": "apply",
        "before": {"weight": 10, "paused": False},
        "after": {"weight": 20, "paused": False},
        "rules": ["boost"],
        "reason": f"Boost {EVIL}.",
        "applied": True,
    }
    (row,) = collect([record]).events
    assert "\n" not in row["list"] + row["reason"]
    assert "\x1b" not in row["list"] + row["reason"]

    class Result:
        campaign = "Sales"
        error = f"QM lost {EVIL}"
        plan = None

    stream = io.StringIO()
    DecisionPrinter(ZoneInfo("UTC"), stream, color=False)(Result())  # type: ignore[arg-type]
    assert stream.getvalue().count("\n") == 1
    assert "\x1b" not in stream.getvalue()
