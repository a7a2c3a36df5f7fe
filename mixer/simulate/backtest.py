"""Run one scenario with each strategy and collect what the simulated dialer achieved.

The ``rules`` strategy is the real product path: a config file written and loaded like an
operator's, ``build_runner`` and ``run_cycle`` once per simulated minute, requests going
through the QM client into the emulator (in-process, ``httpx.WSGITransport``). The clock is
a ``FakeClock`` moved by the loop, so a simulated week costs only the work done in it.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from mixer.clock import FakeClock
from mixer.emulator.app import EmulatorApp, create_app
from mixer.emulator.dialer import DialerMetrics
from mixer.emulator.scenario import Scenario
from mixer.logs import SilentLog
from mixer.simulate.workdir import write_config

Strategy = Literal["static", "rules", "oracle", "edf"]
STRATEGIES: tuple[Strategy, ...] = ("static", "rules", "oracle")
"""The default strategies; ``edf`` (the older oracle that keeps serving passed deadlines
first) runs only when asked for."""
ALL_STRATEGIES: tuple[Strategy, ...] = ("static", "rules", "oracle", "edf")
_POLICIES = {"static": "weighted", "rules": "weighted", "oracle": "oracle", "edf": "edf"}
Progress = Callable[[str, float], None]
"""Called as ``progress(strategy, fraction_done)`` while a strategy runs."""

# The in-process transport ignores the host; this name only has to be a valid URL.
IN_PROCESS_URL = "http://emulator.invalid/qm"
_PROGRESS_EVERY = 60  # simulated steps between progress calls
_GC_YOUNG_THRESHOLD = 10_000  # while a simulation runs (see _set_up_objects_frozen)


@dataclass(frozen=True)
class StrategyResult:
    """What one strategy achieved on one scenario.

    ``on_time_ratio``: share of the numbers of lists with a deadline that were final by
    their list's deadline (None when no list has one); ``completed``: numbers that reached
    a final status; ``idle_agent_minutes``: agent-minutes on shift with nothing to reserve;
    ``starved_lists``: ``[campaign, list]`` pairs left unpicked on a whole day although
    reservable; ``writes``: list updates QM received. Speed to lead and steadiness:
    ``wait_to_first_call_minutes`` (mean, p90) from a refilled number's arrival to its
    first call; ``max_list_gap_hours``, the longest working time an open, reservable list
    went without a call; ``writes_per_day`` and ``writes_per_campaign_day`` (the busiest
    campaign) per simulated day; ``flaps``, changes undoing a list's previous change of
    the same kind within 10 minutes (``flapped_lists``: the lists, ``[campaign, list]``).
    """

    strategy: str
    on_time_ratio: float | None
    completed: int
    idle_agent_minutes: float
    starved_lists: list[list[str]]
    writes: int
    cycles: int = 0
    decisions: int = 0
    wall_seconds: float = 0.0
    completed_per_list: dict[str, dict[str, int]] = field(default_factory=dict)
    on_time_per_list: dict[str, dict[str, int]] = field(default_factory=dict)
    wait_to_first_call_minutes: dict[str, float] | None = None
    max_list_gap_hours: float = 0.0
    max_gap_list: list[str] | None = None
    writes_per_day: float = 0.0
    writes_per_campaign_day: float = 0.0
    flaps: int = 0
    flapped_lists: list[list[str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        waits = self.wait_to_first_call_minutes
        return {
            "on_time_ratio": None if self.on_time_ratio is None else round(self.on_time_ratio, 4),
            "completed": self.completed,
            "idle_agent_minutes": round(self.idle_agent_minutes, 1),
            "starved_lists": [list(pair) for pair in self.starved_lists],
            "wait_to_first_call_minutes": (
                None if waits is None else {k: round(v, 1) for k, v in waits.items()}
            ),
            "max_list_gap_hours": round(self.max_list_gap_hours, 2),
            "max_gap_list": self.max_gap_list,
            "writes": self.writes,
            "writes_per_day": round(self.writes_per_day, 1),
            "writes_per_campaign_day": round(self.writes_per_campaign_day, 1),
            "flaps": self.flaps,
            "flapped_lists": self.flapped_lists,
            "cycles": self.cycles,
            "decisions": self.decisions,
            "wall_seconds": round(self.wall_seconds, 2),
            "completed_per_list": self.completed_per_list,
            "on_time_per_list": self.on_time_per_list,
        }


@dataclass(frozen=True)
class BacktestResult:
    """The three strategies on one scenario, over the same simulated span."""

    scenario: str
    start: str
    end: str
    strategies: dict[str, StrategyResult]

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "start": self.start,
            "end": self.end,
            "strategies": {name: r.to_dict() for name, r in self.strategies.items()},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)


def run_strategy(
    scenario: Scenario,
    strategy: Strategy,
    *,
    rules: Sequence[Path],
    workdir: Path,
    step: timedelta = timedelta(minutes=1),
    duration: timedelta | None = None,
    progress: Progress | None = None,
) -> StrategyResult:
    """Run ``scenario`` from its start for ``duration`` (default: the whole scenario).

    ``rules`` and ``workdir`` matter only to the ``rules`` strategy: its config, state
    store and decision log live in ``workdir``.
    """
    if strategy not in ALL_STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}: use one of {ALL_STRATEGIES}")
    if step <= timedelta(0):
        raise ValueError("step must be positive")
    span = scenario.duration if duration is None else min(duration, scenario.duration)
    steps = max(int(span / step), 1)
    clock = FakeClock(scenario.start)
    app = create_app(scenario, clock=clock, policy=_POLICIES[strategy])
    started = time.perf_counter()
    if strategy == "rules":
        cycles, decisions = _run_rules(app, clock, scenario, rules, workdir, step, steps, progress)
    else:
        cycles, decisions = 0, 0
        with _set_up_objects_frozen():
            for index in range(steps):
                clock.advance(step)
                app.advance()
                if progress is not None and index % _PROGRESS_EVERY == 0:
                    progress(strategy, index / steps)
    clock.set(scenario.start + span)
    app.advance()
    if progress is not None:
        progress(strategy, 1.0)
    assert app.dialer is not None
    days = max(span / timedelta(days=1), 1 / 24)
    per_campaign: dict[str, int] = {}
    for (campaign, _name), count in app.stats.applied_updates.items():
        per_campaign[campaign] = per_campaign.get(campaign, 0) + count
    return _result(
        strategy,
        app.dialer.metrics(),
        days=days,
        busiest=max(per_campaign.values(), default=0),
        flaps=sum(app.stats.flaps.values()),
        flapped=sorted([list(key) for key, n in app.stats.flaps.items() if n]),
        writes=sum(app.stats.applied_updates.values()),
        cycles=cycles,
        decisions=decisions,
        wall=time.perf_counter() - started,
    )


def _run_rules(
    app: EmulatorApp,
    clock: FakeClock,
    scenario: Scenario,
    rules: Sequence[Path],
    workdir: Path,
    step: timedelta,
    steps: int,
    progress: Progress | None,
) -> tuple[int, int]:
    import httpx

    from mixer.config import load_settings
    from mixer.wiring import build_runner

    config = write_config(
        workdir, url=IN_PROCESS_URL, scenario=scenario, rule_files=rules, concurrency=1
    )
    settings = load_settings(config, environ={})
    runner = build_runner(
        settings, clock=clock, transport=httpx.WSGITransport(app=app), log=SilentLog()
    )
    decisions = 0
    try:
        with _set_up_objects_frozen():
            for index in range(steps):
                report = runner.run_cycle()
                decisions += report.changes
                clock.advance(step)
                if progress is not None and index % _PROGRESS_EVERY == 0:
                    progress("rules", index / steps)
    finally:
        runner.close()
    return steps, decisions


@contextmanager
def _set_up_objects_frozen() -> Iterator[None]:
    """Keep what set-up built (the emulator's numbers, rules, modules) out of the garbage
    collector's full passes while the loop runs.

    A simulated week keeps a large, long-lived heap; every full collection walked all of
    it again, which cost about 7% of a backtest's time. Those objects live until the run
    ends, so scanning them finds nothing; they go back to the collector afterwards. The
    youngest generation is collected every ``_GC_YOUNG_THRESHOLD`` allocations instead of
    700: a cycle allocates thousands of short-lived objects that reference counting frees.
    """
    gc.collect()
    gc.freeze()
    threshold = gc.get_threshold()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _result(
    strategy: str,
    metrics: DialerMetrics,
    *,
    days: float,
    busiest: int,
    flaps: int,
    flapped: list[list[str]],
    writes: int,
    cycles: int,
    decisions: int,
    wall: float,
) -> StrategyResult:
    nested = metrics.to_dict()
    return StrategyResult(
        wait_to_first_call_minutes=metrics.wait_to_first_call_minutes,
        max_list_gap_hours=metrics.max_list_gap_hours,
        max_gap_list=None if metrics.max_gap_list is None else list(metrics.max_gap_list),
        writes_per_day=writes / days,
        writes_per_campaign_day=busiest / days,
        flaps=flaps,
        flapped_lists=flapped,
        strategy=strategy,
        on_time_ratio=metrics.on_time_ratio,
        completed=metrics.completed,
        idle_agent_minutes=metrics.idle_agent_minutes,
        starved_lists=[list(key) for key in metrics.starved_lists],
        writes=writes,
        cycles=cycles,
        decisions=decisions,
        wall_seconds=wall,
        completed_per_list=nested["completed_per_list"],
        on_time_per_list=nested["on_time_per_list"],
    )


def backtest(
    scenario: Scenario,
    rules: Sequence[Path],
    *,
    workdir: Path,
    step: timedelta = timedelta(minutes=1),
    duration: timedelta | None = None,
    strategies: Sequence[Strategy] = STRATEGIES,
    progress: Progress | None = None,
) -> BacktestResult:
    """Run every strategy on ``scenario``; the ``rules`` run keeps its files in ``workdir``."""
    span = scenario.duration if duration is None else min(duration, scenario.duration)
    results: dict[str, StrategyResult] = {
        name: run_strategy(
            scenario,
            name,
            rules=rules,
            workdir=workdir,
            step=step,
            duration=span,
            progress=progress,
        )
        for name in strategies
    }
    tz = scenario.tz
    return BacktestResult(
        scenario=scenario.name or "(unnamed)",
        start=scenario.start.astimezone(tz).isoformat(timespec="minutes"),
        end=(scenario.start + span).astimezone(tz).isoformat(timespec="minutes"),
        strategies=results,
    )
