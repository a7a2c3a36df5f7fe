"""Write-ahead intents: what the mixer is about to write, recorded before it is sent.

The cycle stores one ``Intent`` per list (in the state store, one transaction) before an
``amoUpdateLists`` call, and settles it once the outcome is known and logged. An intent
still pending at the next cycle means the outcome was never settled (a crash, a lost
reply with a failing read-back, a full disk under the decision log): ``resolve_intents``
(pure) decides from what QM shows now. A list showing the intent's ``after`` values
carries the mixer's own write — its memory is brought up to date as if the write had
been confirmed, so it is never mistaken for a human's change; a list showing ``before``
never got it. Anything else is left to the override detection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Literal

from mixer.engine.memory import ListMemory
from mixer.reconcile import memory_after_write
from mixer.snapshot import CampaignSnapshot, ListUpdate

Landed = Literal["applied", "not-applied", "unknown"]


@dataclass(frozen=True, slots=True)
class Intent:
    """One list's change the mixer decided to write, as recorded before sending it."""

    campaign: str
    list: str
    cycle_id: str
    at: datetime  # the deciding cycle's *now*
    before_weight: int
    before_paused: bool
    after_weight: int
    after_paused: bool
    # The decision record as that cycle would log it: logged late, from here, when the
    # cycle could not log it itself.
    decision: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Resolution:
    """What QM shows of a pending intent."""

    intent: Intent
    landed: Landed


def resolve_intents(
    snapshot: CampaignSnapshot,
    memory: Mapping[str, ListMemory],
    intents: Iterable[Intent],
    timezone: tzinfo,
) -> tuple[dict[str, ListMemory], list[Resolution]]:
    """Settle the pending intents of lists present in ``snapshot``, oldest first.

    Returns the memory with every applied intent recorded as the mixer's own write, and
    one resolution per settled intent. Intents of lists missing from the snapshot stay
    pending (not returned).
    """
    result = dict(memory)
    resolutions: list[Resolution] = []
    for intent in sorted(intents, key=lambda i: (i.at, i.cycle_id, i.list)):
        item = snapshot.get(intent.list)
        if item is None:
            continue
        found = (item.weight, item.paused)
        if found == (intent.after_weight, intent.after_paused):
            known = result.get(intent.list)
            if known is None:  # first seen by the cycle that wrote: QM's state then
                known = ListMemory.first_sight(
                    intent.before_weight, intent.before_paused, intent.at
                )
            result[intent.list] = memory_after_write(
                known,
                intent.before_paused,
                ListUpdate(intent.list, intent.after_weight, intent.after_paused),
                intent.at,
                intent.at.astimezone(timezone).date(),
            )
            landed: Landed = "applied"
        elif found == (intent.before_weight, intent.before_paused):
            landed = "not-applied"
        else:
            landed = "unknown"
        resolutions.append(Resolution(intent, landed))
    return result, resolutions


def late_decision(resolution: Resolution) -> dict[str, Any]:
    """The decision record of a settled intent, logged by a later cycle (``late: true``)."""
    record = dict(resolution.intent.decision)
    record["applied"] = resolution.landed == "applied"
    record["late"] = True
    if resolution.landed == "unknown":
        record["reason"] = (
            f"{record.get('reason', '')} Outcome unknown: QM shows neither the state before "
            "nor the one written."
        ).strip()
    return record
