"""Faults the emulator injects: from Python and over its HTTP control page."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from mixer.clock import FakeClock
from mixer.emulator.app import EmulatorApp, create_app
from mixer.emulator.faults import FaultError
from mixer.emulator.scenario import load_scenario

LISTS = "/qm/amoUpdateLists.do"
NUMBERS = "/qm/amoUpdateNumbers.do"
FAULTS = "/qm/_emulator/faults"
READ = {"amoCampaignName": "Sales"}
WRITE = {
    "amoCampaignName": "Sales",
    "listUpdates": [{"listName": "Spring Promo", "weight": 77, "paused": True}],
}


@pytest.fixture
def app() -> EmulatorApp:
    scenario = load_scenario("default")
    return create_app(scenario, clock=FakeClock(scenario.start), dialer=False)


@pytest.fixture
def client(app: EmulatorApp) -> httpx.Client:
    return httpx.Client(
        transport=httpx.WSGITransport(app=app), base_url="http://qm.test", auth=("robot", "bot")
    )


def post(client: httpx.Client, data: dict[str, Any], path: str = LISTS) -> httpx.Response:
    return client.post(path, data={"data": json.dumps(data)})


def spring_promo(app: EmulatorApp) -> tuple[int, bool]:
    call_list = app.state.find_list("Sales", "Spring Promo")
    assert call_list is not None
    return call_list.weight, call_list.paused


def test_latency_sleeps_the_given_seconds(app: EmulatorApp, client: httpx.Client) -> None:
    """`latency` sleeps before answering (the sleep is swapped out here)."""
    slept: list[float] = []
    app.faults.sleep = slept.append
    app.faults.set("latency", seconds=2.5)
    assert post(client, READ).status_code == 200
    assert slept == [2.5]


def test_status_500(app: EmulatorApp, client: httpx.Client) -> None:
    """`status_500` answers an HTML 500 page."""
    app.faults.set("status_500")
    response = post(client, READ)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")


def test_unauthorized_401(app: EmulatorApp, client: httpx.Client) -> None:
    """`unauthorized_401` refuses good credentials with 401 and the realm header."""
    app.faults.set("unauthorized_401")
    response = post(client, READ)
    assert response.status_code == 401
    assert "QueueMetrics" in response.headers["WWW-Authenticate"]


def test_html_200(app: EmulatorApp, client: httpx.Client) -> None:
    """`html_200` answers a login page with status 200 (not JSON)."""
    app.faults.set("html_200")
    response = post(client, READ)
    assert response.status_code == 200
    assert response.text.lstrip().lower().startswith("<!doctype html>")
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_truncated_json(app: EmulatorApp, client: httpx.Client) -> None:
    """`truncated_json` answers the first half of a valid reply."""
    full = post(client, READ).content
    app.faults.set("truncated_json")
    cut = post(client, READ).content
    assert full.startswith(cut)
    assert len(cut) < len(full)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut)


def test_vanish_list_hides_the_list(app: EmulatorApp, client: httpx.Client) -> None:
    """`vanish_list` drops one list from the campaign's replies until cleared."""
    app.faults.set("vanish_list", campaign="Sales", list="B2B Leads")
    names = [item["listName"] for item in post(client, READ).json()["lists"]]
    assert "B2B Leads" not in names
    assert "Recalls Apr 24" in names
    app.faults.clear()
    names = [item["listName"] for item in post(client, READ).json()["lists"]]
    assert "B2B Leads" in names


def test_fail_writes_fails_writes_and_serves_reads(app: EmulatorApp, client: httpx.Client) -> None:
    """`fail_writes`: a call with listUpdates gets 500 and changes nothing; reads work."""
    app.faults.set("fail_writes")
    assert post(client, READ).status_code == 200
    assert post(client, WRITE).status_code == 500
    assert spring_promo(app) == (20, False)
    assert app.stats.update_calls == 1
    assert not app.stats.applied_updates


