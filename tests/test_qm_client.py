"""QMClient over httpx.MockTransport: requests, statuses, retries, refusals, secrecy."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus
from zoneinfo import ZoneInfo

import httpx
import pytest
import stamina

from mixer.errors import ConfigError, MixerError
from mixer.qm import QMClient
from mixer.qm.errors import (
    QMApiError,
    QMAuthError,
    QMBadReplyError,
    QMError,
    QMRefusedUpdateError,
    QMUnreachableError,
)
from mixer.qm.wire import MAX_BODY_BYTES
from mixer.snapshot import CampaignSnapshot, ListSnapshot, ListUpdate

TZ = ZoneInfo("Europe/Zurich")
NOW = datetime(2024, 4, 22, 8, 0, tzinfo=UTC)
USER = "robot"
PASSWORD = "s3cr:t/p@ss wörd+1"
SECRET_FORMS = (
    PASSWORD,
    quote(PASSWORD, safe=""),
    quote_plus(PASSWORD),
    base64.b64encode(PASSWORD.encode()).decode(),
    base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
)
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def _retries_without_waiting() -> Iterator[None]:
    """Retries keep the client's attempt count but never sleep."""
    with stamina.set_testing(True, attempts=100, cap=True):
        yield


def wire_list(
    name: str, weight: int | str = 10, state: str = "open", **extra: Any
) -> dict[str, Any]:
    return {
        "listName": name,
        "listNotes": "",
        "weight": weight,
        "listState": state,
        "dialerState": "open",
        "dialerCanReserve": "open",
        "nNumbersAdded": 100,
        "nNumbersCompleted": 10,
        "nNumbersPulled": 20,
        "lastPull": "2024-04-22 09:59:00",
        **extra,
    }


def listing(*lists: dict[str, Any]) -> httpx.Response:
    return httpx.Response(
        200, json={"amoCampaignName": "Sales", "lists": list(lists), "errors": [], "durationMs": 1}
    )


class FakeQM:
    """A MockTransport handler that records every request and answers in turn."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)

    def documents(self) -> list[Any]:
        return [json.loads(parse_qs(r.content.decode())["data"][0]) for r in self.requests]


def client_for(qm: FakeQM, **options: Any) -> QMClient:
    return QMClient(
        "http://127.0.0.1:8080/qm",
        USER,
        PASSWORD,
        timezone=TZ,
        transport=httpx.MockTransport(qm),
        **options,
    )


def snapshot(*names: str, campaign: str = "Sales") -> CampaignSnapshot:
    lists = tuple(
        ListSnapshot(name, "", 10, "open", "open", "open", 100, 10, 20, None) for name in names
    )
    return CampaignSnapshot(campaign, lists, NOW)


# --- the request --------------------------------------------------------------------


def test_read_is_a_form_encoded_post_with_basic_auth() -> None:
    """A read POSTs form field data={"amoCampaignName": ...} with basic auth, no query."""
    qm = FakeQM(listing(wire_list("A")))
    client_for(qm).read_lists("Sales", now=NOW)
    (request,) = qm.requests
    assert request.method == "POST"
    assert str(request.url) == "http://127.0.0.1:8080/qm/amoUpdateLists.do"
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert qm.documents() == [{"amoCampaignName": "Sales"}]


def test_base_url_trailing_slash_is_tolerated() -> None:
    """A base URL ending in / still calls <base>/amoUpdateLists.do."""
    qm = FakeQM(listing())
    client = QMClient(
        "http://qm.test/qm/", USER, PASSWORD, timezone=TZ, transport=httpx.MockTransport(qm)
    )
    client.read_lists("Sales", now=NOW)
    assert str(qm.requests[0].url) == "http://qm.test/qm/amoUpdateLists.do"


def test_read_returns_snapshot_stamped_now() -> None:
    """read_lists maps the reply to ListSnapshots stamped with the cycle's now."""
    qm = FakeQM(listing(wire_list("A", weight="7", state="PAUSED")))
    snap = client_for(qm).read_lists("Sales", now=NOW)
    assert snap.campaign == "Sales"
    assert snap.read_at == NOW
    (item,) = snap.lists
    assert (item.name, item.weight, item.paused) == ("A", 7, True)
    assert item.last_pull == datetime(2024, 4, 22, 9, 59, tzinfo=TZ)


