"""Replay: what a new rule set would have decided on the cycles the decision log recorded.

Pure apart from its input stream: recorded cycles go in (``mixer.recorded``), the same
``plan_campaign`` the daemon runs is called on each, and the differences from what the
running rules decided come out. No QM call, no state store: the replay keeps its own
memory (baselines, rule timers, change counts) and its own counter history, rebuilt
from the log as it goes.

What the new rules would have *written* is carried forward: each list has a shadow
(weight, paused) — what QM would show had the new rules run. It starts as the recorded
state, follows the new plan's writes in cycles that ran in ``apply`` mode (in
``dry-run`` nothing was written, so nothing moves), and takes the recorded state again
whenever the recording shows a change the running mixer did not make (a human's), which
the new run's memory then treats as an override, as the daemon would.

What a replay cannot know: the counters (added, pulled, completed, can-reserve) are the
ones recorded under the running rules. Under other weights the dialer would have pulled
other lists, so rates, pacing facts and every later decision are "as if the dialer had
behaved as it did". A replay compares decisions, not outcomes; ``CAVEATS`` says so in
every output.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mixer.engine.facts import EngineSettings
from mixer.engine.memory import HistorySample, ListMemory
from mixer.engine.pool import pool_facts
from mixer.engine.rules import RuleSet
from mixer.guardrails import Limits
from mixer.plan import campaign_facts, plan_campaign
from mixer.recorded import RecordedCycle, RecordedList
from mixer.snapshot import CampaignSnapshot, ListSnapshot

State = tuple[int, bool]  # (weight, paused)
Progress = Callable[[str, float], None]

CAVEATS = (
    "A replay shows decisions, not outcomes: the counters (added, pulled, completed, "
    "can-reserve) are those recorded under the running rules; with other weights the "
    "dialer would have pulled other lists, so rates, pacing facts and later decisions "
    "are computed as if it had pulled the same numbers.",
    "The replay's memory starts at the first recorded cycle it reads (the warm-up, one "
    "history window before --since): baselines are the weights seen then, and for:/"
    "cooldown timers and max_changes_per_day counts start from zero.",
)
NO_NOTES_CAVEAT = (
    "This log predates recorded list notes: deadline tags in notes are unknown, so only "
    "deadlines from the rules' lists: metadata count, and idle_minutes is unknown."
)


@dataclass(frozen=True, slots=True)
class ReplayChange:
    """One cycle where the running and the new rules decided a list differently."""

    ts: datetime
    campaign: str
    list: str
    recorded: State  # what QM showed (the running rules' world)
    before: State  # what QM would have shown under the new rules
    old: State  # what the running rules decided (the recorded state when no decision)
    old_rules: tuple[str, ...]
    old_reason: str
    new: State  # what the new rules decided (``before`` when no decision)
    new_rules: tuple[str, ...]
    new_reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "ts": self.ts.astimezone(UTC).isoformat(timespec="seconds"),
            "campaign": self.campaign,
            "list": self.list,
            "recorded": _state_dict(self.recorded),
            "before": _state_dict(self.before),
            "old": {**_state_dict(self.old), "rules": list(self.old_rules)},
            "old_reason": self.old_reason,
            "new": {**_state_dict(self.new), "rules": list(self.new_rules)},
            "new_reason": self.new_reason,
        }


@dataclass(slots=True)
class ListSummary:
    """One list over the whole replay: how long and how often the two rule sets differed."""

    campaign: str
    list: str
    weight_differed: timedelta = timedelta(0)
    paused_differed: timedelta = timedelta(0)
    changes: int = 0  # ReplayChange rows
    old_changes: int = 0  # times the running rules moved the list's decided state
    new_changes: int = 0  # times the new rules did

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "list": self.list,
            "weight_differed_minutes": round(self.weight_differed.total_seconds() / 60, 1),
            "paused_differed_minutes": round(self.paused_differed.total_seconds() / 60, 1),
            "differing_changes": self.changes,
            "old_changes": self.old_changes,
            "new_changes": self.new_changes,
        }


@dataclass
class ReplayResult:
    """Everything a replay found; ``timeline`` holds change points only."""

    since: datetime
    until: datetime
    cycles: int = 0
    warmup_cycles: int = 0
    last: datetime | None = None  # the last cycle replayed
    changes: list[ReplayChange] = field(default_factory=list)
    lists: dict[tuple[str, str], ListSummary] = field(default_factory=dict)
    rule_counts: dict[str, Counter[str]] = field(
        default_factory=lambda: {"old": Counter(), "new": Counter()}
    )
    # (campaign, list) -> [(ts, old weight, new weight, old paused, new paused)]
    timeline: dict[tuple[str, str], list[tuple[datetime, int, int, bool, bool]]] = field(
        default_factory=dict
    )
    caveats: list[str] = field(default_factory=lambda: list(CAVEATS))
    # (rule, message) -> list-cycles where the new rule raised (the list was left alone)
    rule_errors: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def differing_lists(self) -> list[ListSummary]:
        return [
            s
            for s in self.lists.values()
            if s.changes or s.weight_differed > timedelta(0) or s.paused_differed > timedelta(0)
        ]

    def to_dict(self) -> dict[str, Any]:
        rules = sorted(set(self.rule_counts["old"]) | set(self.rule_counts["new"]))
        return {
            "since": self.since.astimezone(UTC).isoformat(timespec="seconds"),
            "until": self.until.astimezone(UTC).isoformat(timespec="seconds"),
            "cycles": self.cycles,
            "warmup_cycles": self.warmup_cycles,
            "last": None
            if self.last is None
            else self.last.astimezone(UTC).isoformat(timespec="seconds"),
            "caveats": list(self.caveats),
            "changes": [c.to_dict() for c in self.changes],
            "rules": {
                name: {"old": self.rule_counts["old"][name], "new": self.rule_counts["new"][name]}
                for name in rules
            },
            "lists": [s.to_dict() for s in self.lists.values()],
            "rule_errors": [
                {"rule": rule, "message": message, "count": count}
                for (rule, message), count in self.rule_errors.most_common()
            ],
            "timeline": [
                {
                    "campaign": campaign,
                    "list": name,
                    "points": [
                        [p[0].astimezone(UTC).isoformat(timespec="seconds"), *p[1:]] for p in points
                    ],
                }
                for (campaign, name), points in self.timeline.items()
            ],
        }


@dataclass
class _CampaignReplay:
    """The replay's own state for one campaign, carried from cycle to cycle."""

    memory: dict[str, ListMemory] = field(default_factory=dict)
    history: dict[str, list[HistorySample]] = field(default_factory=dict)
    shadow: dict[str, State] = field(default_factory=dict)  # QM under the new rules
    expected: dict[str, State] = field(default_factory=dict)  # the recording's next state
    decided: dict[str, tuple[State, State]] = field(default_factory=dict)  # (old, new)
    # The lists read last cycle, handed back when unchanged (RecordedCycle.snapshot).
    read: dict[str, tuple[RecordedList, int, bool, ListSnapshot]] = field(default_factory=dict)
    last_ts: datetime | None = None