def test_api_errors_carry_errors_and_do_not_apply(app: EmulatorApp, client: httpx.Client) -> None:
    """`api_errors` answers 200 with an `errors` entry and leaves the lists unchanged."""
    app.faults.set("api_errors", message="Database is locked")
    reply = post(client, WRITE).json()
    assert reply["errors"] == [{"error": "Database is locked"}]
    assert spring_promo(app) == (20, False)


def test_ignore_writes_answers_ok_without_applying(app: EmulatorApp, client: httpx.Client) -> None:
    """`ignore_writes` answers 200 with the unchanged listing: a verify mismatch."""
    app.faults.set("ignore_writes")
    response = post(client, WRITE)
    assert response.status_code == 200
    item = next(i for i in response.json()["lists"] if i["listName"] == "Spring Promo")
    assert (item["weight"], item["listState"]) == (20, "open")
    assert spring_promo(app) == (20, False)


def test_times_limits_a_fault_to_the_next_requests(app: EmulatorApp, client: httpx.Client) -> None:
    """`times=2` affects the next two requests, then the fault is gone."""
    app.faults.set("status_500", times=2)
    statuses = [post(client, READ).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert app.faults.active() == []


def test_write_faults_count_only_writes(app: EmulatorApp, client: httpx.Client) -> None:
    """`fail_writes` with `times=1` lets reads through and fails exactly one write."""
    app.faults.set("fail_writes", times=1)
    assert post(client, READ).status_code == 200
    assert post(client, WRITE).status_code == 500
    assert post(client, WRITE).status_code == 200
    assert spring_promo(app) == (77, True)


def test_endpoint_limits_a_fault(app: EmulatorApp, client: httpx.Client) -> None:
    """A fault with `endpoint` leaves the other endpoint alone."""
    app.faults.set("status_500", endpoint="amoUpdateNumbers")
    assert post(client, READ).status_code == 200
    numbers = {"amoCampaignName": "My Campaign", "listName": "Sale Recalls"}
    assert post(client, numbers, NUMBERS).status_code == 500


def test_clear_one_kind(app: EmulatorApp) -> None:
    """`clear(kind)` switches off only that fault."""
    app.faults.set("status_500")
    app.faults.set("html_200")
    app.faults.clear("status_500")
    assert [fault.kind for fault in app.faults.active()] == ["html_200"]


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("nope", {}),
        ("latency", {}),
        ("vanish_list", {"campaign": "Sales"}),
        ("status_500", {"seconds": 1}),
        ("status_500", {"times": 0}),
        ("status_500", {"endpoint": "other"}),
    ],
)
def test_bad_fault_requests_are_refused(
    app: EmulatorApp, kind: str, options: dict[str, Any]
) -> None:
    """Unknown kinds, missing or unknown options are refused with a reason."""
    with pytest.raises(FaultError):
        app.faults.set(kind, **options)


def test_faults_over_http(app: EmulatorApp, client: httpx.Client) -> None:
    """POST to the control page sets a fault, GET lists it, DELETE clears it."""
    response = client.post(FAULTS, json={"kind": "status_500", "times": 1})
    assert response.status_code == 200
    assert response.json()["faults"][0]["kind"] == "status_500"
    assert post(client, READ).status_code == 500
    client.post(FAULTS, json={"kind": "html_200"})
    assert client.get(FAULTS).json()["faults"][0]["kind"] == "html_200"
    assert client.delete(FAULTS).json() == {"faults": []}
    assert post(client, READ).status_code == 200


def test_faults_page_needs_auth_and_valid_kind(app: EmulatorApp, client: httpx.Client) -> None:
    """The control page uses the same basic auth and refuses an unknown kind with 400."""
    anonymous = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://qm.test")
    assert anonymous.post(FAULTS, json={"kind": "status_500"}).status_code == 401
    response = client.post(FAULTS, json={"kind": "meteor"})
    assert response.status_code == 400
    assert "meteor" in response.json()["errors"][0]["error"]
    assert app.faults.active() == []
