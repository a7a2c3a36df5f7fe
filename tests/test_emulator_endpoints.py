"""The emulator's AMO endpoints, in-process through httpx's WSGI transport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mixer.clock import FakeClock
from mixer.emulator.app import MAX_PAYLOAD_BYTES, EmulatorApp, create_app
from mixer.emulator.scenario import load_scenario

LISTS = "/qm/amoUpdateLists.do"
NUMBERS = "/qm/amoUpdateNumbers.do"


@pytest.fixture
def app() -> EmulatorApp:
    scenario = load_scenario("default")
    return create_app(scenario, clock=FakeClock(scenario.start), dialer=False)


@pytest.fixture
def client(app: EmulatorApp) -> httpx.Client:
    return httpx.Client(
        transport=httpx.WSGITransport(app=app), base_url="http://qm.test", auth=("robot", "bot")
    )


def post(client: httpx.Client, path: str, data: dict[str, Any]) -> httpx.Response:
    return client.post(path, data={"data": json.dumps(data)})


def lists_by_name(reply: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["listName"]: item for item in reply["lists"]}


def test_read_returns_envelope_with_seed_fields(client: httpx.Client) -> None:
    """A read replies with the campaign's lists, each carrying every field of the seed."""
    reply = post(client, LISTS, {"amoCampaignName": "Sales"}).json()
    assert reply["amoCampaignName"] == "Sales"
    assert reply["errors"] == []
    assert isinstance(reply["durationMs"], int)
    item = lists_by_name(reply)["Recalls Apr 24"]
    assert set(item) == {
        "listName",
        "listNotes",
        "weight",
        "listState",
        "dialerState",
        "dialerCanReserve",
        "nNumbersAdded",
        "nNumbersCompleted",
        "nNumbersPulled",
        "lastPull",
    }
    assert item["nNumbersAdded"] == 546
    assert item["nNumbersCompleted"] == 93
    assert item["listState"] == "open"
    assert "deadline: 2024-04-30 18:00" in item["listNotes"]


def test_get_with_query_works_like_post(client: httpx.Client) -> None:
    """GET with the query parameter `data` answers the same listing as POST."""
    data = json.dumps({"amoCampaignName": "Sales"})
    via_get = client.get(LISTS, params={"data": data}).json()
    via_post = client.post(LISTS, data={"data": data}).json()
    assert via_get["lists"] == via_post["lists"]


def test_json_body_is_accepted(client: httpx.Client) -> None:
    """A JSON body carrying `data` is read like the form field."""
    reply = client.post(LISTS, json={"data": {"amoCampaignName": "Sales"}}).json()
    assert "Recalls Apr 24" in lists_by_name(reply)


def test_multipart_body_is_accepted(client: httpx.Client) -> None:
    """A multipart form with a `data` field is read like the urlencoded form."""
    files = {"data": (None, json.dumps({"amoCampaignName": "Sales"}))}
    reply = client.post(LISTS, files=files).json()
    assert "Recalls Apr 24" in lists_by_name(reply)


def test_last_pull_empty_when_never_pulled(client: httpx.Client) -> None:
    """A list never pulled has an empty `lastPull`; one with history a local timestamp."""
    lists = lists_by_name(post(client, LISTS, {"amoCampaignName": "Sales"}).json())
    assert lists["Spring Promo"]["lastPull"] == ""
    assert lists["Recalls Apr 24"]["lastPull"] == "2024-04-22 08:00:00"


def test_update_applies_weight_and_paused_and_replies_listing(
    client: httpx.Client, app: EmulatorApp
) -> None:
    """An update changes weight and paused and the reply shows the state after it."""
    reply = post(
        client,
        LISTS,
        {
            "amoCampaignName": "Sales",
            "listUpdates": [{"listName": "Spring Promo", "weight": 33, "paused": True}],
        },
    ).json()
    item = lists_by_name(reply)["Spring Promo"]
    assert (item["weight"], item["listState"]) == (33, "paused")
    assert app.stats.applied_updates[("Sales", "Spring Promo")] == 1


