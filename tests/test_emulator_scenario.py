"""Scenario files: the shipped ones load and behave as documented; bad ones fail clearly."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mixer.clock import FakeClock
from mixer.emulator.app import create_app
from mixer.emulator.scenario import load_scenario, scenario_json_schema, shipped_scenarios
from mixer.errors import MixerError

SHIPPED = {"default", "deadline-crunch", "exhaustion-refill", "office-hours-b2b", "standby-reserve"}
VALID = """\
start: "2024-04-22 08:00"
campaigns:
  Sales:
    lists:
      - {name: A, numbers: 10}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_scenarios_are_listed_and_load() -> None:
    """Every documented scenario is shipped and valid."""
    assert set(shipped_scenarios()) >= SHIPPED
    for name in shipped_scenarios():
        scenario = load_scenario(name)
        assert scenario.name == name
        assert scenario.start.tzinfo is not None
        assert scenario.campaigns


def test_default_matches_the_seed_examples() -> None:
    """The default has Sales/Recalls Apr 24 and My Campaign/Sale Recalls with id 9915."""
    scenario = load_scenario("default")
    app = create_app(scenario, clock=FakeClock(scenario.start), dialer=False)
    assert app.state.find_list("Sales", "Recalls Apr 24") is not None
    sale_recalls = app.state.find_list("My Campaign", "Sale Recalls")
    assert sale_recalls is not None
    assert 9915 in sale_recalls.numbers


def test_deadline_tag_is_written_into_notes() -> None:
    """A list with a deadline carries a `deadline: ...` tag in its listNotes."""
    scenario = load_scenario("default")
    app = create_app(scenario, clock=FakeClock(scenario.start), dialer=False)
    recalls = app.state.find_list("Sales", "Recalls Apr 24")
    assert recalls is not None
    assert recalls.notes == "To be completed by end of April; deadline: 2024-04-30 18:00"


def test_load_by_path(tmp_path: Path) -> None:
    """A YAML path loads, with the documented defaults filled in."""
    scenario = load_scenario(write(tmp_path, VALID))
    assert scenario.timezone == "Europe/Zurich"
    assert scenario.duration == timedelta(days=1)
    assert scenario.handling_time.min == timedelta(minutes=3)
    assert scenario.start.isoformat() == "2024-04-22T08:00:00+02:00"


def test_unknown_name_lists_the_shipped_ones() -> None:
    """An unknown scenario name says which ones exist."""
    with pytest.raises(MixerError, match="deadline-crunch"):
        load_scenario("no-such-scenario")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (VALID.replace("numbers: 10", "numbers: -1"), "campaigns.Sales.lists[0].numbers"),
        (VALID + "colour: blue\n", "colour"),
        (VALID.replace('"2024-04-22 08:00"', "tomorrow"), "start"),
        (VALID + "timezone: Mars/Olympus\n", "timezone"),
        (VALID + "duration: forever\n", "duration"),
        (
            VALID.replace("numbers: 10}", "numbers: 10, deadline: soon}"),
            "campaigns.Sales.lists[0].deadline",
        ),
        (VALID + "agents: [{from: '18:00', to: '08:00', count: 1}]\n", "agents[0]"),
        (VALID + "agents: [{campaign: Nope, from: '08:00', to: '18:00', count: 1}]\n", "Nope"),
        (VALID + "outcomes: {success: 0, reschedule: 0, fail: 0}\n", "outcomes"),
        (VALID + "handling_time: {min: 5m, max: 1m}\n", "handling_time"),
    ],
)
def test_invalid_scenario_names_file_and_field(tmp_path: Path, text: str, where: str) -> None:
    """Each invalid field fails with the file path and the field path in one line."""
    path = write(tmp_path, text)
    with pytest.raises(MixerError) as caught:
        load_scenario(path)
    message = caught.value.message
    assert str(path) in message
    assert where in message
    assert "\n" not in message


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    """Broken YAML fails with file:line."""
    path = write(tmp_path, VALID + "  - {name: [\n")
    with pytest.raises(MixerError, match=rf"{path}:\d+"):
        load_scenario(path)


