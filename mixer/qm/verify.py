"""Did QM take the write? Compare the listing QM answered with what was sent.

Pure: the cycle logs each message as a verify error. Only weight and paused are checked
(notes are free text an operator may edit at any time).
"""

from __future__ import annotations

from collections.abc import Sequence

from mixer.snapshot import CampaignSnapshot, ListUpdate

__all__ = ["changed_mismatches"]


def _state(weight: int, paused: bool) -> str:
    return f"weight {weight}, paused {'true' if paused else 'false'}"


def changed_mismatches(reply: CampaignSnapshot, updates: Sequence[ListUpdate]) -> list[str]:
    """One message per update that ``reply`` does not show (missing list, other weight or
    paused flag). Each message holds the list name verbatim, in single quotes."""
    mismatches: list[str] = []
    for update in updates:
        found = reply.get(update.name)
        if found is None:
            mismatches.append(f"list '{update.name}' is missing from QM's reply")
        elif found.weight != update.weight or found.paused != update.paused:
            mismatches.append(
                f"list '{update.name}': sent {_state(update.weight, update.paused)}, "
                f"QM shows {_state(found.weight, found.paused)}"
            )
    return mismatches