def test_update_sends_weight_and_paused_and_notes_only_when_set() -> None:
    """An update sends listUpdates with weight and paused always, listNotes only if set."""
    qm = FakeQM(listing(wire_list("A", 5), wire_list("B", 0, "paused")))
    client_for(qm).update_lists(
        "Sales",
        [ListUpdate("A", 5, False), ListUpdate("B", 0, True, notes="deadline: 2024-04-30")],
        read=snapshot("A", "B"),
    )
    assert qm.documents() == [
        {
            "amoCampaignName": "Sales",
            "listUpdates": [
                {"listName": "A", "weight": 5, "paused": False},
                {
                    "listName": "B",
                    "weight": 0,
                    "paused": True,
                    "listNotes": "deadline: 2024-04-30",
                },
            ],
        }
    ]


def test_update_returns_reply_listing_with_read_time() -> None:
    """update_lists returns the listing QM answered, stamped with the read's time."""
    qm = FakeQM(listing(wire_list("A", 30)))
    reply = client_for(qm).update_lists("Sales", [ListUpdate("A", 30, False)], read=snapshot("A"))
    assert reply.read_at == NOW
    assert reply.get("A") is not None
    assert reply.lists[0].weight == 30


def test_update_rereads_when_the_reply_is_no_listing() -> None:
    """A write reply without lists is followed by one read, whose listing is returned."""
    qm = FakeQM(httpx.Response(200, json={"errors": []}), listing(wire_list("A", 30)))
    reply = client_for(qm).update_lists("Sales", [ListUpdate("A", 30, False)], read=snapshot("A"))
    assert [list(d) for d in qm.documents()] == [
        ["amoCampaignName", "listUpdates"],
        ["amoCampaignName"],
    ]
    assert reply.lists[0].weight == 30


def test_empty_updates_make_no_call() -> None:
    """No updates: no HTTP call, and the read snapshot comes back unchanged."""
    qm = FakeQM(listing())
    read = snapshot("A")
    assert client_for(qm).update_lists("Sales", [], read=read) is read
    assert qm.requests == []


# --- refusals -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "A ", " A", "New list", "Ä"])
def test_unread_name_is_refused_without_any_call(name: str) -> None:
    """An update for a name not read byte-for-byte is refused before any HTTP call."""
    qm = FakeQM(listing(wire_list("A")))
    with pytest.raises(QMRefusedUpdateError) as caught:
        client_for(qm).update_lists(
            "Sales", [ListUpdate("A", 1, False), ListUpdate(name, 1, False)], read=snapshot("A")
        )
    assert qm.requests == []
    assert f"'{name}'" in str(caught.value)
    assert "would create it" in str(caught.value)
    assert caught.value.campaign == "Sales"


def test_snapshot_of_another_campaign_is_refused() -> None:
    """Updating campaign X with a snapshot read for campaign Y is refused without a call."""
    qm = FakeQM(listing())
    with pytest.raises(QMRefusedUpdateError, match="read for campaign 'Other'"):
        client_for(qm).update_lists(
            "Sales", [ListUpdate("A", 1, False)], read=snapshot("A", campaign="Other")
        )
    assert qm.requests == []


def test_two_updates_for_one_list_are_refused() -> None:
    """Two updates for the same list in one call are refused without a call."""
    qm = FakeQM(listing())
    with pytest.raises(QMRefusedUpdateError, match="more than one update for list 'A'"):
        client_for(qm).update_lists(
            "Sales", [ListUpdate("A", 1, False), ListUpdate("A", 2, False)], read=snapshot("A")
        )
    assert qm.requests == []


def test_update_too_large_alone_is_refused_without_any_call() -> None:
    """An update whose notes alone exceed the body limit is refused, nothing sent."""
    qm = FakeQM(listing())
    huge = ListUpdate("A", 1, False, notes="n" * MAX_BODY_BYTES)
    with pytest.raises(QMRefusedUpdateError, match="list 'A' alone needs"):
        client_for(qm).update_lists("Sales", [huge], read=snapshot("A"))
    assert qm.requests == []


