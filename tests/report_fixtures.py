"""A deterministic decision-log generator for the report tests.

It plays a few days of two campaigns of four lists: a dialer pulls and completes numbers
in business hours by weight share, rules pause exhausted lists, boost lists near their
deadline and pause a callback list out of hours, a person overrides a weight now and
then, a guardrail stops one plan a day and one read fails. ``Sales`` runs in apply mode,
``Support`` in dry-run (so its decisions repeat every cycle, as they do for real).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2026, 4, 6, 0, 0, tzinfo=UTC)
HTML_LIST = 'Leads <b>&</b> "VIP"'


@dataclass
class _List:
    name: str
    weight: int
    added: int
    deadline_h: float | None = None
    paused: bool = False
    pulled: int = 0
    completed: int = 0
    night_pause: bool = False

    @property
    def can_reserve(self) -> bool:
        return self.pulled < self.added

    def state(self) -> dict[str, Any]:
        return {
            "weight": self.weight,
            "paused": self.paused,
            "added": self.added,
            "pulled": self.pulled,
            "completed": self.completed,
            "can_reserve": self.can_reserve,
        }


def _campaigns() -> dict[str, tuple[str, list[_List]]]:
    return {
        "Sales": (
            "apply",
            [
                _List("Recalls Apr 24", 20, 900, deadline_h=60),
                _List("New leads", 40, 1600),
                _List("Callbacks", 15, 500, night_pause=True),
                _List(HTML_LIST, 25, 300),
            ],
        ),
        "Support": (
            "dry-run",
            [
                _List("Renewals", 30, 700, deadline_h=40),
                _List("Win-back", 20, 1200),
                _List("Surveys", 10, 400, night_pause=True),
                _List("Overdue", 40, 250),
            ],
        ),
    }


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def simulated_log(days: int = 3, step_minutes: int = 5, seed: int = 7) -> list[dict[str, Any]]:
    """Decision-log records, in log order, for ``days`` of cycles every ``step_minutes``."""
    rng = random.Random(seed)
    campaigns = _campaigns()
    records: list[dict[str, Any]] = []
    step = timedelta(minutes=step_minutes)
    steps = int(timedelta(days=days) / step)
    held: dict[tuple[str, str], datetime] = {}
    for n in range(steps):
        now = START + n * step
        ts = _iso(now)
        cycle_id = f"c{n:06d}"
        business = 8 <= now.hour < 18
        for campaign, (mode, lists) in campaigns.items():
            base = {"ts": ts, "cycle_id": cycle_id, "campaign": campaign}
            if campaign == "Sales" and now == START + timedelta(days=1, hours=11, minutes=20):
                message = "QM at http://127.0.0.1:8080/qm did not answer within 10 s"
                records.append({"event": "error", **base, "error": message, "kind": "read"})
                records.append(
                    {
                        "event": "cycle",
                        **base,
                        "mode": mode,
                        "lists_seen": 0,
                        "changes": 0,
                        "applied": False,
                        "outcome": "error",
                        "error": message,
                        "duration_ms": 10003.1,
                        "lists": {},
                    }
                )
                continue
            if now.hour == 7 and now.minute == 0 and n > 0:
                for item in lists:
                    item.added += rng.randrange(100, 300)
            # The dialer: pulls shared by weight among open lists, completions lag behind.
            open_lists = [x for x in lists if not x.paused and x.can_reserve]
            total = sum(x.weight for x in open_lists)
            if business and total:
                budget = rng.randrange(8, 14) * step_minutes // 5
                for item in open_lists:
                    take = round(budget * item.weight / total + rng.random())
                    item.pulled = min(item.added, item.pulled + take)
            for item in lists:
                item.completed += min(item.pulled - item.completed, rng.randrange(0, 8))

            # A person changes a weight by hand once a day: the mixer holds off for 1 h.
            if campaign == "Sales" and now.hour == 10 and now.minute == 30:
                item = lists[1]
                expected = {"weight": item.weight, "paused": item.paused}
                item.weight = max(5, item.weight // 2)
                held[(campaign, item.name)] = now + timedelta(hours=1)
                records.append(
                    {
                        "event": "override",
                        **base,
                        "list": item.name,
                        "mode": mode,
                        "expected": expected,
                        "found": {"weight": item.weight, "paused": item.paused},
                        "hold_until": _iso(now + timedelta(hours=1)),
                        "reason": "Weight changed outside the mixer: adopted as baseline.",
                    }
                )
            state_read = {x.name: x.state() for x in lists}
            stopped = campaign == "Sales" and now.hour == 17 and now.minute == 45
            if stopped:
                records.append(
                    {
                        "event": "guardrail",
                        **base,
                        "mode": mode,
                        "guardrail": "no-reservable-list",
                        "lists": [x.name for x in lists[:2]],
                        "reason": "The plan would leave no list unpaused and reservable: "
                        "not applied.",
                    }
                )
            decisions = 0
            for item in lists:
                if held.get((campaign, item.name), START) > now:
                    continue
                weight, paused, rules, reason = item.weight, item.paused, [], ""
                hours_left = None
                if item.deadline_h is not None:
                    hours_left = item.deadline_h - (now - START) / timedelta(hours=1)
                if not item.can_reserve and not item.paused:
                    paused, rules = True, ["pause-exhausted"]
                    reason = f"No numbers left to pull ({item.pulled} of {item.added}): paused."
                elif item.night_pause and not business and not item.paused:
                    paused, rules = True, ["business-hours"]
                    reason = "Outside business hours (08:00-18:00): paused."
                elif item.night_pause and business and item.paused and item.can_reserve:
                    paused, rules = False, ["business-hours"]
                    reason = "Business hours (08:00-18:00): resumed."
                elif item.paused and item.can_reserve and not item.night_pause:
                    paused, rules = False, ["resume-refilled"]
                    reason = f"{item.added - item.pulled} numbers to pull again: resumed."
                elif hours_left is not None and 0 < hours_left < 24 and item.weight < 60:
                    weight, rules = 60, ["boost-near-deadline"]
                    unpulled = item.added - item.pulled
                    reason = (
                        f"Deadline in {hours_left:.1f} h with {unpulled} numbers unpulled: boosted."
                    )
                if not rules:
                    continue
                decisions += 1
                applied = mode == "apply" and not stopped
                records.append(
                    {
                        "event": "decision",
                        **base,
                        "list": item.name,
                        "mode": mode,
                        "before": {"weight": item.weight, "paused": item.paused},
                        "after": {"weight": weight, "paused": paused},
                        "rules": rules,
                        "reason": reason,
                        "facts": {
                            "hours_to_deadline": hours_left,
                            "unpulled": item.added - item.pulled,
                        },
                        "applied": applied,
                    }
                )
                if applied:
                    item.weight, item.paused = weight, paused
            records.append(
                {
                    "event": "cycle",
                    **base,
                    "mode": mode,
                    "lists_seen": len(lists),
                    "changes": decisions,
                    "applied": mode == "apply" and decisions > 0 and not stopped,
                    "outcome": "guardrail" if stopped else "ok",
                    "error": None,
                    "duration_ms": round(5 + rng.random() * 20, 3),
                    "lists": state_read,
                }
            )
    return records
