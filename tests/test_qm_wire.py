"""The AMO wire format: lenient reply parsing and request bodies (no HTTP here)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixer.qm.errors import QMApiError, QMBadReplyError
from mixer.qm.wire import (
    MAX_BODY_BYTES,
    find_lists,
    form_body,
    list_update_bodies,
    number_bodies,
    parse_last_pull,
    parse_lists_reply,
    reply_errors,
    snippet,
)
from mixer.snapshot import ListUpdate

TZ = ZoneInfo("Europe/Zurich")


def wire_list(name: str = "Recalls Apr 24", **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "listName": name,
        "listNotes": "To be completed by end of April",
        "weight": 10,
        "listState": "open",
        "dialerState": "open",
        "dialerCanReserve": "open",
        "nNumbersAdded": 546,
        "nNumbersCompleted": 93,
        "nNumbersPulled": 118,
        "lastPull": "2024-04-10 12:30:10",
    }
    item.update(fields)
    return {k: v for k, v in item.items() if v is not _ABSENT}


_ABSENT: Any = object()


def parse(document: Any) -> Any:
    return parse_lists_reply(json.dumps(document).encode(), timezone=TZ, campaign="Sales")


def decoded(body: bytes) -> Any:
    return json.loads(parse_qs(body.decode("ascii"))["data"][0])


# --- envelopes ----------------------------------------------------------------------


def test_emulator_envelope_is_read() -> None:
    """The emulator's {"amoCampaignName", "lists", "errors", "durationMs"} envelope parses."""
    lists = parse(
        {"amoCampaignName": "Sales", "lists": [wire_list(), wire_list("B")], "errors": []}
    )
    assert [item.name for item in lists] == ["Recalls Apr 24", "B"]
    first = lists[0]
    assert (first.weight, first.added, first.completed, first.pulled) == (10, 546, 93, 118)
    assert first.notes == "To be completed by end of April"
    assert first.last_pull == datetime(2024, 4, 10, 12, 30, 10, tzinfo=TZ)


def test_top_level_array_is_read() -> None:
    """A bare JSON array of list objects (the vendor page's wording) parses."""
    assert [item.name for item in parse([wire_list("A"), wire_list("B")])] == ["A", "B"]


def test_lists_under_any_key_are_found() -> None:
    """An object whose array of list objects sits under an undocumented key parses."""
    document = {"campaign": "Sales", "tags": ["x"], "result": [wire_list("A")], "errors": []}
    assert [item.name for item in parse(document)] == ["A"]


def test_lists_key_is_case_insensitive_and_preferred() -> None:
    """A key spelled "Lists" wins over another array of objects."""
    document = {"other": [{"a": 1}], "Lists": [wire_list("A")]}
    assert [item.name for item in parse(document)] == ["A"]


def test_empty_lists_array_is_a_campaign_without_lists() -> None:
    """An empty "lists" array is a valid reply with no lists, not an error."""
    assert parse({"amoCampaignName": "Sales", "lists": [], "errors": []}) == ()


def test_errors_array_is_never_taken_for_the_lists() -> None:
    """Without a lists array, "errors" objects are reported as errors, not parsed as lists."""
    with pytest.raises(QMApiError) as caught:
        parse({"errors": [{"error": "Unknown campaign 'Sales'"}]})
    assert caught.value.errors == ("Unknown campaign 'Sales'",)


def test_find_lists_returns_none_when_no_array() -> None:
    """A reply with no array at all yields None (the client re-reads or reports it)."""
    assert find_lists({"amoCampaignName": "Sales", "durationMs": 3}) is None
    assert find_lists("text") is None


def test_reply_without_lists_is_a_bad_reply() -> None:
    """parse_lists_reply names the missing array when a reply holds no lists."""
    with pytest.raises(QMBadReplyError, match="without an array of lists"):
        parse({"ok": True})


def test_unknown_fields_are_ignored() -> None:
    """Fields the API page does not list are ignored, in the list and the envelope."""
    lists = parse({"lists": [wire_list(listId=7, color="red", extra={"a": 1})], "v": 2})
    assert lists[0].name == "Recalls Apr 24"


# --- list objects -------------------------------------------------------------------


