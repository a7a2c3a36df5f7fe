"""How often a cycle prunes the state store's history, and with what cut."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mixer.cycle import PRUNE_EVERY
from tests.cycle_harness import Mixer

LISTS = [{"name": "Plain", "numbers": 50, "weight": 10}]
RULES = """
rules:
  - name: pause-exhausted
    description: "Nothing left to reserve."
    when: not can_reserve and unpulled == 0
    set: {paused: true}
"""


@pytest.fixture
def mixer(tmp_path: Path) -> Iterator[tuple[Mixer, list[datetime]]]:
    made = Mixer(tmp_path, lists=LISTS, rules=RULES)
    cuts: list[datetime] = []
    prune = made.runner.store.prune_history

    def counting(before: datetime) -> int:
        cuts.append(before)
        return prune(before)

    made.runner.store.prune_history = counting  # type: ignore[method-assign]
    yield made, cuts
    made.close()


def test_prunes_once_per_prune_every(mixer: tuple[Mixer, list[datetime]]) -> None:
    """The first cycle prunes; the next prune comes when the cut has moved PRUNE_EVERY."""
    made, cuts = mixer
    window = made.runner.settings.history.window
    made.cycle()
    assert cuts == [made.clock.now() - window * 2]
    steps = int(PRUNE_EVERY / timedelta(minutes=1))
    made.cycles(steps - 1)
    assert len(cuts) == 1
    made.cycle()
    assert cuts[1:] == [made.clock.now() - window * 2]


def test_clock_moving_back_prunes_at_once(mixer: tuple[Mixer, list[datetime]]) -> None:
    """A clock set back makes the next cycle prune with the earlier cut."""
    made, cuts = mixer
    made.cycle()
    made.clock.advance(timedelta(minutes=-5))
    made.cycle(minutes=1)
    assert len(cuts) == 2
    assert cuts[1] < cuts[0]
