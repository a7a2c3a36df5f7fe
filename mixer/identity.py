"""Which lists the mixer may take for the ones it remembers, and which it must not write.

Pure. QM names a list by its name only, so three things break the mixer's idea of "the
same list": a list deleted and re-created under the same name (its counters go
backwards: its memory must start fresh, or ``paused_by_mixer`` would let a rule resume
a list a human paused), a ``listState`` QM does not document (the mixer cannot tell
whether it is paused: it never writes it and never counts it as reservable), and a name
that appears twice in one reply (an update by name would reach whichever QM picks).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime

from mixer.engine.memory import HistorySample
from mixer.snapshot import KNOWN_LIST_STATES, CampaignSnapshot


def unwritable_lists(snapshot: CampaignSnapshot) -> dict[str, str]:
    """Lists never written this cycle, whatever the rules say, with why (one sentence)."""
    found: dict[str, str] = {}
    counts = Counter(item.name for item in snapshot.lists)
    for item in snapshot.lists:
        if counts[item.name] > 1:
            found[item.name] = (
                f"the name appears {counts[item.name]} times in QM's reply: an update names a "
                "list, so it could reach the wrong one; never written until the name is unique"
            )
        elif item.list_state not in KNOWN_LIST_STATES:
            state = item.list_state[:40]
            found[item.name] = (
                f"listState {state!r} is not one QM documents (open, paused): left alone and "
                "not counted as reservable"
            )
    return found


def recreated_lists(
    snapshot: CampaignSnapshot,
    history: Mapping[str, Sequence[HistorySample]],
    now: datetime,
) -> frozenset[str]:
    """Lists deleted and re-created under the same name since the last sample before
    ``now``: their counters went backwards further than a living list's can.

    ``pulled`` alone goes back on a living list (a rescheduled number returns to the
    list and is no longer pulled), but never below the numbers already completed, and
    ``added`` and ``completed`` never decrease. So: ``added`` or ``completed`` lower than
    before, or ``pulled`` lower than the numbers completed before.
    """
    found = set()
    for item in snapshot.lists:
        samples = history.get(item.name)
        if not samples:
            continue
        previous = None
        for sample in reversed(samples):
            if sample.ts < now:
                previous = sample
                break
        if previous is None:
            continue
        if (
            item.added < previous.added
            or item.completed < previous.completed
            or item.pulled < previous.completed
        ):
            found.add(item.name)
    return frozenset(found)


def without_history_of(
    history: Mapping[str, Sequence[HistorySample]], names: frozenset[str], now: datetime
) -> Mapping[str, Sequence[HistorySample]]:
    """``history`` with the samples of ``names`` from before ``now`` dropped: a rate
    across a re-creation would be negative. (The cycle then drops them from the store.)"""
    if not names:
        return history
    trimmed = dict(history)
    for name in names:
        if name in trimmed:
            trimmed[name] = [s for s in trimmed[name] if s.ts >= now]
    return trimmed