def test_update_without_notes_leaves_notes_unchanged(client: httpx.Client) -> None:
    """`listNotes` omitted keeps the notes; given, it replaces them."""
    before = lists_by_name(post(client, LISTS, {"amoCampaignName": "Sales"}).json())
    update = {"listName": "B2B Leads", "weight": 7, "paused": False}
    after = lists_by_name(
        post(client, LISTS, {"amoCampaignName": "Sales", "listUpdates": [update]}).json()
    )
    assert after["B2B Leads"]["listNotes"] == before["B2B Leads"]["listNotes"]
    update["listNotes"] = "Changed"
    after = lists_by_name(
        post(client, LISTS, {"amoCampaignName": "Sales", "listUpdates": [update]}).json()
    )
    assert after["B2B Leads"]["listNotes"] == "Changed"


def test_update_for_unknown_list_creates_it(client: httpx.Client, app: EmulatorApp) -> None:
    """The documented trap: an update naming an unknown list creates an empty list."""
    reply = post(
        client,
        LISTS,
        {
            "amoCampaignName": "Sales",
            "listUpdates": [{"listName": "New list", "weight": 20, "paused": False}],
        },
    ).json()
    created = lists_by_name(reply)["New list"]
    assert created["weight"] == 20
    assert created["nNumbersAdded"] == 0
    assert created["dialerCanReserve"] == "closed"
    assert app.state.find_list("Sales", "New list") is not None


def test_invalid_update_entry_is_an_error_and_others_apply(client: httpx.Client) -> None:
    """A bad entry is reported in `errors`; the valid entries of the call still apply."""
    reply = post(
        client,
        LISTS,
        {
            "amoCampaignName": "Sales",
            "listUpdates": [
                {"listName": "B2B Leads", "weight": "lots", "paused": False},
                {"listName": "Spring Promo", "weight": 2, "paused": False},
            ],
        },
    ).json()
    assert reply["errors"][0]["listName"] == "B2B Leads"
    assert lists_by_name(reply)["Spring Promo"]["weight"] == 2
    assert lists_by_name(reply)["B2B Leads"]["weight"] == 5


def test_unknown_campaign_is_an_error_entry_with_status_200(client: httpx.Client) -> None:
    """An unknown campaign answers 200 with an `errors` entry and no lists."""
    response = post(client, LISTS, {"amoCampaignName": "Nope"})
    assert response.status_code == 200
    assert response.json()["lists"] == []
    assert "Nope" in response.json()["errors"][0]["error"]


def test_seed_numbers_example_adds_and_updates(client: httpx.Client, app: EmulatorApp) -> None:
    """The seed's amoUpdateNumbers call: a new number gets a fresh id, 9915 is updated."""
    reply = post(
        client,
        NUMBERS,
        {
            "amoCampaignName": "My Campaign",
            "listName": "Sale Recalls",
            "numbers": [
                {"number": "123a", "attrs": {"ax": "1"}},
                {"numberId": "9915", "number": "4567"},
            ],
        },
    ).json()
    assert reply["amoCampaignName"] == "My Campaign"
    assert reply["amoListName"] == "Sale Recalls"
    assert reply["errors"] == []
    new, updated = reply["numbers"]
    assert new["number"] == "123a"
    assert new["attrs"] == {"ax": "1"}
    assert new["error"] == ""
    assert new["numberId"] not in ("", "9915")
    assert updated == {
        "numberId": "9915",
        "number": "4567",
        "validFrom": "",
        "attrs": {},
        "error": "",
    }
    call_list = app.state.find_list("My Campaign", "Sale Recalls")
    assert call_list is not None
    assert call_list.added == 6
    assert call_list.numbers[9915].number == "4567"


