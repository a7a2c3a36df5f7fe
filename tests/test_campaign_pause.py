"""An intended campaign-wide pause: a rule that declares ``pauses_campaign`` may close
every list of a campaign; any other rule still meets the keep-one-reservable guardrail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cycle_harness import Mixer
from tests.test_cycle import TWO_LISTS

CLOSE_ALL = """
rules:
  - name: campaign-closed
    description: "Outside office hours: the campaign closes."
    when: unpulled >= 0
    set: {paused: true}
    pauses_campaign: true
"""

HALF_DECLARED = """
rules:
  - name: boost-closed
    match: "Boost*"
    when: unpulled >= 0
    set: {paused: true}
    pauses_campaign: true
  - name: plain-closed
    match: "Plain"
    when: unpulled >= 0
    set: {paused: true}
"""


@pytest.fixture
def mixers(tmp_path: Path) -> Iterator[list[Mixer]]:
    made: list[Mixer] = []
    yield made
    for mixer in made:
        mixer.close()


def test_a_declared_campaign_pause_is_applied(tmp_path: Path, mixers: list[Mixer]) -> None:
    """Every list paused by a pauses_campaign rule: written, no guardrail stop."""
    mixer = Mixer(tmp_path, lists=TWO_LISTS, rules=CLOSE_ALL)
    mixers.append(mixer)
    report = mixer.cycle()
    assert report.outcomes == {"Sales": "ok"}
    assert mixer.records("guardrail") == []
    assert mixer.qm_list("Boost Me").paused
    assert mixer.qm_list("Plain").paused


def test_one_undeclared_pause_keeps_the_guardrail(tmp_path: Path, mixers: list[Mixer]) -> None:
    """One of the pauses comes from a rule without the declaration: still a stop."""
    mixer = Mixer(tmp_path, lists=TWO_LISTS, rules=HALF_DECLARED)
    mixers.append(mixer)
    report = mixer.cycle()
    assert report.outcomes == {"Sales": "guardrail"}
    assert mixer.update_calls == 0