def test_large_update_is_split_into_calls_under_the_limit() -> None:
    """Long listNotes split listUpdates over several POSTs, each body < 900,000 bytes."""
    names = [f"L{i}" for i in range(20)]
    qm = FakeQM(listing(*(wire_list(name, 3) for name in names)))
    updates = [ListUpdate(name, 3, False, notes="n" * 100_000) for name in names]
    reply = client_for(qm).update_lists("Sales", updates, read=snapshot(*names))
    assert len(qm.requests) >= 3
    assert all(len(r.content) < MAX_BODY_BYTES for r in qm.requests)
    sent = [u["listName"] for d in qm.documents() for u in d["listUpdates"]]
    assert sent == names
    assert reply.names == frozenset(names)


# --- statuses and retries -----------------------------------------------------------


def test_401_names_host_user_endpoint_campaign_and_what_to_do() -> None:
    """HTTP 401 -> QMAuthError naming host, user, status, endpoint, campaign; no retry."""
    qm = FakeQM(httpx.Response(401, json={"errors": [{"error": "bad user name or password"}]}))
    with pytest.raises(QMAuthError) as caught:
        client_for(qm).read_lists("Sales", now=NOW)
    assert str(caught.value) == (
        "QM at 127.0.0.1:8080 refused the credentials for user 'robot' "
        "(HTTP 401, amoUpdateLists, campaign 'Sales'): check qm.user and the password"
    )
    assert (caught.value.status, caught.value.endpoint, caught.value.campaign) == (
        401,
        "amoUpdateLists",
        "Sales",
    )
    assert len(qm.requests) == 1


def test_403_says_the_user_lacks_usr_amo() -> None:
    """HTTP 403 -> QMAuthError saying the user lacks the security key USR_AMO."""
    qm = FakeQM(httpx.Response(403, text="Forbidden"))
    with pytest.raises(QMAuthError, match=r"HTTP 403.*lacks the security key USR_AMO"):
        client_for(qm).read_lists("Sales", now=NOW)


def test_404_points_at_qm_url() -> None:
    """HTTP 404 -> QMBadReplyError naming the path and telling to check qm.url."""
    qm = FakeQM(httpx.Response(404, text="<html>Not Found</html>"))
    with pytest.raises(QMBadReplyError, match=r"no page /qm/amoUpdateLists.do .*check qm.url"):
        client_for(qm).read_lists("Sales", now=NOW)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413, 422])
def test_4xx_is_never_retried(status: int) -> None:
    """A 4xx answer to a read is reported after exactly one call."""
    qm = FakeQM(httpx.Response(status, text="no"))
    with pytest.raises(QMError):
        client_for(qm).read_lists("Sales", now=NOW)
    assert len(qm.requests) == 1


def test_500_is_retried_then_fails_with_status_and_first_bytes() -> None:
    """A read answered 500 three times fails after 3 calls, naming the status and body."""
    qm = FakeQM(httpx.Response(500, text="<html><h1>HTTP Status 500</h1>NullPointer</html>"))
    with pytest.raises(QMBadReplyError) as caught:
        client_for(qm).read_lists("Sales", now=NOW)
    assert len(qm.requests) == 3
    message = str(caught.value)
    assert "HTTP 500" in message
    assert "after 3 attempts" in message
    assert '"<html><h1>HTTP Status 500</h1>NullPointer</html>"' in message
    assert caught.value.status == 500


def test_500_then_success_returns_the_lists() -> None:
    """A transient 500 followed by a good reply yields the lists after 2 calls."""
    qm = FakeQM(httpx.Response(503, text="busy"), listing(wire_list("A")))
    assert client_for(qm).read_lists("Sales", now=NOW).names == {"A"}
    assert len(qm.requests) == 2


def test_429_is_retried() -> None:
    """HTTP 429 is retried like a 5xx."""
    qm = FakeQM(httpx.Response(429, text="slow down"), listing(wire_list("A")))
    assert client_for(qm).read_lists("Sales", now=NOW).names == {"A"}
    assert len(qm.requests) == 2


def test_read_attempts_sets_the_number_of_calls() -> None:
    """read_attempts=1 means a failing read is tried once."""
    qm = FakeQM(httpx.Response(500, text="x"))
    with pytest.raises(QMBadReplyError):
        client_for(qm, read_attempts=1).read_lists("Sales", now=NOW)
    assert len(qm.requests) == 1


