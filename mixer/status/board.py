"""The status board: the daemon publishes what each cycle computed, the HTTP handlers read
the latest publication.

Publishing is cheap and happens on the cycle thread: it keeps references to the cycle's
own immutable plans (no copy, no formatting) and replaces one reference, atomically. The
``StatusSnapshot`` a page shows is built from those plans by the first reader that asks,
on the reader's thread, and kept for the next readers. So a slow or stuck reader never
holds anything the cycle needs, the cycle never waits for a reader, and a cycle nobody
looks at costs next to nothing. Nothing here touches QM or the state store.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mixer.status.model import (
    EMPTY,
    CampaignStatus,
    DecisionStatus,
    ListStatus,
    StatusSnapshot,
    active_holds,
    iso,
    on_track,
    pending_timers,
)

if TYPE_CHECKING:
    from mixer.cycle import CampaignResult
    from mixer.plan import CampaignPlan

KEEP_DECISIONS = 50  # per campaign, newest first


@dataclass(frozen=True)
class CampaignPublication:
    """One campaign in one cycle: its outcome, and the last plan that read its lists."""

    name: str
    last_cycle: str | None
    outcome: str | None
    error: str | None
    plan: CampaignPlan | None  # this cycle's, or the last good one after a failed read
    written: Collection[str]  # the lists of ``plan`` whose update reached QM
    decisions: tuple[DecisionStatus, ...]  # newest first


@dataclass(frozen=True)
class Published:
    """One cycle as published; ``snapshot`` is built on first use, by a reader."""

    mode: str | None = None
    rules_hash: str | None = None
    interval_s: float | None = None
    cycle_id: str | None = None
    at: str | None = None
    campaigns: tuple[CampaignPublication, ...] = ()
    # Rendered forms, filled by readers on first use (a dict item assignment is atomic;
    # two readers racing render the same bytes twice, harmlessly).
    rendered: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)
    _built: list[StatusSnapshot] = field(default_factory=list, compare=False, repr=False)

    @property
    def plans(self) -> Mapping[str, CampaignPlan]:
        return {c.name: c.plan for c in self.campaigns if c.plan is not None}

    @property
    def snapshot(self) -> StatusSnapshot:
        """The status views' data; built once per publication, by the first reader."""
        if self._built:
            return self._built[0]
        with self._lock:  # shared by readers only: the cycle never takes it
            if not self._built:
                self._built.append(self._build())
        return self._built[0]

    def _build(self) -> StatusSnapshot:
        if self.at is None and not self.campaigns:
            return EMPTY
        return StatusSnapshot(
            generated_at=self.at,
            mode=self.mode,
            rules_hash=self.rules_hash,
            interval_s=self.interval_s,
            cycle_id=self.cycle_id,
            campaigns=tuple(_campaign(c) for c in self.campaigns),
        )


class StatusBoard:
    """The latest publication; ``publish`` is called by the cycle thread only."""

    def __init__(self, keep_decisions: int = KEEP_DECISIONS) -> None:
        self._current = Published()
        self._decisions: dict[str, deque[DecisionStatus]] = {}
        self._last_good: dict[str, tuple[CampaignPlan, Collection[str]]] = {}
        self._keep = keep_decisions

    @property
    def current(self) -> Published:
        return self._current

    def publish(
        self,
        report: Any,
        *,
        mode: str | None,
        rules_hash: str | None,
        interval_s: float | None,
    ) -> Published:
        """Publish the cycle ``report`` (a ``CycleReport``): references, no formatting."""
        results: Mapping[str, CampaignResult] = getattr(report, "results", None) or {}
        at = iso(getattr(report, "now", None))
        campaigns = []
        for name, result in results.items():
            written: Collection[str] = getattr(result, "written", ())
            if result.plan is not None:
                self._last_good[name] = (result.plan, written)
                self._remember(name, result.plan, written)
            plan, plan_written = self._last_good.get(name, (None, ()))
            kept = self._decisions.get(name, ())
            campaigns.append(
                CampaignPublication(
                    name=name,
                    last_cycle=at,
                    outcome=result.outcome,
                    error=result.error,
                    plan=plan,
                    written=plan_written,
                    decisions=tuple(reversed(kept)),
                )
            )
        published = Published(
            mode=mode,
            rules_hash=rules_hash,
            interval_s=interval_s,
            cycle_id=getattr(report, "cycle_id", None),
            at=at,
            campaigns=tuple(campaigns),
        )
        self._current = published
        return published

    def _remember(self, campaign: str, plan: CampaignPlan, written: Collection[str]) -> None:
        kept = self._decisions.setdefault(campaign, deque(maxlen=self._keep))
        ts = iso(plan.now) or ""
        for d in plan.decisions:
            kept.append(
                DecisionStatus(
                    ts=ts,
                    list=d.list,
                    weight_before=d.before_weight,
                    weight_after=d.after_weight,
                    paused_before=d.before_paused,
                    paused_after=d.after_paused,
                    rules=d.rules,
                    reason=d.reason,
                    applied=d.list in written,
                )
            )


def _campaign(c: CampaignPublication) -> CampaignStatus:
    plan = c.plan
    if plan is None:
        return CampaignStatus(
            name=c.name,
            last_cycle=c.last_cycle,
            outcome=c.outcome,
            error=c.error,
            lists_as_of=None,
            decisions=c.decisions,
        )
    written = set(c.written)
    memory = plan.memory_after(written) if written else plan.memory
    evaluated = next(iter(plan.evaluation.lists.values()), None)
    rules = evaluated.outcomes.rules if evaluated is not None else ()
    return CampaignStatus(
        name=c.name,
        last_cycle=c.last_cycle,
        outcome=c.outcome,
        error=c.error,
        lists_as_of=iso(plan.now),
        lists=tuple(_lists(plan, memory, written)),
        holds=active_holds(memory, plan.now),
        timers=pending_timers(memory, rules, plan.now),
        decisions=c.decisions,
        guardrail_stops=tuple(s.reason for s in plan.stops),
    )


def _lists(plan: CampaignPlan, memory: Mapping[str, Any], written: set[str]) -> list[ListStatus]:
    out = []
    for item in plan.snapshot.lists:
        facts = plan.evaluation.facts.get(item.name, {})
        evaluated = plan.evaluation.lists.get(item.name)
        outcome = plan.outcomes.get(item.name)
        weight, paused = item.weight, item.paused
        if item.name in written and outcome is not None:
            weight, paused = outcome.weight, outcome.paused
        mem = memory.get(item.name)
        paused_by = None
        if paused:
            paused_by = "mixer" if mem is not None and mem.paused_by_mixer else "human"
        out.append(
            ListStatus(
                name=item.name,
                weight=weight,
                paused=paused,
                paused_by=paused_by,
                base_weight=mem.base_weight if mem is not None else item.weight,
                planned_weight=outcome.weight if outcome else item.weight,
                planned_paused=outcome.paused if outcome else item.paused,
                progress=_float(facts.get("progress")),
                unpulled=int(facts.get("unpulled") or 0),  # type: ignore[call-overload]
                pull_rate_per_hour=_float(facts.get("pull_rate_per_hour")),
                hours_to_deadline=_float(facts.get("hours_to_deadline")),
                eta_hours=_float(facts.get("eta_hours")),
                on_track=on_track(facts),
                rules=evaluated.fired if evaluated is not None else (),
                note="; ".join(outcome.notes) if outcome is not None else "",
            )
        )
    return out


def _float(value: object) -> float | None:
    return round(float(value), 3) if isinstance(value, int | float) else None
