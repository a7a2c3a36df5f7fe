"""QMClient against the QM emulator in-process (httpx.WSGITransport): a real round trip."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import stamina

from mixer.clock import FakeClock
from mixer.emulator.app import EmulatorApp, create_app
from mixer.emulator.scenario import load_scenario
from mixer.qm import QMClient
from mixer.qm.errors import (
    QMApiError,
    QMAuthError,
    QMBadReplyError,
    QMRefusedUpdateError,
)
from mixer.qm.verify import changed_mismatches
from mixer.snapshot import ListUpdate

BASE_URL = "http://qm.test/qm"


@pytest.fixture(autouse=True)
def _retries_without_waiting() -> Iterator[None]:
    """Retries keep the client's attempt count but never sleep."""
    with stamina.set_testing(True, attempts=100, cap=True):
        yield


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(load_scenario("default").start)


@pytest.fixture
def app(clock: FakeClock) -> EmulatorApp:
    return create_app("default", clock=clock)


def client_for(app: EmulatorApp, user: str = "robot", password: str = "bot") -> QMClient:
    scenario = app.scenario
    return QMClient(
        BASE_URL, user, password, timezone=scenario.tz, transport=httpx.WSGITransport(app=app)
    )


@pytest.fixture
def client(app: EmulatorApp) -> Iterator[QMClient]:
    with client_for(app) as qm:
        yield qm


def test_read_maps_the_seed_campaign(client: QMClient, clock: FakeClock) -> None:
    """Reading "Sales" yields the seed's lists with their counts, states and lastPull."""
    clock.advance(timedelta(minutes=30))
    snap = client.read_lists("Sales", now=clock.now())
    assert snap.read_at == clock.now()
    recalls = snap.get("Recalls Apr 24")
    assert recalls is not None
    assert (recalls.weight, recalls.added, recalls.list_state) == (10, 546, "open")
    assert recalls.pulled > 0
    assert recalls.last_pull is not None
    assert recalls.last_pull.tzinfo is not None
    reserve = snap.get("Reserve Pool")
    assert reserve is not None
    assert reserve.paused
    assert reserve.last_pull is None


def test_update_round_trip_verifies(client: QMClient, app: EmulatorApp, clock: FakeClock) -> None:
    """An update is applied, its reply shows it (no mismatch), and a new read agrees."""
    read = client.read_lists("Sales", now=clock.now())
    updates = [ListUpdate("B2B Leads", 7, True), ListUpdate("Spring Promo", 33, False)]
    reply = client.update_lists("Sales", updates, read=read)
    assert changed_mismatches(reply, updates) == []
    assert app.stats.update_calls == 1
    again = client.read_lists("Sales", now=clock.now())
    b2b = again.get("B2B Leads")
    assert b2b is not None
    assert (b2b.weight, b2b.paused, b2b.notes) == (7, True, "Businesses - call 9-17 on weekdays")


def test_notes_change_only_when_sent(client: QMClient, clock: FakeClock) -> None:
    """listNotes omitted leaves the notes; notes sent replace them."""
    read = client.read_lists("Sales", now=clock.now())
    reply = client.update_lists(
        "Sales", [ListUpdate("Spring Promo", 20, False, notes="deadline: 2024-05-01")], read=read
    )
    promo = reply.get("Spring Promo")
    assert promo is not None
    assert promo.notes == "deadline: 2024-05-01"


def test_unread_name_is_refused_and_nothing_is_created(
    client: QMClient, app: EmulatorApp, clock: FakeClock
) -> None:
    """An update for a name not read is refused: no write reaches QM, no list appears."""
    read = client.read_lists("Sales", now=clock.now())
    with pytest.raises(QMRefusedUpdateError):
        client.update_lists("Sales", [ListUpdate("b2b leads", 1, True)], read=read)
    assert app.stats.update_calls == 0
    assert client.read_lists("Sales", now=clock.now()).names == read.names


def test_user_without_usr_amo_gets_403(app: EmulatorApp, clock: FakeClock) -> None:
    """User "nokey" authenticates but lacks USR_AMO: QMAuthError with HTTP 403."""
    with client_for(app, "nokey", "nokey") as qm, pytest.raises(QMAuthError) as caught:
        qm.read_lists("Sales", now=clock.now())
    assert caught.value.status == 403
    assert "USR_AMO" in str(caught.value)


def test_wrong_password_gets_401_without_retry(app: EmulatorApp, clock: FakeClock) -> None:
    """A wrong password is a 401 QMAuthError after a single request."""
    with client_for(app, "robot", "wrong-pass") as qm, pytest.raises(QMAuthError) as caught:
        qm.read_lists("Sales", now=clock.now())
    assert caught.value.status == 401
    assert "wrong-pass" not in str(caught.value)
    assert sum(app.stats.requests.values()) == 0  # refused before reaching an endpoint


