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
    """Lists whose ``pulled`` or ``added`` counter is lower than in the last sample before
    ``now``: deleted and re-created under the same name."""
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
        if item.pulled < previous.pulled or item.added < previous.added:
            found.add(item.name)
    return frozenset(found)


def since_recreated(
    history: Mapping[str, Sequence[HistorySample]],
) -> Mapping[str, Sequence[HistorySample]]:
    """``history`` with each list's samples from before its last re-creation dropped (a
    rate across a re-creation would be negative). The same mapping when none was."""
    trimmed: dict[str, Sequence[HistorySample]] | None = None
    for name, samples in history.items():
        cut = 0
        for at in range(1, len(samples)):
            older, newer = samples[at - 1], samples[at]
            if newer.pulled < older.pulled or newer.added < older.added:
                cut = at
        if cut:
            if trimmed is None:
                trimmed = dict(history)
            trimmed[name] = samples[cut:]
    return history if trimmed is None else trimmed