def replay(
    cycles: Iterable[RecordedCycle],
    rules: RuleSet,
    *,
    since: datetime,
    until: datetime,
    settings: EngineSettings,
    limits: Limits,
    progress: Progress | None = None,
    pools: Sequence[Sequence[str]] = (),
) -> ReplayResult:
    """Run ``rules`` over ``cycles`` (oldest first); differences count from ``since``.

    Cycles before ``since`` are the warm-up: they build history and memory only.
    ``pools``: the campaigns that share agents (``Settings.pools()``): the cycles a pool's
    campaigns recorded at one cycle time are planned together, with the ``pool_*`` facts
    over all of them, as the daemon plans them.
    """
    result = _Collector(since, until)
    states: dict[str, _CampaignReplay] = {}
    window = settings.history_window
    span = max((until - since).total_seconds(), 1.0)
    start = since - window
    shown = 0.0
    pool_of = {campaign: tuple(pool) for pool in pools if len(pool) > 1 for campaign in pool}
    for group in _same_time(cycles, until):
        _replay_group(group, states, pool_of, rules, settings, limits, result)
        if progress is not None:
            fraction = (group[0].ts - start).total_seconds() / (span + window.total_seconds())
            if fraction - shown >= 0.01:
                shown = fraction
                progress("replay", fraction)
    if progress is not None:
        progress("replay", 1.0)
    return result.finish()


