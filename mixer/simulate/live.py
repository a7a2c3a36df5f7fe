"""Decisions printed as they happen: the demo's live view of the daemon at work.

One line per change, in QM local time: when, campaign/list, weight a→b, paused a→b, the
rules that fired and the reason. Colour only on a terminal, so CI logs stay plain text.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, TextIO
from zoneinfo import ZoneInfo

from mixer.printable import printable

if TYPE_CHECKING:
    from mixer.cycle import CampaignResult
    from mixer.plan import Decision

_RESET = "\033[0m"
_DIM = "\033[2m"
_BOLD = "\033[1m"
_GREEN = "\033[32m"
_YELLOW = "\033[33m"
_RED = "\033[31m"
_CYAN = "\033[36m"


class DecisionPrinter:
    """``printer(result)`` for ``build_runner(on_result=...)``: prints each decision."""

    def __init__(self, tz: ZoneInfo, stream: TextIO | None = None, *, color: bool | None = None):
        self.tz = tz
        self.stream = sys.stdout if stream is None else stream
        self.color = _isatty(self.stream) if color is None else color
        self.decisions = 0
        self.errors = 0
        self._lock = threading.Lock()

    def __call__(self, result: CampaignResult) -> None:
        lines: list[str] = []
        plan = result.plan
        campaign = printable(result.campaign)  # names and reasons come from QM: no escapes
        if plan is not None:
            when = plan.now.astimezone(self.tz).strftime("%a %H:%M")
            for override in plan.overrides:
                lines.append(
                    f"{self._c(_DIM, when)}  {campaign}/{printable(override.list)}  "
                    f"{self._c(_YELLOW, 'manual change')}: {printable(override.reason)}"
                )
            for stop in plan.stops:
                lines.append(
                    f"{self._c(_DIM, when)}  {campaign}  "
                    f"{self._c(_YELLOW, 'guardrail ' + stop.guardrail)}: {printable(stop.reason)}"
                )
            for decision in plan.decisions:
                lines.append(self._decision_line(when, campaign, decision))
        if result.error:
            lines.append(f"{campaign}  {self._c(_RED, 'error')}: {printable(result.error)}")
        if not lines:
            return
        with self._lock:
            self.decisions += len(plan.decisions) if plan is not None else 0
            self.errors += 1 if result.error else 0
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()

    def _decision_line(self, when: str, campaign: str, d: Decision) -> str:
        weight = f"weight {d.before_weight}→{d.after_weight}"
        if d.before_weight != d.after_weight:
            weight = self._c(_BOLD, weight)
        paused = f"paused {_yn(d.before_paused)}→{_yn(d.after_paused)}"
        if d.before_paused != d.after_paused:
            paused = self._c(_RED if d.after_paused else _GREEN, paused)
        rules = ", ".join(d.rules) or "baseline"
        if d.overridden:
            rules += f" (overridden: {', '.join(d.overridden)})"
        rules = printable(rules)
        return (
            f"{self._c(_DIM, when)}  {campaign}/{printable(d.list)}  {weight}  {paused}  "
            f"{self._c(_CYAN, rules)}: {printable(d.reason)}"
        )

    def _c(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.color else text


def _yn(value: bool) -> str:
    return "yes" if value else "no"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