def test_non_mapping_is_refused(tmp_path: Path) -> None:
    """A YAML list instead of a mapping is refused with a hint."""
    with pytest.raises(MixerError, match="mapping"):
        load_scenario(write(tmp_path, "- 1\n- 2\n"))


def test_json_schema_describes_the_fields() -> None:
    """The JSON Schema has the top-level keys and the `from`/`to` aliases."""
    schema = scenario_json_schema()
    assert {"start", "campaigns", "agents", "outcomes"} <= set(schema["properties"])
    shift = schema["$defs"]["AgentShift"]["properties"]
    assert {"from", "to", "count", "weekdays"} <= set(shift)


def _on_time(name: str, policy: str) -> float:
    scenario = load_scenario(name)
    clock = FakeClock(scenario.start)
    app = create_app(scenario, clock=clock, policy=policy)
    clock.set(scenario.end)
    app.advance()
    assert app.dialer is not None
    ratio = app.dialer.metrics().on_time_ratio
    assert ratio is not None
    return ratio


def test_deadline_crunch_separates_static_weights_from_edf() -> None:
    """In deadline-crunch, static weights reach at most 0.6 x the on-time ratio of EDF."""
    static, edf = _on_time("deadline-crunch", "weighted"), _on_time("deadline-crunch", "edf")
    assert edf >= 0.8
    assert static <= 0.6 * edf


def test_exhaustion_refill_runs_dry_then_refills() -> None:
    """exhaustion-refill: the lists run dry on day one, then refills add numbers."""
    scenario = load_scenario("exhaustion-refill")
    clock = FakeClock(scenario.start)
    app = create_app(scenario, clock=clock)
    clock.advance(timedelta(hours=23))
    app.advance()
    web = app.state.find_list("Sales", "Web Leads")
    assert web is not None
    assert not web.can_reserve(clock.now().timestamp())
    clock.set(scenario.end)
    app.advance()
    assert web.added == 550


def test_scenario_spans_use_the_duration_grammar() -> None:
    """Scenario durations accept what mixer.durations accepts, spaces between parts too."""
    from datetime import timedelta

    from mixer.emulator.scenario import Scenario

    scenario = Scenario.model_validate(
        {
            "start": "2024-04-22 08:00",
            "duration": "1d 4h",
            "reschedule_after": "90",
            "handling_time": "1m30s",
            "campaigns": {},
        }
    )
    assert scenario.duration == timedelta(days=1, hours=4)
    assert scenario.reschedule_after == timedelta(seconds=90)
    assert scenario.handling_time.max == timedelta(seconds=90)


@pytest.mark.parametrize(
    ("deadline", "expected"),
    [
        ("2024-04-30", datetime(2024, 5, 1)),
        ("2024-04-30 18:00", datetime(2024, 4, 30, 18, 0)),
        ("2024-04-30T18:00:30", datetime(2024, 4, 30, 18, 0, 30)),
    ],
)
def test_list_deadlines_read_as_in_rule_files(deadline: str, expected: datetime) -> None:
    """A scenario list's deadline takes the rule files' grammar: a date alone ends that day."""
    from mixer.emulator.scenario import ListSpec

    assert ListSpec(name="A", numbers=1, deadline=deadline).deadline_local() == expected


@pytest.mark.parametrize("deadline", ["2024-4-30", "2024-04-30 18:00+02:00", "friday"])
def test_list_deadlines_the_mixer_could_not_read_are_refused(deadline: str) -> None:
    """A deadline the list's notes tag could not carry as local time fails validation."""
    from pydantic import ValidationError

    from mixer.emulator.scenario import ListSpec

    with pytest.raises(ValidationError, match="deadline"):
        ListSpec(name="A", numbers=1, deadline=deadline)
