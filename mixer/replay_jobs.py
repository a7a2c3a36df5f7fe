"""Replay over the decision log on disk: campaigns spread over worker processes.

Campaigns are independent in a replay (each has its own memory, history and shadow
state), so each worker reads only its campaigns' lines of the log and replays them;
the results are merged in the parent. One campaign, or one core, runs in-process.
The progress bar shows the slowest worker.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from mixer.engine.facts import EngineSettings
from mixer.guardrails import Limits
from mixer.replay import ReplayResult, replay

Progress = Callable[[str, float], None]

_shared: Any = None  # the workers' progress fractions (a multiprocessing.Array)


def replay_log(
    log: Path,
    rule_files: Sequence[Path],
    campaigns: Sequence[str],
    *,
    since: datetime,
    until: datetime,
    settings: EngineSettings,
    limits: Limits,
    jobs: int | None = None,
    progress: Progress | None = None,
    pools: Sequence[Sequence[str]] = (),
) -> ReplayResult:
    """Replay ``rule_files`` on the cycles of ``campaigns`` in ``log`` (from one history
    window before ``since``, the warm-up, to ``until``). ``pools``: the campaigns that share
    agents, replayed together in one worker (a pool's facts span its campaigns replayed)."""
    units = _units(campaigns, pools)
    workers = min(jobs or os.cpu_count() or 1, len(units)) or 1
    groups = [[c for unit in units[i::workers] for c in unit] for i in range(workers)]
    shared = [tuple(p) for p in pools if len(p) > 1]
    tasks = [
        (log, list(rule_files), g, since, until, settings, limits, i, shared)
        for i, g in enumerate(groups)
    ]
    if workers == 1:
        return _replay_group(*tasks[0], progress=progress)
    fractions = multiprocessing.get_context("fork").Array("d", workers)
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init, initargs=(fractions,)) as pool:
        pending = pool.starmap_async(_replay_group, tasks)
        while not pending.ready():
            pending.wait(0.1)
            if progress is not None:
                progress("replay", min(fractions[:]))
        results = pending.get()
    if progress is not None:
        progress("replay", 1.0)
    return merge(results, campaigns)


def _units(campaigns: Sequence[str], pools: Sequence[Sequence[str]]) -> list[list[str]]:
    """The replayed campaigns as units of work: a pool's campaigns together, in order."""
    units: dict[object, list[str]] = {}
    for campaign in campaigns:
        pool = next((tuple(p) for p in pools if campaign in p and len(p) > 1), campaign)
        units.setdefault(pool, []).append(campaign)
    return list(units.values())


def _init(fractions: Any) -> None:
    global _shared
    _shared = fractions


def _replay_group(
    log: Path,
    rule_files: list[Path],
    campaigns: list[str],
    since: datetime,
    until: datetime,
    settings: EngineSettings,
    limits: Limits,
    index: int,
    pools: Sequence[Sequence[str]] = (),
    *,
    progress: Progress | None = None,
) -> ReplayResult:
    from mixer.recorded import read_cycle_records, recorded_cycles
    from mixer.rule_loading import load_rules

    if progress is None and _shared is not None:
        shared = _shared

        def progress(_label: str, fraction: float) -> None:
            shared[index] = fraction

    records = read_cycle_records(
        log, since=since - settings.history_window, until=until, campaigns=campaigns
    )
    return replay(
        recorded_cycles(records),
        load_rules(rule_files),
        since=since,
        until=until,
        settings=settings,
        limits=limits,
        progress=progress,
        pools=pools,
    )


def merge(results: Sequence[ReplayResult], campaigns: Sequence[str]) -> ReplayResult:
    """One result from the workers' (campaigns do not overlap): changes in time order,
    lists and timelines campaign by campaign in ``campaigns`` order, as one process
    gives them when cycles come in that order (so ``--jobs`` never changes the output)."""
    first = results[0]
    merged = ReplayResult(since=first.since, until=first.until, caveats=list(first.caveats))
    for result in results:
        merged.cycles += result.cycles
        merged.warmup_cycles += result.warmup_cycles
        if result.last is not None and (merged.last is None or result.last > merged.last):
            merged.last = result.last
        merged.changes.extend(result.changes)
        merged.lists.update(result.lists)
        merged.timeline.update(result.timeline)
        for side in ("old", "new"):
            merged.rule_counts[side].update(result.rule_counts[side])
        merged.caveats.extend(c for c in result.caveats if c not in merged.caveats)
        merged.rule_errors.update(result.rule_errors)
    rank = {name: index for index, name in enumerate(campaigns)}
    merged.changes.sort(key=lambda c: (c.ts, rank.get(c.campaign, len(rank))))
    merged.lists = dict(sorted(merged.lists.items(), key=lambda kv: rank.get(kv[0][0], 0)))
    merged.timeline = dict(sorted(merged.timeline.items(), key=lambda kv: rank.get(kv[0][0], 0)))
    return merged
