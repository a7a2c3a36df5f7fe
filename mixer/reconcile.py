"""The mixer's memory against what QM shows: baselines, human overrides, memory after a write.

Pure. Before the rules run, each list's memory is reconciled with the snapshot: a list
seen for the first time gets its baseline; a weight or pause that differs from what the
mixer last wrote (or from the baseline, when the mixer never wrote) is a human's doing,
adopted as the new baseline and held for ``manual_hold``. After a write, the memory
records what the mixer wrote so the next cycle does not take it for a human's change.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from mixer.engine.memory import ListMemory
from mixer.engine.metadata import ListMetadata
from mixer.snapshot import CampaignSnapshot, ListUpdate


@dataclass(frozen=True, slots=True)
class Override:
    """A human changed a list: what the mixer expected and what it found."""

    list: str
    expected_weight: int
    expected_paused: bool
    found_weight: int
    found_paused: bool
    hold_until: datetime
    reason: str


def reconcile_memory(
    snapshot: CampaignSnapshot,
    memory: Mapping[str, ListMemory],
    metadata: Mapping[str, ListMetadata],
    now: datetime,
    manual_hold: timedelta,
    skip: Collection[str] = (),
) -> tuple[dict[str, ListMemory], list[Override]]:
    """Give new lists a baseline; detect and adopt human changes.

    ``metadata`` holds every listed list's merged ``lists:`` entries (a pinned weight
    is the baseline). Lists in memory that are missing from the snapshot keep their
    memory, so a list that vanishes for a cycle does not lose its baseline. Lists in
    ``skip`` (never written this cycle: an unknown state, a duplicate name) get a
    baseline when new and are otherwise left as remembered: what QM shows of them cannot
    be trusted to be a human's change.
    """
    result = dict(memory)
    overrides: list[Override] = []
    for item in snapshot.lists:
        pinned = metadata[item.name].weight
        known = memory.get(item.name)
        if known is None:
            result[item.name] = ListMemory.first_sight(item.weight, item.paused, now, pinned)
            continue
        if item.name in skip:
            continue
        if known.last_written_weight is not None and known.last_written_paused is not None:
            expected = (known.last_written_weight, known.last_written_paused)
        else:
            expected = (known.base_weight, known.human_paused or known.paused_by_mixer)
        found = (item.weight, item.paused)
        if found == expected:
            if pinned is not None and pinned != known.base_weight:
                result[item.name] = replace(known, base_weight=pinned)
            continue
        hold_until = now + manual_hold
        result[item.name] = replace(
            known,
            base_weight=pinned if pinned is not None else item.weight,
            human_paused=item.paused,
            paused_by_mixer=False,
            last_written_weight=item.weight,
            last_written_paused=item.paused,
            manual_hold_until=hold_until,
        )
        overrides.append(
            Override(
                list=item.name,
                expected_weight=expected[0],
                expected_paused=expected[1],
                found_weight=item.weight,
                found_paused=item.paused,
                hold_until=hold_until,
                reason=_override_reason(expected, found, manual_hold),
            )
        )
    return result, overrides


def memory_after_write(
    previous: ListMemory,
    was_paused: bool,
    update: ListUpdate,
    now: datetime,
    local_date: date,
) -> ListMemory:
    """A list's memory once ``update`` landed in QM (``was_paused``: the list's state
    before it): the mixer's own state from now on."""
    if update.paused and not was_paused:
        paused_by_mixer = True
    elif not update.paused:
        paused_by_mixer = False
    else:
        paused_by_mixer = previous.paused_by_mixer
    same_day = previous.changes_day == local_date
    return replace(
        previous,
        last_written_weight=update.weight,
        last_written_paused=update.paused,
        paused_by_mixer=paused_by_mixer,
        last_change_at=now,
        changes_day=local_date,
        changes_today=(previous.changes_today if same_day else 0) + 1,
    )


def _override_reason(expected: tuple[int, bool], found: tuple[int, bool], hold: timedelta) -> str:
    parts = []
    if expected[0] != found[0]:
        parts.append(f"weight {expected[0]} → {found[0]}")
    if expected[1] != found[1]:
        parts.append("paused" if found[1] else "resumed")
    return (
        f"Changed outside the mixer ({', '.join(parts)}): adopted as the new baseline, "
        f"{_held_for(hold)}."
    )


def _held_for(hold: timedelta) -> str:
    """``left alone for 15 min``; seconds when that is what the hold is (never "0 min")."""
    seconds = int(hold.total_seconds())
    if seconds <= 0:
        return "not held (manual_hold is 0)"
    if seconds < 120 and seconds % 60:
        return f"left alone for {seconds} s"
    return f"left alone for {seconds // 60} min"