def test_connect_error_is_retried_then_unreachable_naming_host_and_timeout() -> None:
    """Connection refused on every try: 3 calls, then QMUnreachableError naming host+timeout."""
    qm = FakeQM(httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(QMUnreachableError) as caught:
        client_for(qm, timeout=2.5).read_lists("Sales", now=NOW)
    assert len(qm.requests) == 3
    message = str(caught.value)
    assert message.startswith("QM at 127.0.0.1:8080 cannot be reached (amoUpdateLists, ")
    assert "ConnectError: [Errno 111] Connection refused" in message
    assert "timeout 2.5 s" in message
    assert "check qm.url" in message


def test_read_timeout_names_the_timeout() -> None:
    """A read timeout is retried, then reported with the configured timeout."""
    qm = FakeQM(httpx.ReadTimeout("timed out"), httpx.ReadTimeout("timed out"), listing())
    assert client_for(qm).read_lists("Sales", now=NOW).lists == ()
    qm = FakeQM(httpx.ReadTimeout("timed out"))
    with pytest.raises(QMUnreachableError, match=r"did not answer within the timeout of 10 s"):
        client_for(qm).read_lists("Sales", now=NOW)
    assert len(qm.requests) == 3


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, text="oops"),
        httpx.Response(429, text="slow"),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("timed out"),
    ],
)
def test_writes_are_never_retried(answer: httpx.Response | Exception) -> None:
    """A failing write is reported after exactly one call, whatever the failure."""
    qm = FakeQM(answer)
    with pytest.raises(QMError):
        client_for(qm).update_lists("Sales", [ListUpdate("A", 1, False)], read=snapshot("A"))
    assert len(qm.requests) == 1


def test_bad_replies_are_not_retried() -> None:
    """A 200 with an HTML login page is reported after one call, with its first bytes."""
    page = "<!DOCTYPE html>\n<html><head><title>QueueMetrics - Login</title></head></html>"
    qm = FakeQM(httpx.Response(200, text=page))
    with pytest.raises(QMBadReplyError) as caught:
        client_for(qm).read_lists("Sales", now=NOW)
    assert len(qm.requests) == 1
    message = str(caught.value)
    assert "(HTTP 200, amoUpdateLists, campaign 'Sales')" in message
    assert '"<!DOCTYPE html>\\n<html><head><title>QueueMetrics - Login</title>' in message


def test_truncated_reply_is_a_bad_reply() -> None:
    """A JSON reply cut short is a bad reply (not retried)."""
    body = json.dumps({"lists": [wire_list("A"), wire_list("B")]}).encode()
    qm = FakeQM(httpx.Response(200, content=body[:150]))
    with pytest.raises(QMBadReplyError, match="broken JSON"):
        client_for(qm).read_lists("Sales", now=NOW)
    assert len(qm.requests) == 1


def test_errors_in_a_reply_raise_api_error_listing_them() -> None:
    """errors entries in a 200 reply -> QMApiError listing them."""
    qm = FakeQM(
        httpx.Response(200, json={"lists": [], "errors": [{"error": "Unknown campaign 'X'"}]})
    )
    with pytest.raises(QMApiError) as caught:
        client_for(qm).read_lists("X", now=NOW)
    assert caught.value.errors == ("Unknown campaign 'X'",)
    assert "reported 1 error: Unknown campaign 'X'" in str(caught.value)


def test_redirect_is_reported_not_followed() -> None:
    """A redirect (e.g. to a login page) is a bad reply naming where it pointed."""
    qm = FakeQM(httpx.Response(302, headers={"location": "http://qm.test/qm/login.do"}))
    with pytest.raises(QMBadReplyError, match=r"redirected the call to http://qm.test/qm/login"):
        client_for(qm).read_lists("Sales", now=NOW)
    assert len(qm.requests) == 1


def test_every_qm_error_is_a_mixer_error_with_exit_code_1() -> None:
    """QM errors are MixerErrors (exit 1) carrying campaign and endpoint."""
    qm = FakeQM(httpx.Response(401))
    with pytest.raises(MixerError) as caught:
        client_for(qm).read_lists("Sales", now=NOW)
    assert isinstance(caught.value, QMError)
    assert caught.value.exit_code == 1
    assert caught.value.campaign == "Sales"
    assert caught.value.endpoint == "amoUpdateLists"


