"""The status board: the daemon publishes one finished snapshot per cycle, the HTTP
handlers read the latest one.

Publishing replaces one reference (atomic in CPython); a reader takes that reference
once and works on it, so a slow or stuck reader never holds anything the cycle needs,
and the cycle never waits for a reader. Nothing here touches QM or the state store: the
snapshot is built from the plans the cycle already computed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from mixer.status.model import (
    EMPTY,
    CampaignStatus,
    DecisionStatus,
    ListStatus,
    StatusSnapshot,
    active_holds,
    iso,
    newest_first,
    on_track,
    pending_timers,
)

if TYPE_CHECKING:
    from mixer.cycle import CampaignResult
    from mixer.guardrails import CampaignPlan

KEEP_DECISIONS = 50  # per campaign, newest first


@dataclass(frozen=True)
class Published:
    """One cycle's snapshot and the plans it came from (for the per-list "why")."""

    snapshot: StatusSnapshot
    plans: Mapping[str, CampaignPlan] = field(default_factory=dict)
    # Rendered forms of this snapshot, filled by readers on first use (a dict item
    # assignment is atomic; two readers racing render the same bytes twice, harmlessly).
    rendered: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)


class StatusBoard:
    """The latest published status; ``publish`` is called by the cycle thread only."""

    def __init__(self, keep_decisions: int = KEEP_DECISIONS) -> None:
        self._current = Published(EMPTY, MappingProxyType({}))
        self._decisions: dict[str, deque[DecisionStatus]] = {}
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
        """Build and publish the status of the cycle ``report`` (a ``CycleReport``)."""
        previous = self._current
        results: Mapping[str, CampaignResult] = getattr(report, "results", None) or {}
        plans: dict[str, CampaignPlan] = dict(previous.plans)
        campaigns = []
        now = getattr(report, "now", None)
        for name, result in results.items():
            if result.plan is not None:
                plans[name] = result.plan
            status = self._campaign(result, plans.get(name), now)
            before = previous.snapshot.campaign(name)
            if result.plan is None and before is not None:
                # The read failed: show the lists as the last good cycle left them.
                status = replace(
                    before,
                    last_cycle=status.last_cycle,
                    outcome=status.outcome,
                    error=status.error,
                    decisions=status.decisions,
                )
            campaigns.append(status)
        snapshot = StatusSnapshot(
            generated_at=iso(now),
            mode=mode,
            rules_hash=rules_hash,
            interval_s=interval_s,
            cycle_id=getattr(report, "cycle_id", None),
            campaigns=tuple(campaigns),
        )
        published = Published(snapshot, MappingProxyType(plans))
        self._current = published
        return published

    def _campaign(
        self, result: CampaignResult, plan: CampaignPlan | None, now: Any
    ) -> CampaignStatus:
        kept = self._decisions.setdefault(result.campaign, deque(maxlen=self._keep))
        written = set(getattr(result, "written", ()))
        if result.plan is not None:
            plan_now = result.plan
            for d in plan_now.decisions:
                kept.append(
                    DecisionStatus(
                        ts=iso(plan_now.now) or "",
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
        decisions = newest_first(list(kept), self._keep)
        if plan is None or result.plan is None:
            return CampaignStatus(
                name=result.campaign,
                last_cycle=iso(now),
                outcome=result.outcome,
                error=result.error,
                lists_as_of=None,
                decisions=decisions,
            )
        memory = plan.memory_after(written) if written else plan.memory
        rules = plan.evaluation.lists
        any_list = next(iter(rules.values()), None)
        rule_objects = any_list.outcomes.rules if any_list is not None else ()
        return CampaignStatus(
            name=result.campaign,
            last_cycle=iso(now),
            outcome=result.outcome,
            error=result.error,
            lists_as_of=iso(plan.now),
            lists=tuple(_lists(plan, memory, written)),
            holds=active_holds(memory, plan.now),
            timers=pending_timers(memory, rule_objects, plan.now),
            decisions=decisions,
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