def test_numbers_may_arrive_as_strings() -> None:
    """Counts and weight sent as strings ("546") are read as integers."""
    item = wire_list(
        weight="12", nNumbersAdded="546", nNumbersCompleted=" 93 ", nNumbersPulled="118"
    )
    snap = parse([item])[0]
    assert (snap.weight, snap.added, snap.completed, snap.pulled) == (12, 546, 93, 118)


@pytest.mark.parametrize(
    ("list_state", "can_reserve", "dialer", "paused", "reservable", "completed"),
    [
        ("OPEN", "Open", "COMPLETED", False, True, True),
        ("Paused", "CLOSED", "open", True, False, False),
        (" paused ", " open", "Open ", True, True, False),
    ],
)
def test_state_words_compare_case_insensitively(
    list_state: str,
    can_reserve: str,
    dialer: str,
    paused: bool,
    reservable: bool,
    completed: bool,
) -> None:
    """State words in any case or padding map to the same paused/reservable/completed."""
    snap = parse(
        [wire_list(listState=list_state, dialerCanReserve=can_reserve, dialerState=dialer)]
    )[0]
    assert (snap.paused, snap.can_reserve, snap.completed_state) == (paused, reservable, completed)


def test_unknown_state_words_are_kept_lower_cased() -> None:
    """An unknown state word is kept (lower-cased) and counts as neither paused nor open."""
    snap = parse([wire_list(listState="Suspended", dialerCanReserve="MAYBE")])[0]
    assert snap.list_state == "suspended"
    assert snap.can_reserve_state == "maybe"
    assert not snap.paused
    assert not snap.can_reserve


def test_null_notes_read_as_empty() -> None:
    """listNotes null or absent reads as an empty string."""
    assert parse([wire_list(listNotes=None)])[0].notes == ""
    assert parse([wire_list(listNotes=_ABSENT)])[0].notes == ""


@pytest.mark.parametrize("value", ["", "   ", None, _ABSENT, "0000-00-00 00:00:00"])
def test_never_pulled_reads_as_none(value: Any) -> None:
    """lastPull empty, blank, null, absent or the zero date means never pulled."""
    assert parse([wire_list(lastPull=value)])[0].last_pull is None


def test_last_pull_is_aware_in_the_qm_time_zone() -> None:
    """lastPull is local QM time: in summer Zurich 12:30:10 is 10:30:10 UTC."""
    when = parse([wire_list(lastPull="2024-07-01 12:30:10")])[0].last_pull
    assert when is not None
    assert when.tzinfo == TZ
    assert when.utcoffset() is not None
    assert when.isoformat() == "2024-07-01T12:30:10+02:00"


def test_last_pull_accepts_iso_8601() -> None:
    """An ISO 8601 lastPull with an offset is converted to the QM time zone."""
    assert parse_last_pull("2024-04-10T10:30:10+00:00", TZ) == datetime(
        2024, 4, 10, 12, 30, 10, tzinfo=TZ
    )


@pytest.mark.parametrize("value", ["10/04/2024 12:30", "yesterday", "2024-13-40 99:00:00"])
def test_unreadable_last_pull_names_list_and_field(value: str) -> None:
    """An unreadable lastPull is a bad reply naming the list and the field."""
    with pytest.raises(QMBadReplyError) as caught:
        parse([wire_list("Recalls Apr 24", lastPull=value)])
    assert "list 'Recalls Apr 24'" in str(caught.value)
    assert "lastPull" in str(caught.value)


@pytest.mark.parametrize("value", [_ABSENT, "", None, 42])
def test_missing_or_bad_list_name_names_the_position(value: Any) -> None:
    """A list object without a usable listName is a bad reply naming its position."""
    with pytest.raises(QMBadReplyError) as caught:
        parse([wire_list("A"), wire_list(listName=value)])
    assert "list #2" in str(caught.value)
    assert "listName" in str(caught.value)


@pytest.mark.parametrize(
    "field", ["weight", "listState", "dialerState", "dialerCanReserve", "nNumbersAdded"]
)
def test_missing_documented_field_names_list_and_field(field: str) -> None:
    """A documented field missing is a bad reply (never a default that could mislead rules)."""
    with pytest.raises(QMBadReplyError) as caught:
        parse([wire_list("B2B", **{field: _ABSENT})])
    assert f"list 'B2B' without the field '{field}'" in str(caught.value)