class _Collector:
    """Collects differences cycle by cycle, and the durations once each list's next cycle
    shows how long a state held."""

    def __init__(self, since: datetime, until: datetime) -> None:
        self.result = ReplayResult(since=since, until=until)
        self.notes_missing = False

    def summary(self, campaign: str, name: str) -> ListSummary:
        key = (campaign, name)
        found = self.result.lists.get(key)
        if found is None:
            found = self.result.lists[key] = ListSummary(campaign, name)
        return found

    def finish(self) -> ReplayResult:
        if self.notes_missing:
            self.result.caveats.append(NO_NOTES_CAVEAT)
        return self.result


def _same_time(cycles: Iterable[RecordedCycle], until: datetime) -> Iterator[list[RecordedCycle]]:
    """Consecutive cycles recorded at one cycle time (every campaign's record of a daemon
    cycle carries the cycle's *now*), up to ``until``."""
    group: list[RecordedCycle] = []
    for cycle in cycles:
        if cycle.ts >= until:
            break
        if group and cycle.ts != group[0].ts:
            yield group
            group = []
        group.append(cycle)
    if group:
        yield group


def _replay_group(
    group: list[RecordedCycle],
    states: dict[str, _CampaignReplay],
    pool_of: Mapping[str, tuple[str, ...]],
    rules: RuleSet,
    settings: EngineSettings,
    limits: Limits,
    out: _Collector,
) -> None:
    """Replay the cycles of one cycle time: a lone campaign's as before; the campaigns of
    a pool once all of the pool's recorded cycles at that time are prepared."""
    prepared: list[tuple[RecordedCycle, _CampaignReplay, CampaignSnapshot]] = []
    for cycle in group:
        state = states.get(cycle.campaign)
        if state is None:
            state = states[cycle.campaign] = _CampaignReplay()
        prepared.append((cycle, state, _prepare_cycle(cycle, state, settings, out)))
    pooled: dict[tuple[str, ...], dict[str, dict[str, dict[str, object]]]] = {}
    for cycle, state, snapshot in prepared:
        pool = pool_of.get(cycle.campaign)
        if pool is not None:
            pooled.setdefault(pool, {})[cycle.campaign] = campaign_facts(
                rules.for_campaign(cycle.campaign),
                snapshot,
                state.memory,
                state.history,
                cycle.ts,
                settings,
                limits,
            )
    facts = {pool: pool_facts(campaigns) for pool, campaigns in pooled.items()}
    for cycle, state, snapshot in prepared:
        pool = pool_of.get(cycle.campaign)
        own = None if pool is None else facts[pool][cycle.campaign]
        _replay_cycle(cycle, state, snapshot, rules, settings, limits, out, own)


def _prepare_cycle(
    cycle: RecordedCycle, state: _CampaignReplay, settings: EngineSettings, out: _Collector
) -> CampaignSnapshot:
    """The shadow state and counter history brought to the recorded cycle: the snapshot
    the new rules see."""
    now = cycle.ts
    counting = now >= out.result.since
    shadow, expected = state.shadow, state.expected
    for rec in cycle.lists:
        found = (rec.weight, rec.paused)
        known = shadow.get(rec.name)
        if known is None or expected.get(rec.name, found) != found:
            shadow[rec.name] = found  # first sight, or a change the running mixer did not make
        if counting and not rec.notes_recorded:
            out.notes_missing = True
    utc_now = now.astimezone(UTC)
    cut = utc_now - settings.history_window
    history = state.history
    for rec in cycle.lists:
        sample = HistorySample(
            ts=utc_now, pulled=rec.pulled, completed=rec.completed, added=rec.added
        )
        samples = history.get(rec.name)
        if samples is None:
            history[rec.name] = [sample]
            continue
        # The window the store would hand over: one sample in, the oldest ones out.
        while samples and samples[0].ts < cut:
            del samples[0]
        samples.append(sample)
    return cycle.snapshot(shadow, state.read)


