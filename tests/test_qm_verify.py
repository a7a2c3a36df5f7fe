"""changed_mismatches: does QM's reply show every update that was sent?"""

from __future__ import annotations

from datetime import UTC, datetime

from mixer.qm.verify import changed_mismatches
from mixer.snapshot import CampaignSnapshot, ListSnapshot, ListUpdate

NOW = datetime(2024, 4, 22, 8, 0, tzinfo=UTC)


def reply(*lists: tuple[str, int, str]) -> CampaignSnapshot:
    return CampaignSnapshot(
        "Sales",
        tuple(
            ListSnapshot(name, "notes", weight, state, "open", "open", 10, 1, 2, None)
            for name, weight, state in lists
        ),
        NOW,
    )


def test_reply_showing_every_update_has_no_mismatch() -> None:
    """Weight and paused as sent (notes ignored): no mismatch."""
    updates = [ListUpdate("A", 30, False, notes="other"), ListUpdate("B", 5, True)]
    assert changed_mismatches(reply(("A", 30, "open"), ("B", 5, "paused")), updates) == []


def test_no_updates_no_mismatch() -> None:
    """Nothing sent, nothing to verify."""
    assert changed_mismatches(reply(("A", 1, "open")), []) == []


def test_weight_not_taken_is_reported_with_both_states() -> None:
    """A weight QM did not take is one message with what was sent and what QM shows."""
    assert changed_mismatches(reply(("A", 10, "open")), [ListUpdate("A", 30, False)]) == [
        "list 'A': sent weight 30, paused false, QM shows weight 10, paused false"
    ]


def test_paused_not_taken_is_reported() -> None:
    """A pause QM did not take is reported, one message per list."""
    mismatches = changed_mismatches(
        reply(("A", 10, "open"), ("B", 3, "open")),
        [ListUpdate("A", 10, True), ListUpdate("B", 3, False)],
    )
    assert mismatches == ["list 'A': sent weight 10, paused true, QM shows weight 10, paused false"]


def test_unknown_state_word_does_not_count_as_paused() -> None:
    """A list whose state word is unknown does not show a pause that was sent."""
    assert len(changed_mismatches(reply(("A", 1, "suspended")), [ListUpdate("A", 1, True)])) == 1


def test_list_missing_from_the_reply_is_reported() -> None:
    """An updated list absent from the reply is a mismatch."""
    assert changed_mismatches(reply(("B", 1, "open")), [ListUpdate("A", 1, False)]) == [
        "list 'A' is missing from QM's reply"
    ]


def test_messages_hold_the_list_name_verbatim() -> None:
    """Names with quotes or backslashes appear unescaped, so callers can match on them."""
    name = 'O\'Brien \\ "VIP"'
    (message,) = changed_mismatches(reply((name, 1, "open")), [ListUpdate(name, 2, False)])
    assert name in message
