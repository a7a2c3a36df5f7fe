"""The list-notes deadline tag: the emulator reads it exactly as the engine does."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from mixer.emulator.state import CallList
from mixer.engine.facts import parse_deadline_tag

ZURICH = ZoneInfo("Europe/Zurich")


@pytest.mark.parametrize(
    "notes",
    [
        "deadline: 2024-04-30 18:00",
        "Call them. Deadline=2024-04-30T18:30!",
        "DEADLINE: 2024-04-30 9:05",
        "deadline: 2024-04-30",
        "deadline: 2024-04-30 18:00:30",
        "deadline: 2024-02-30",
        "deadline: 2024-04-30 25:00",
        "no tag here",
    ],
)
def test_emulator_reads_the_deadline_the_engine_reads(notes: str) -> None:
    """A list's notes give the emulated list the deadline the mixer's facts see."""
    emulated = CallList("Sales", "A", tz=ZURICH, notes=notes)
    assert emulated.deadline == parse_deadline_tag(notes, ZURICH)


def test_scenario_adds_no_second_tag_to_notes_that_hold_one() -> None:
    """Notes already tagged in any spelling the engine reads keep their own tag."""
    from mixer.emulator.scenario import ListSpec

    spec = ListSpec(name="A", numbers=1, notes="Deadline=2024-05-01", deadline="2024-04-30")
    assert spec.notes_with_deadline() == "Deadline=2024-05-01"
    plain = ListSpec(name="B", numbers=1, notes="call early", deadline="2024-04-30")
    assert plain.notes_with_deadline() == "call early; deadline: 2024-04-30"