@pytest.mark.parametrize("value", ["ten", 10.5, True, None])
def test_bad_count_names_list_and_field(value: Any) -> None:
    """A weight that is not an integer (text, fraction, boolean, null) is a bad reply."""
    with pytest.raises(QMBadReplyError) as caught:
        parse([wire_list("B2B", weight=value)])
    assert "list 'B2B' with a bad 'weight'" in str(caught.value)


def test_plain_and_coerced_list_objects_read_the_same() -> None:
    """A list needing no coercion reads as the same snapshot as one the model coerces."""
    plain = wire_list("Ünïcode", listState=" Paused ", dialerCanReserve="CLOSED", listNotes=None)
    coerced = dict(plain, weight="10", nNumbersAdded="546", nNumbersPulled=" 118 ")
    assert parse([plain]) == parse([coerced])
    assert parse([plain])[0].list_state == "paused"
    assert parse([plain])[0].notes == ""


def test_list_name_that_is_not_valid_unicode_is_a_bad_reply() -> None:
    """A listName holding a lone surrogate (possible in JSON) is a bad reply naming it."""
    with pytest.raises(QMBadReplyError, match=r"with a bad 'listName'"):
        parse([wire_list("Bad \ud800")])


def test_list_entry_that_is_not_an_object_is_a_bad_reply() -> None:
    """A scalar inside the lists array is a bad reply naming its position."""
    with pytest.raises(QMBadReplyError, match=r"list #1 that is not an object"):
        parse(["Recalls"])


def test_html_page_is_a_bad_reply_with_its_first_bytes() -> None:
    """A body that is not JSON reports its first bytes, escaped, on one line."""
    page = b"<!DOCTYPE html>\n<html><head><title>QueueMetrics - Login</title>" + b"x" * 500
    with pytest.raises(QMBadReplyError) as caught:
        parse_lists_reply(page, timezone=TZ, campaign="Sales")
    message = str(caught.value)
    assert "not JSON" in message
    assert '"<!DOCTYPE html>\\n<html><head><title>QueueMetrics - Login' in message
    assert "x" * 200 not in message
    assert "\n" not in message


