"""The simulated dialer: invariants, choice of list, shifts, outcomes and metrics."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx

from mixer.clock import FakeClock
from mixer.emulator.app import EmulatorApp, create_app
from mixer.emulator.dialer import Dialer
from mixer.emulator.scenario import Scenario, load_scenario
from mixer.emulator.state import CallList, NumberStatus

MONDAY_8 = "2024-04-22 08:00"


def make_scenario(lists: list[dict[str, Any]], **overrides: Any) -> Scenario:
    document: dict[str, Any] = {
        "start": MONDAY_8,
        "timezone": "Europe/Zurich",
        "seed": 1,
        "campaigns": {"C": {"lists": lists}},
        "agents": [{"from": "08:00", "to": "18:00", "count": 2}],
        "handling_time": "3m",
        "outcomes": {"success": 1, "reschedule": 0, "fail": 0},
    }
    document.update(overrides)
    return Scenario.model_validate(document)


def run(
    scenario: Scenario, span: timedelta, policy: str = "weighted"
) -> tuple[EmulatorApp, FakeClock]:
    clock = FakeClock(scenario.start)
    app = create_app(scenario, clock=clock, policy=policy)
    clock.advance(span)
    app.advance()
    return app, clock


def dialer_of(app: EmulatorApp) -> Dialer:
    assert app.dialer is not None
    return app.dialer


def get_list(app: EmulatorApp, name: str, campaign: str = "C") -> CallList:
    call_list = app.state.find_list(campaign, name)
    assert call_list is not None
    return call_list


def test_counters_stay_consistent_over_a_day() -> None:
    """completed <= pulled <= added, pulled - completed = numbers in a call, for every list."""
    scenario = load_scenario("default")
    app, _ = run(scenario, timedelta(hours=9, minutes=7))
    for call_list in app.state.lists():
        in_call = sum(n.status is NumberStatus.RESERVED for n in call_list.numbers.values())
        final = sum(n.status is NumberStatus.FINAL for n in call_list.numbers.values())
        assert 0 <= call_list.completed <= call_list.pulled <= call_list.added
        assert call_list.pulled - call_list.completed == in_call
        assert call_list.completed == final
        assert call_list.added == len(call_list.numbers)
    metrics = dialer_of(app).metrics()
    initial = sum(item.completed for spec in scenario.campaigns.values() for item in spec.lists)
    assert metrics.completed == sum(c.completed for c in app.state.lists()) - initial
    assert metrics.completed > 1000


def test_paused_lists_are_never_pulled() -> None:
    """A paused list (the default's standby reserve) gets no reservation all day."""
    app, _ = run(load_scenario("default"), timedelta(days=1))
    reserve = get_list(app, "Reserve Pool", "Sales")
    assert reserve.paused
    assert reserve.pulled == 0
    assert reserve.last_pull is None
    assert dialer_of(app).metrics().pulls_per_list.get(("Sales", "Reserve Pool"), 0) == 0


def test_weighted_choice_follows_weights() -> None:
    """Over many reservations, pulls split roughly in proportion to the weights 1:3:6."""
    lists = [
        {"name": "A", "numbers": 5000, "weight": 1},
        {"name": "B", "numbers": 5000, "weight": 3},
        {"name": "C", "numbers": 5000, "weight": 6},
    ]
    scenario = make_scenario(lists, agents=[{"from": "08:00", "to": "18:00", "count": 10}])
    app, _ = run(scenario, timedelta(hours=10))
    pulls = dialer_of(app).metrics().pulls_per_list
    total = sum(pulls.values())
    assert total == 2000
    shares = {key[1]: count / total for key, count in pulls.items()}
    assert abs(shares["A"] - 0.1) < 0.03
    assert abs(shares["B"] - 0.3) < 0.04
    assert abs(shares["C"] - 0.6) < 0.04


def test_same_seed_same_run() -> None:
    """A fixed seed makes the run reproducible to the last pull."""
    first = dialer_of(run(load_scenario("default"), timedelta(hours=5))[0]).metrics()
    second = dialer_of(run(load_scenario("default"), timedelta(hours=5))[0]).metrics()
    assert first == second


def test_edf_reserves_earliest_deadline_first() -> None:
    """Policy edf drains the list with the earliest deadline before touching the next."""
    lists = [
        {"name": "Late", "numbers": 100, "weight": 50, "deadline": "2024-04-26 18:00"},
        {"name": "Early", "numbers": 30, "weight": 1, "deadline": "2024-04-23"},
        {"name": "None", "numbers": 100, "weight": 90},
    ]
    app, _ = run(make_scenario(lists), timedelta(minutes=45), policy="edf")
    pulls = dialer_of(app).metrics().pulls_per_list
    assert pulls[("C", "Early")] == 30
    assert pulls[("C", "Late")] == 2  # 2 agents x 16 calls by 08:45: 30 Early, then Late
    assert ("C", "None") not in pulls


def test_edf_ties_go_to_the_higher_weight() -> None:
    """Equal deadlines: edf picks the higher weight."""
    lists = [
        {"name": "Low", "numbers": 10, "weight": 1, "deadline": "2024-04-23"},
        {"name": "High", "numbers": 10, "weight": 9, "deadline": "2024-04-23"},
    ]
    app, _ = run(make_scenario(lists), timedelta(minutes=10), policy="edf")
    assert dialer_of(app).metrics().pulls_per_list == {("C", "High"): 8}


def test_list_completes_then_reopens_when_numbers_are_added() -> None:
    """Every number final: completed and closed; numbers added over the API re-open it."""
    app, clock = run(make_scenario([{"name": "Small", "numbers": 4}]), timedelta(minutes=10))
    small = get_list(app, "Small")
    wire = small.to_wire(dialer_of(app).now)
    assert (wire["dialerState"], wire["dialerCanReserve"]) == ("completed", "closed")
    client = httpx.Client(
        transport=httpx.WSGITransport(app=app), base_url="http://qm.test", auth=("robot", "bot")
    )
    data = {"amoCampaignName": "C", "listName": "Small", "numbers": [{"number": "1"}]}
    client.post("/qm/amoUpdateNumbers.do", data={"data": json.dumps(data)})
    assert small.to_wire(dialer_of(app).now)["dialerState"] == "open"
    clock.advance(timedelta(minutes=1))
    app.advance()
    assert small.pulled == 5  # an idle agent took the new number at once


def test_closed_but_not_completed_while_last_number_in_a_call() -> None:
    """Last number pulled, no final status yet: closed to reserving, still open."""
    app, _ = run(make_scenario([{"name": "One", "numbers": 1}]), timedelta(minutes=1))
    wire = get_list(app, "One").to_wire(dialer_of(app).now)
    assert (wire["dialerState"], wire["dialerCanReserve"]) == ("open", "closed")
    assert (wire["nNumbersPulled"], wire["nNumbersCompleted"]) == (1, 0)
    assert wire["lastPull"] == "2024-04-22 08:00:00"


def test_reschedule_returns_number_with_later_valid_from() -> None:
    """A rescheduled number goes back unpulled, reservable from now + reschedule_after."""
    scenario = make_scenario(
        [{"name": "R", "numbers": 1}],
        outcomes={"success": 0, "reschedule": 1, "fail": 0},
        reschedule_after="1h",
        max_attempts=2,
        agents=[{"from": "08:00", "to": "18:00", "count": 1}],
    )
    app, clock = run(scenario, timedelta(minutes=5))
    r_list = get_list(app, "R")
    number = r_list.numbers[1]
    assert (r_list.pulled, r_list.completed) == (0, 0)
    assert number.valid_from_text == "2024-04-22 09:03:00"
    assert not r_list.can_reserve(dialer_of(app).now)
    clock.advance(timedelta(hours=1))
    app.advance()
    assert (r_list.pulled, number.attempts) == (1, 2)
    clock.advance(timedelta(minutes=5))
    app.advance()
    assert (r_list.pulled, r_list.completed) == (1, 1)  # max_attempts reached: final
    assert dialer_of(app).metrics().pulls_per_list[("C", "R")] == 2


def test_shifts_and_weekdays_are_respected() -> None:
    """No reservation outside the shift hours or on a day off."""
    scenario = make_scenario(
        [{"name": "Big", "numbers": 10000}],
        start="2024-04-21 06:00",  # a Sunday
        agents=[{"from": "09:00", "to": "10:00", "count": 3, "weekdays": [0]}],
    )
    app, clock = run(scenario, timedelta(hours=26))  # Monday 08:00
    assert dialer_of(app).reservations == 0
    clock.advance(timedelta(hours=1, minutes=30))  # 09:30
    app.advance()
    assert dialer_of(app).reservations == 33  # 09:00, 09:03, ... 09:30 for 3 agents
    clock.advance(timedelta(days=2))
    app.advance()
    assert dialer_of(app).reservations == 60
    last = get_list(app, "Big").to_wire(dialer_of(app).now)["lastPull"]
    assert last == "2024-04-22 09:57:00"


def test_idle_agent_minutes_count_time_with_nothing_to_reserve() -> None:
    """One agent, one 3-minute call, a one-hour shift: 57 idle agent-minutes."""
    scenario = make_scenario(
        [{"name": "One", "numbers": 1}], agents=[{"from": "08:00", "to": "09:00", "count": 1}]
    )
    app, _ = run(scenario, timedelta(hours=3))
    assert dialer_of(app).metrics().idle_agent_minutes == 57.0


def test_resuming_a_list_over_the_api_wakes_idle_agents() -> None:
    """Agents idle because every list is paused start calling once one is resumed."""
    scenario = make_scenario([{"name": "P", "numbers": 50, "paused": True}])
    app, _ = run(scenario, timedelta(hours=1))
    assert dialer_of(app).reservations == 0
    client = httpx.Client(
        transport=httpx.WSGITransport(app=app), base_url="http://qm.test", auth=("robot", "bot")
    )
    update = {"amoCampaignName": "C", "listUpdates": [{"listName": "P", "paused": False}]}
    client.post("/qm/amoUpdateLists.do", data={"data": json.dumps(update)})
    assert dialer_of(app).reservations == 2
    assert dialer_of(app).metrics().idle_agent_minutes == 120.0


def test_scheduled_refill_adds_numbers_at_its_time() -> None:
    """A scenario `add` batch lands at its time and agents call the new numbers."""
    scenario = make_scenario(
        [{"name": "Dry", "numbers": 2, "add": [{"at": "2h", "numbers": 10}]}],
    )
    app, clock = run(scenario, timedelta(hours=1))
    dry = get_list(app, "Dry")
    assert (dry.added, dry.completed) == (2, 2)
    clock.advance(timedelta(hours=2))
    app.advance()
    assert (dry.added, dry.completed) == (12, 12)


def test_on_time_ratio_counts_finals_before_deadline() -> None:
    """on_time_ratio is finals before their deadline over all numbers of deadline lists."""
    lists = [
        {"name": "Due", "numbers": 100, "deadline": "2024-04-22 08:30"},
        {"name": "Open", "numbers": 100},
    ]
    scenario = make_scenario(lists, agents=[{"from": "08:00", "to": "18:00", "count": 1}])
    app, _ = run(scenario, timedelta(hours=3), policy="edf")
    metrics = dialer_of(app).metrics()
    assert metrics.on_time_per_list == {("C", "Due"): 10}
    assert metrics.on_time_ratio == 0.1
    no_deadline = make_scenario([{"name": "Open", "numbers": 10}])
    assert dialer_of(run(no_deadline, timedelta(hours=1))[0]).metrics().on_time_ratio is None


def test_starved_list_is_reported_after_a_full_day() -> None:
    """A reservable list never picked over a whole day is starved; picked ones are not."""
    lists = [
        {"name": "Tiny", "numbers": 1000, "weight": 1},
        {"name": "Heavy", "numbers": 5000, "weight": 10000},
        {"name": "Other", "numbers": 5000, "weight": 10000},
    ]
    scenario = make_scenario(lists)
    app, _ = run(scenario, timedelta(hours=12))
    assert dialer_of(app).metrics().starved_lists == []  # the day is not over yet
    app, _ = run(scenario, timedelta(days=1))
    metrics = dialer_of(app).metrics()
    assert ("C", "Tiny") not in metrics.pulls_per_list
    assert metrics.starved_lists == [("C", "Tiny")]
    edf_app, _ = run(
        make_scenario([{**lists[1], "deadline": "2024-04-30"}, lists[2]]),
        timedelta(days=1),
        policy="edf",
    )
    assert dialer_of(edf_app).metrics().starved_lists == [("C", "Other")]


def test_metrics_to_dict_is_json_ready() -> None:
    """to_dict nests per-list maps by campaign and serialises to JSON."""
    app, _ = run(make_scenario([{"name": "L", "numbers": 5}]), timedelta(hours=1))
    document = dialer_of(app).metrics().to_dict()
    assert document["completed_per_list"] == {"C": {"L": 5}}
    json.dumps(document)


def test_time_never_goes_backwards() -> None:
    """Advancing to an earlier instant changes nothing."""
    app, clock = run(make_scenario([{"name": "L", "numbers": 500}]), timedelta(hours=1))
    before = dialer_of(app).reservations
    clock.set(clock.now() - timedelta(minutes=30))
    app.advance()
    assert dialer_of(app).reservations == before