def test_unknown_number_id_is_a_per_number_error(client: httpx.Client) -> None:
    """An unknown numberId lands in `errors` with its message; good numbers still write."""
    reply = post(
        client,
        NUMBERS,
        {
            "amoCampaignName": "My Campaign",
            "listName": "Sale Recalls",
            "numbers": [{"numberId": "424242", "number": "1"}, {"number": "2"}],
        },
    ).json()
    assert [n["number"] for n in reply["numbers"]] == ["2"]
    assert reply["errors"][0]["numberId"] == "424242"
    assert "Unknown numberId" in reply["errors"][0]["error"]


def test_valid_from_is_echoed_and_bad_valid_from_is_an_error(client: httpx.Client) -> None:
    """A validFrom in QM local format is kept; an unparsable one is a per-number error."""
    reply = post(
        client,
        NUMBERS,
        {
            "amoCampaignName": "My Campaign",
            "listName": "Sale Recalls",
            "numbers": [
                {"number": "1", "validFrom": "2024-04-23 10:20:30"},
                {"number": "2", "validFrom": "tomorrow"},
            ],
        },
    ).json()
    assert reply["numbers"][0]["validFrom"] == "2024-04-23 10:20:30"
    assert "validFrom" in reply["errors"][0]["error"]


def test_unknown_list_for_numbers_is_an_error(client: httpx.Client) -> None:
    """amoUpdateNumbers on a list that does not exist writes nothing and says why."""
    reply = post(
        client,
        NUMBERS,
        {"amoCampaignName": "My Campaign", "listName": "Nope", "numbers": [{"number": "1"}]},
    ).json()
    assert reply["numbers"] == []
    assert "Unknown list" in reply["errors"][0]["error"]


def test_adding_numbers_reopens_completed_list(client: httpx.Client, app: EmulatorApp) -> None:
    """A completed, closed list goes back to dialerState open and can reserve again."""
    call_list = app.state.find_list("My Campaign", "Sale Recalls")
    assert call_list is not None
    for _ in range(call_list.added):
        call_list.finalize(call_list.reserve(app.clock.now().timestamp()))
    before = post(client, LISTS, {"amoCampaignName": "My Campaign"}).json()["lists"][0]
    assert (before["dialerState"], before["dialerCanReserve"]) == ("completed", "closed")
    post(
        client,
        NUMBERS,
        {
            "amoCampaignName": "My Campaign",
            "listName": "Sale Recalls",
            "numbers": [{"number": "9"}],
        },
    )
    after = post(client, LISTS, {"amoCampaignName": "My Campaign"}).json()["lists"][0]
    assert (after["dialerState"], after["dialerCanReserve"]) == ("open", "open")
    assert after["nNumbersAdded"] == before["nNumbersAdded"] + 1


def test_missing_credentials_get_401_with_realm(app: EmulatorApp) -> None:
    """No credentials: 401 with the QueueMetrics basic realm."""
    no_auth = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://qm.test")
    response = no_auth.post(LISTS, data={"data": '{"amoCampaignName": "Sales"}'})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="QueueMetrics"'


def test_wrong_password_gets_401(client: httpx.Client) -> None:
    """A wrong password is 401, and the reply never echoes the password."""
    response = client.post(
        LISTS, data={"data": '{"amoCampaignName": "Sales"}'}, auth=("robot", "s3cret-x")
    )
    assert response.status_code == 401
    assert "s3cret-x" not in response.text


def test_user_without_usr_amo_gets_403(client: httpx.Client) -> None:
    """A valid user lacking the USR_AMO key is refused with 403."""
    response = client.post(
        LISTS, data={"data": '{"amoCampaignName": "Sales"}'}, auth=("nokey", "nokey")
    )
    assert response.status_code == 403
    assert "USR_AMO" in response.text