# --- amoUpdateNumbers ---------------------------------------------------------------


def test_add_numbers_posts_and_returns_the_raw_reply() -> None:
    """add_numbers POSTs to amoUpdateNumbers.do and returns the reply as a dict."""
    reply = {
        "amoCampaignName": "My Campaign",
        "amoListName": "Sale Recalls",
        "numbers": [{"numberId": "19", "number": "456", "error": ""}],
        "errors": [],
        "durationMs": 3,
    }
    qm = FakeQM(httpx.Response(200, json=reply))
    numbers = [{"number": "456", "attrs": {"ax": "1"}}]
    got = client_for(qm).add_numbers("My Campaign", "Sale Recalls", numbers)
    assert got == reply
    assert str(qm.requests[0].url).endswith("/qm/amoUpdateNumbers.do")
    assert qm.documents() == [
        {"amoCampaignName": "My Campaign", "listName": "Sale Recalls", "numbers": numbers}
    ]


def test_add_numbers_errors_raise_and_are_not_retried() -> None:
    """A per-number error in the reply raises QMApiError naming it; one call only."""
    reply = {"numbers": [], "errors": [{"number": "x", "error": "Missing number"}]}
    qm = FakeQM(httpx.Response(200, json=reply))
    with pytest.raises(QMApiError, match="number 'x': Missing number") as caught:
        client_for(qm).add_numbers("C", "L", [{"number": "x"}])
    assert caught.value.endpoint == "amoUpdateNumbers"
    qm = FakeQM(httpx.Response(500, text="x"))
    with pytest.raises(QMBadReplyError):
        client_for(qm).add_numbers("C", "L", [{"number": "1"}])
    assert len(qm.requests) == 1


def test_add_numbers_splits_and_merges_large_batches() -> None:
    """Numbers over the body limit go in several calls; the replies are merged."""

    def echo(request: httpx.Request) -> httpx.Response:
        document = json.loads(parse_qs(request.content.decode())["data"][0])
        return httpx.Response(
            200, json={"numbers": document["numbers"], "errors": [], "durationMs": 1}
        )

    qm = FakeQM(echo)
    numbers = [{"number": str(i), "attrs": {"n": "a" * 100_000}} for i in range(20)]
    reply = client_for(qm).add_numbers("C", "L", numbers)
    assert len(qm.requests) >= 3
    assert all(len(r.content) < MAX_BODY_BYTES for r in qm.requests)
    assert [n["number"] for n in reply["numbers"]] == [str(i) for i in range(20)]
    assert reply["durationMs"] == len(qm.requests)


# --- secrecy and lifecycle ----------------------------------------------------------


def _echo_secrets(request: httpx.Request) -> str:
    """A body that repeats the request's Authorization header and the password forms."""
    return f"auth={request.headers['authorization']} {' '.join(SECRET_FORMS)}"


def _leaky_cases() -> list[tuple[str, Callable[[QMClient], object], list[Any]]]:
    def read(client: QMClient) -> object:
        return client.read_lists("Sales", now=NOW)

    def write(client: QMClient) -> object:
        return client.update_lists("Sales", [ListUpdate("A", 1, False)], read=snapshot("A"))

    def unread(client: QMClient) -> object:
        return client.update_lists("Sales", [ListUpdate("New list", 1, False)], read=snapshot())

    def numbers(client: QMClient) -> object:
        return client.add_numbers("Sales", "A", [{"number": "1"}])

    def status(code: int) -> Handler:
        return lambda request: httpx.Response(code, text=_echo_secrets(request))

    def api_errors(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"lists": [], "errors": [_echo_secrets(request)]})

    def json_errors(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"errors": [{"error": _echo_secrets(request)}]})

    def bad_field(request: httpx.Request) -> httpx.Response:
        return listing(wire_list("A", lastPull=_echo_secrets(request)[:2000]))

    def bad_weight(request: httpx.Request) -> httpx.Response:
        return listing(wire_list("A", weight=PASSWORD))

    def truncated(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text='{"lists": [' + json.dumps(_echo_secrets(request)))

    def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": f"http://x/?p={quote_plus(PASSWORD)}"})

    return [
        ("401", read, [status(401)]),
        ("403", read, [status(403)]),
        ("404", read, [status(404)]),
        ("400", read, [status(400)]),
        ("500", read, [status(500)]),
        ("500-json", read, [json_errors]),
        ("429", read, [status(429)]),
        ("html-200", read, [status(200)]),
        ("truncated", read, [truncated]),
        ("api-errors", read, [api_errors]),
        ("bad-last-pull", read, [bad_field]),
        ("bad-weight", read, [bad_weight]),
        ("redirect", read, [redirect]),
        ("connect", read, [httpx.ConnectError(f"refused for {' '.join(SECRET_FORMS)}")]),
        ("timeout", read, [httpx.ReadTimeout(f"timed out {PASSWORD}")]),
        ("protocol", read, [httpx.RemoteProtocolError(f"broken {SECRET_FORMS[-1]}")]),
        ("write-500", write, [status(500)]),
        ("write-api-errors", write, [api_errors]),
        ("unread-name", unread, [status(200)]),
        ("numbers-html", numbers, [status(200)]),
        ("numbers-api-errors", numbers, [api_errors]),
    ]