def test_transient_500_is_retried(client: QMClient, app: EmulatorApp, clock: FakeClock) -> None:
    """Two HTTP 500s then a good reply: the read succeeds on the third request."""
    app.faults.set("status_500", times=2)
    assert "Recalls Apr 24" in client.read_lists("Sales", now=clock.now()).names
    assert app.stats.requests["amoUpdateLists"] == 3


def test_html_login_page_is_a_bad_reply(
    client: QMClient, app: EmulatorApp, clock: FakeClock
) -> None:
    """The emulator's HTML login page with status 200 is a bad reply showing its start."""
    app.faults.set("html_200", times=1)
    with pytest.raises(QMBadReplyError, match=r"not JSON .*QueueMetrics - Login"):
        client.read_lists("Sales", now=clock.now())


def test_truncated_reply_is_a_bad_reply(
    client: QMClient, app: EmulatorApp, clock: FakeClock
) -> None:
    """A reply cut in the middle is reported as broken JSON."""
    app.faults.set("truncated_json", times=1)
    with pytest.raises(QMBadReplyError, match="broken JSON"):
        client.read_lists("Sales", now=clock.now())


def test_failed_write_is_not_retried(client: QMClient, app: EmulatorApp, clock: FakeClock) -> None:
    """A write answered 500 is reported after one call and nothing is applied."""
    read = client.read_lists("Sales", now=clock.now())
    app.faults.set("fail_writes")
    with pytest.raises(QMBadReplyError, match="HTTP 500"):
        client.update_lists("Sales", [ListUpdate("B2B Leads", 9, False)], read=read)
    assert app.stats.update_calls == 1
    assert not app.stats.applied_updates


def test_ignored_write_shows_as_mismatch(
    client: QMClient, app: EmulatorApp, clock: FakeClock
) -> None:
    """A write QM answers but does not apply is caught by changed_mismatches."""
    read = client.read_lists("Sales", now=clock.now())
    app.faults.set("ignore_writes")
    updates = [ListUpdate("B2B Leads", 9, False)]
    reply = client.update_lists("Sales", updates, read=read)
    assert changed_mismatches(reply, updates) == [
        "list 'B2B Leads': sent weight 9, paused false, QM shows weight 5, paused false"
    ]


def test_vanished_list_shows_as_missing(
    client: QMClient, app: EmulatorApp, clock: FakeClock
) -> None:
    """A list gone from the reply after a write is re-read once, then reported missing."""
    read = client.read_lists("Sales", now=clock.now())
    app.faults.set("vanish_list", campaign="Sales", list="B2B Leads")
    updates = [ListUpdate("B2B Leads", 9, False)]
    reply = client.update_lists("Sales", updates, read=read)
    assert changed_mismatches(reply, updates) == ["list 'B2B Leads' is missing from QM's reply"]
    assert app.stats.requests["amoUpdateLists"] == 3  # read, write, re-read


def test_api_errors_raise(client: QMClient, app: EmulatorApp, clock: FakeClock) -> None:
    """errors entries in the emulator's reply raise QMApiError with their text."""
    app.faults.set("api_errors", times=1, message="Database is locked")
    with pytest.raises(QMApiError, match="Database is locked"):
        client.read_lists("Sales", now=clock.now())


def test_unknown_campaign_is_an_api_error(client: QMClient, clock: FakeClock) -> None:
    """Reading a campaign QM does not know is a QMApiError naming it."""
    with pytest.raises(QMApiError, match="Unknown campaign 'Nope'"):
        client.read_lists("Nope", now=clock.now())


def test_large_update_split_stays_under_the_emulators_limit(
    client: QMClient, app: EmulatorApp, clock: FakeClock
) -> None:
    """Notes totalling 2 MB go in several calls the emulator accepts (it refuses > 1 MB)."""
    read = client.read_lists("Sales", now=clock.now())
    updates = [
        ListUpdate(item.name, item.weight + 1, item.paused, notes=f"{item.name} " + "n" * 400_000)
        for item in read
    ]
    reply = client.update_lists("Sales", updates, read=read)
    assert app.stats.update_calls >= 3
    assert changed_mismatches(reply, updates) == []
    assert all(len(item.notes) > 400_000 for item in reply)


def test_add_numbers_round_trip(client: QMClient, clock: FakeClock) -> None:
    """Numbers added to "Sale Recalls" come back with an id and raise the added count."""
    before = client.read_lists("My Campaign", now=clock.now()).get("Sale Recalls")
    reply = client.add_numbers(
        "My Campaign", "Sale Recalls", [{"number": "123a", "attrs": {"ax": "1"}}]
    )
    (record,) = reply["numbers"]
    assert record["number"] == "123a"
    assert record["numberId"]
    after = client.read_lists("My Campaign", now=clock.now()).get("Sale Recalls")
    assert before is not None
    assert after is not None
    assert after.added == before.added + 1


def test_add_numbers_to_unknown_list_is_an_api_error(client: QMClient) -> None:
    """amoUpdateNumbers on a list QM does not have raises QMApiError."""
    with pytest.raises(QMApiError, match="Unknown list"):
        client.add_numbers("My Campaign", "No Such List", [{"number": "1"}])