def test_truncated_json_is_a_bad_reply() -> None:
    """JSON cut in the middle is reported as broken JSON with where it broke."""
    body = json.dumps({"lists": [wire_list(), wire_list("B")]}).encode()
    with pytest.raises(QMBadReplyError, match=r"broken JSON .*, char \d+ of \d+") as caught:
        parse_lists_reply(body[: len(body) // 2], timezone=TZ, campaign="Sales")
    assert "campaign 'Sales'" in str(caught.value)


def test_api_errors_are_listed() -> None:
    """errors entries (objects or strings) become QMApiError with one line each."""
    document = {
        "lists": [wire_list()],
        "errors": [{"listName": "X", "error": "weight must be an integer"}, "boom", ""],
    }
    with pytest.raises(QMApiError) as caught:
        parse(document)
    assert caught.value.errors == ("list 'X': weight must be an integer", "boom")
    assert "2 errors: list 'X': weight must be an integer; boom" in str(caught.value)


def test_reply_errors_skips_empty_entries() -> None:
    """Empty errors entries (and an empty "errors") are not errors."""
    assert reply_errors({"errors": [{"error": ""}, None, " "]}) == ()
    assert reply_errors({"errors": []}) == ()
    assert reply_errors([{"errors": ["x"]}]) == ()


def test_snippet_is_one_escaped_line() -> None:
    """The snippet is a quoted, escaped single line of the first 120 characters."""
    text = snippet(b"line1\nline2\r\t\x00\xff" + b"y" * 300)
    assert text.startswith('"line1\\nline2\\r\\t\\u0000\\ufffd')
    assert text.endswith('"...')
    assert "\n" not in text
    assert snippet(b"") == "an empty body"


# --- request bodies -----------------------------------------------------------------


def test_form_body_is_data_field_with_json() -> None:
    """A request body is the single form field ``data`` holding the JSON document."""
    body = form_body({"amoCampaignName": "Sales & Co", "x": "é"})
    assert body.startswith(b"data=")
    assert decoded(body) == {"amoCampaignName": "Sales & Co", "x": "é"}


def test_update_entries_always_carry_weight_and_paused_notes_only_when_set() -> None:
    """weight and paused are always sent; listNotes only when notes is not None."""
    (body,) = list_update_bodies(
        "Sales", [ListUpdate("A", 5, False), ListUpdate("B", 0, True, notes="")]
    )
    assert decoded(body) == {
        "amoCampaignName": "Sales",
        "listUpdates": [
            {"listName": "A", "weight": 5, "paused": False},
            {"listName": "B", "weight": 0, "paused": True, "listNotes": ""},
        ],
    }


def test_large_updates_split_under_the_limit_in_order() -> None:
    """Updates with long notes split into several bodies, each under 900,000 bytes."""
    updates = [ListUpdate(f"L{i}", i, i % 2 == 0, notes="n" * 150_000) for i in range(20)]
    bodies = list_update_bodies("Sales", updates)
    assert len(bodies) >= 4
    assert all(len(body) < MAX_BODY_BYTES for body in bodies)
    sent = [entry["listName"] for body in bodies for entry in decoded(body)["listUpdates"]]
    assert sent == [f"L{i}" for i in range(20)]


def test_split_packs_exactly_to_the_limit() -> None:
    """Packing is exact: a body may come within a byte of the limit, never reach it."""
    updates = [ListUpdate(f"L{i}", 1, False, notes="é" * 50) for i in range(40)]
    (single,) = list_update_bodies("Sales", updates, limit=10_000_000)
    bodies = list_update_bodies("Sales", updates, limit=len(single))
    assert len(bodies) == 2
    assert all(len(body) < len(single) for body in bodies)
    assert list_update_bodies("Sales", updates, limit=len(single) + 1) == [single]


def test_one_update_too_large_alone_is_refused() -> None:
    """An update that cannot fit a body on its own raises ValueError naming the list."""
    with pytest.raises(ValueError, match="list 'Huge' alone needs"):
        list_update_bodies("Sales", [ListUpdate("Huge", 1, False, notes="n" * MAX_BODY_BYTES)])


def test_number_bodies_split_and_keep_the_envelope() -> None:
    """Numbers split into several amoUpdateNumbers bodies, each with campaign and list."""
    numbers = [{"number": f"{i:09d}", "attrs": {"note": "a" * 1000}} for i in range(30)]
    bodies = number_bodies({"amoCampaignName": "C", "listName": "L"}, numbers, limit=10_000)
    assert len(bodies) > 1
    assert all(len(body) < 10_000 for body in bodies)
    documents = [decoded(body) for body in bodies]
    assert {(d["amoCampaignName"], d["listName"]) for d in documents} == {("C", "L")}
    assert [n for d in documents for n in d["numbers"]] == numbers


_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["open", "paused", " OPEN ", "closed", "Completed", "7", ""]),
)
_LAST_PULLS = st.one_of(
    st.none(),
    st.sampled_from(["", "   ", "0000-00-00 00:00:00", "2024-4-2 8:01:02", "garbage", 7]),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)).map(
        lambda d: d.strftime("%Y-%m-%d %H:%M:%S")
    ),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)).map(
        lambda d: d.isoformat()
    ),
)


@settings(max_examples=400, deadline=None)
@given(
    overrides=st.dictionaries(st.sampled_from(sorted(wire_list())), _ANY_VALUE, max_size=3),
    last_pull=_LAST_PULLS,
    drop=st.sets(st.sampled_from(["listNotes", "weight", "lastPull", "dialerState"]), max_size=1),
)
def test_any_list_object_gives_a_snapshot_or_one_line_error(
    overrides: dict[str, Any], last_pull: Any, drop: set[str]
) -> None:
    """Whatever QM sends for a list, parsing gives a snapshot (states lower-cased, counters
    as integers) or one line naming the problem: never another exception."""
    from mixer.qm.wire import ReplyContext, parse_list

    item = {**wire_list(lastPull=last_pull), **overrides}
    for key in drop:
        item.pop(key, None)
    context = ReplyContext("QM at qm.test", "amoUpdateLists", "Sales")
    refused: str | None = None
    try:
        parsed = parse_list(item, 0, TZ, context)
    except QMBadReplyError as exc:
        refused = exc.message
    if refused is not None:
        assert "\n" not in refused
        assert refused.startswith("QM at qm.test sent")
        return
    assert isinstance(parsed.weight, int)
    assert parsed.list_state == parsed.list_state.strip().lower()
    assert parsed.last_pull is None or parsed.last_pull.tzinfo is not None