def test_custom_users_replace_the_defaults() -> None:
    """`users=` decides who may log in."""
    scenario = load_scenario("default")
    app = create_app(
        scenario, clock=FakeClock(scenario.start), dialer=False, users={"ops": ("pw", True)}
    )
    client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://qm.test")
    data = {"data": '{"amoCampaignName": "Sales"}'}
    assert client.post(LISTS, data=data, auth=("ops", "pw")).status_code == 200
    assert client.post(LISTS, data=data, auth=("robot", "bot")).status_code == 401


def test_payload_over_limit_gets_413(client: httpx.Client) -> None:
    """A body over 1,000,000 bytes is refused with 413 and an error body."""
    response = client.post(LISTS, content=b"data=" + b"x" * MAX_PAYLOAD_BYTES)
    assert response.status_code == 413
    assert "limit" in response.json()["errors"][0]["error"]


def test_payload_under_limit_is_served(client: httpx.Client) -> None:
    """A body just under the limit is processed normally."""
    notes = "n" * 900_000
    update = {"listName": "B2B Leads", "weight": 5, "paused": False, "listNotes": notes}
    response = post(client, LISTS, {"amoCampaignName": "Sales", "listUpdates": [update]})
    assert response.status_code == 200
    assert lists_by_name(response.json())["B2B Leads"]["listNotes"] == notes


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", ""])
def test_malformed_data_gets_400(client: httpx.Client, raw: str) -> None:
    """`data` that is not a JSON object is a 400 with an error message."""
    response = client.post(LISTS, data={"data": raw})
    assert response.status_code == 400
    assert response.json()["errors"][0]["error"]


def test_missing_data_gets_400(client: httpx.Client) -> None:
    """A call without `data` is a 400 that names the parameter."""
    response = client.post(LISTS, data={"other": "1"})
    assert response.status_code == 400
    assert "data" in response.json()["errors"][0]["error"]


def test_unknown_page_is_404(client: httpx.Client) -> None:
    """Paths outside the two endpoints are 404."""
    assert client.get("/qm/other.do").status_code == 404
    assert client.get("/elsewhere").status_code == 404


def test_stats_count_requests_and_writes(client: httpx.Client, app: EmulatorApp) -> None:
    """Stats count requests per endpoint, write calls, and entries per list."""
    post(client, LISTS, {"amoCampaignName": "Sales"})
    post(
        client,
        LISTS,
        {
            "amoCampaignName": "Sales",
            "listUpdates": [
                {"listName": "B2B Leads", "weight": 5, "paused": False},
                {"listName": "Spring Promo", "weight": 5, "paused": False},
            ],
        },
    )
    post(client, NUMBERS, {"amoCampaignName": "My Campaign", "listName": "Sale Recalls"})
    assert app.stats.requests == {"amoUpdateLists": 2, "amoUpdateNumbers": 1}
    assert app.stats.update_calls == 1
    assert app.stats.list_updates == {("Sales", "B2B Leads"): 1, ("Sales", "Spring Promo"): 1}
    app.stats.reset()
    assert app.stats.update_calls == 0


def test_last_pull_is_in_scenario_time_zone(app: EmulatorApp, client: httpx.Client) -> None:
    """`lastPull` is local wall time of the scenario's zone, not UTC."""
    call_list = app.state.find_list("Sales", "Spring Promo")
    assert call_list is not None
    call_list.reserve(app.scenario.start.timestamp() + 3600)  # 09:00 Zurich = 07:00 UTC
    lists = lists_by_name(post(client, LISTS, {"amoCampaignName": "Sales"}).json())
    assert lists["Spring Promo"]["lastPull"] == "2024-04-22 09:00:00"


def test_create_app_defaults() -> None:
    """create_app() serves the default scenario in real time from its start, with robot."""
    app = create_app()
    assert app.scenario.name == "default"
    assert app.dialer is not None
    assert abs((app.clock.now() - app.scenario.start).total_seconds()) < 60
    assert app.users["robot"] == ("bot", True)
