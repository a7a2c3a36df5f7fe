"""Memory reconciliation: baselines for new lists, human overrides adopted and held."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from mixer.engine.memory import ListMemory
from mixer.engine.metadata import ListMetadata
from mixer.reconcile import Override, reconcile_memory
from mixer.snapshot import CampaignSnapshot, ListSnapshot

NOW = datetime(2024, 4, 29, 8, 0, tzinfo=UTC)
HOLD = timedelta(hours=1)


def snap(name: str = "A", weight: int = 10, paused: bool = False) -> ListSnapshot:
    return ListSnapshot(
        name=name,
        notes="",
        weight=weight,
        list_state="paused" if paused else "open",
        dialer_state="open",
        can_reserve_state="open",
        added=100,
        completed=10,
        pulled=20,
        last_pull=None,
    )


def memory(**kw: Any) -> ListMemory:
    base: dict[str, Any] = {"base_weight": 10, "human_paused": False, "first_seen": NOW}
    base.update(kw)
    return ListMemory(**base)


def reconcile(
    snapshot: CampaignSnapshot,
    known: Mapping[str, ListMemory],
    pins: Mapping[str, int] | None = None,
) -> tuple[dict[str, ListMemory], list[Override]]:
    """reconcile_memory with each list's metadata pinning ``pins[name]`` (if any)."""
    metadata = {i.name: ListMetadata(weight=(pins or {}).get(i.name)) for i in snapshot.lists}
    return reconcile_memory(snapshot, known, metadata, NOW, HOLD)


def test_first_sight_takes_baseline_from_qm_or_pinned_metadata() -> None:
    """A new list's baseline is its QM weight, unless `lists:` pins a weight."""
    snapshot = CampaignSnapshot("Sales", (snap("A", 7), snap("B", 9, paused=True)), NOW)
    result, overrides = reconcile(snapshot, {}, pins={"B": 20})
    assert overrides == []
    assert (result["A"].base_weight, result["A"].human_paused) == (7, False)
    assert (result["B"].base_weight, result["B"].human_paused) == (20, True)


def test_human_weight_change_is_adopted_and_held() -> None:
    """A weight other than what the mixer wrote is a human's: new baseline, manual hold."""
    snapshot = CampaignSnapshot("Sales", (snap("A", 5),), NOW)
    known = {"A": memory(last_written_weight=30, last_written_paused=False)}
    result, overrides = reconcile(snapshot, known)
    assert len(overrides) == 1
    assert (overrides[0].expected_weight, overrides[0].found_weight) == (30, 5)
    assert result["A"].base_weight == 5
    assert result["A"].manual_hold_until == NOW + timedelta(hours=1)


def test_unchanged_list_is_no_override() -> None:
    """Finding exactly what the mixer wrote is not an override."""
    snapshot = CampaignSnapshot("Sales", (snap("A", 30),), NOW)
    known = {"A": memory(last_written_weight=30, last_written_paused=False)}
    result, overrides = reconcile(snapshot, known)
    assert overrides == []
    assert result["A"] == known["A"]


def test_vanished_list_keeps_its_memory() -> None:
    """A list missing from one read keeps its baseline for when it comes back."""
    snapshot = CampaignSnapshot("Sales", (), NOW)
    known = {"A": memory(base_weight=12)}
    result, _ = reconcile(snapshot, known)
    assert result["A"].base_weight == 12