def _replay_cycle(
    cycle: RecordedCycle,
    state: _CampaignReplay,
    snapshot: CampaignSnapshot,
    rules: RuleSet,
    settings: EngineSettings,
    limits: Limits,
    out: _Collector,
    pool: Mapping[str, Mapping[str, object]] | None = None,
) -> None:
    now = cycle.ts
    counting = now >= out.result.since
    shadow, expected = state.shadow, state.expected
    plan = plan_campaign(
        rules.for_campaign(cycle.campaign),
        snapshot,
        state.memory,
        state.history,
        now,
        settings,
        limits,
        pool,
    )
    if counting:
        for error in plan.rule_errors:
            out.result.rule_errors[(error.rule, error.message)] += 1
    written = {u.name for u in plan.updates} if cycle.mode == "apply" else set()
    state.memory = plan.memory_after(written)
    new_decisions = {d.list: d for d in plan.decisions}

    # Durations: the previous decided states held from the last cycle until now.
    if counting and state.last_ts is not None:
        held = now - max(state.last_ts, out.result.since)
        for name, (old, new) in state.decided.items():
            if old[0] != new[0] and not old[1] and not new[1]:  # paused: weight is moot
                out.summary(cycle.campaign, name).weight_differed += held
            if old[1] != new[1]:
                out.summary(cycle.campaign, name).paused_differed += held
    state.last_ts = now

    for rec in cycle.lists:
        name = rec.name
        recorded = (rec.weight, rec.paused)
        before = shadow[name]
        old_decision = cycle.decisions.get(name)
        new_decision = new_decisions.get(name)
        old = old_decision.after if old_decision is not None else recorded
        new = (
            (new_decision.after_weight, new_decision.after_paused)
            if new_decision is not None
            else before
        )
        previous = state.decided.get(name)
        state.decided[name] = (old, new)
        if name in written and new_decision is not None:
            shadow[name] = new
        expected[name] = old if old_decision is not None and old_decision.applied else recorded
        if not counting:
            continue
        if previous is None or previous[0] != old or previous[1] != new:
            summary = out.summary(cycle.campaign, name)
            if previous is None or previous[0] != old:
                summary.old_changes += previous is not None
            if previous is None or previous[1] != new:
                summary.new_changes += previous is not None
            points = out.result.timeline.setdefault((cycle.campaign, name), [])
            points.append((now, old[0], new[0], old[1], new[1]))
            if old != new:
                old_rules = old_decision.rules if old_decision is not None else ()
                new_rules = new_decision.rules if new_decision is not None else ()
                out.result.changes.append(
                    ReplayChange(
                        ts=now,
                        campaign=cycle.campaign,
                        list=name,
                        recorded=recorded,
                        before=before,
                        old=old,
                        old_rules=old_rules,
                        old_reason=old_decision.reason if old_decision is not None else "",
                        new=new,
                        new_rules=new_rules,
                        new_reason=new_decision.reason if new_decision is not None else "",
                    )
                )
                summary.changes += 1
                out.result.rule_counts["old"].update(old_rules)
                out.result.rule_counts["new"].update(new_rules)
    if counting:
        out.result.cycles += 1
        if out.result.last is None or now > out.result.last:
            out.result.last = now
    else:
        out.result.warmup_cycles += 1


def _state_dict(state: State) -> dict[str, object]:
    return {"weight": state[0], "paused": state[1]}
