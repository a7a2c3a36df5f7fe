"""Building list snapshots for tests: a typical open list, with only what differs said."""

from __future__ import annotations

from typing import Any

from mixer.snapshot import ListSnapshot


def item(name: str = "A", **kw: Any) -> ListSnapshot:
    """An open, reservable list of 100 numbers, 40 pulled, 30 final; ``kw`` overrides."""
    base: dict[str, Any] = {
        "name": name,
        "notes": "",
        "weight": 10,
        "list_state": "open",
        "dialer_state": "open",
        "can_reserve_state": "open",
        "added": 100,
        "completed": 30,
        "pulled": 40,
        "last_pull": None,
    }
    base.update(kw)
    return ListSnapshot(**base)
