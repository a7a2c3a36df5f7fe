"""The ``lists:`` section of rule files: facts QM does not carry (deadline, tags, …).

Several entries may match one list. They apply in order (files sorted, entries in file
order): a later field overrides an earlier one, tags accumulate, extra scalar fields
become facts of their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from mixer.engine.names import glob_matches

Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class ListMetadata:
    """What the ``lists:`` entries say about one list, merged."""

    # Naive local time as written in the rules file; facts localise it to the QM zone.
    deadline: datetime | None = None
    tags: tuple[str, ...] = ()
    priority: int | None = None
    standby: bool = False
    # A baseline weight pinned in the file (overrides the weight first seen in QM).
    weight: int | None = None
    extra: Mapping[str, Scalar] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One validated ``lists:`` entry; ``None`` fields say nothing."""

    names: tuple[str, ...]  # name globs
    file: str
    line: int
    deadline: datetime | None = None
    tags: tuple[str, ...] = ()
    priority: int | None = None
    standby: bool | None = None
    weight: int | None = None
    extra: Mapping[str, Scalar] = field(default_factory=lambda: MappingProxyType({}))

    def matches(self, list_name: str) -> bool:
        return any(glob_matches(list_name, glob) for glob in self.names)


def merge_metadata(entries: Iterable[ListEntry], list_name: str) -> ListMetadata:
    """Merge every entry matching ``list_name``, in order."""
    deadline: datetime | None = None
    tags: list[str] = []
    priority: int | None = None
    standby = False
    weight: int | None = None
    extra: dict[str, Scalar] = {}
    for entry in entries:
        if not entry.matches(list_name):
            continue
        if entry.deadline is not None:
            deadline = entry.deadline
        tags.extend(t for t in entry.tags if t not in tags)
        if entry.priority is not None:
            priority = entry.priority
        if entry.standby is not None:
            standby = entry.standby
        if entry.weight is not None:
            weight = entry.weight
        extra.update(entry.extra)
    return ListMetadata(
        deadline=deadline,
        tags=tuple(tags),
        priority=priority,
        standby=standby,
        weight=weight,
        extra=MappingProxyType(extra),
    )