@pytest.mark.parametrize(
    ("call", "answers"),
    [case[1:] for case in _leaky_cases()],
    ids=[case[0] for case in _leaky_cases()],
)
def test_password_is_in_no_error_message(
    call: Callable[[QMClient], object], answers: list[Any]
) -> None:
    """Whatever the server or httpx says, no form of the password reaches str() or repr()."""
    client = client_for(FakeQM(*answers))
    with pytest.raises(QMError) as caught:
        call(client)
    texts = [str(caught.value), repr(caught.value), caught.value.message]
    for text in texts:
        for secret in SECRET_FORMS:
            assert secret not in text
    assert "\n" not in str(caught.value)


def test_repr_shows_no_password() -> None:
    """The client's repr names URL and user, not the password."""
    text = repr(client_for(FakeQM(listing())))
    assert "robot" in text
    assert all(secret not in text for secret in SECRET_FORMS)


def test_credentials_in_the_url_are_rejected_without_echoing_them() -> None:
    """A qm.url carrying user:password is a config error that does not repeat them."""
    with pytest.raises(ConfigError) as caught:
        QMClient(f"http://robot:{quote(PASSWORD, safe='')}@qm.test/qm", USER, PASSWORD, timezone=TZ)
    assert all(secret not in str(caught.value) for secret in SECRET_FORMS)


@pytest.mark.parametrize("url", ["ftp://qm.test/qm", "qm.test:8080/qm", "http://"])
def test_url_that_is_not_http_is_a_config_error(url: str) -> None:
    """qm.url must be http(s) with a host; anything else is a config error (exit 2)."""
    with pytest.raises(ConfigError) as caught:
        QMClient(url, USER, PASSWORD, timezone=TZ)
    assert caught.value.exit_code == 2


def test_httpx_loggers_are_quiet() -> None:
    """httpx and httpcore, which log URLs at INFO, are kept at WARNING or above."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    client_for(FakeQM(listing()))
    for name in ("httpx", "httpcore"):
        assert logging.getLogger(name).level >= logging.WARNING
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_context_manager_closes_the_http_client() -> None:
    """Leaving the with-block closes the connection pool; further calls fail."""
    qm = FakeQM(listing())
    with client_for(qm) as client:
        client.read_lists("Sales", now=NOW)
    with pytest.raises(RuntimeError):
        client.read_lists("Sales", now=NOW)


def test_an_http_qm_loads_no_ca_bundle_and_its_transport_trusts_no_certificate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An http:// QM URL never speaks TLS: the client loads no CA bundle for it (~17 ms of
    start-up), and the context its transport holds verifies against an empty trust
    store, so a TLS use could only fail. An https:// URL still loads the bundle."""
    import ssl

    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    zone = ZoneInfo("Europe/Zurich")
    plain = QMClient("http://qm.example:8080/qm", "robot", "bot", timezone=zone)
    assert loads == []
    context = plain._http._transport._pool._ssl_context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.get_ca_certs() == []
    assert context.cert_store_stats()["x509_ca"] == 0
    plain.close()
    secure = QMClient("https://qm.example/qm", "robot", "bot", timezone=zone)
    assert len(loads) == 1
    assert secure._http._transport._pool._ssl_context.cert_store_stats()["x509_ca"] > 0
    secure.close()
