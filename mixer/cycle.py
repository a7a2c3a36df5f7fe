"""One mixer cycle for every configured campaign: the code ``once``, ``run``, the
simulator and the tests share.

*Now* is read once, at the start, and passed down. Each campaign runs as one pipeline —
read, plan, write, verify, log — started as soon as a worker is free, at most
``qm.concurrency`` at once (one thread pool kept for the runner's life), so QM sees at
most that many requests in flight, reads and writes together, and a campaign's write
follows its own read at once: the window in which a supervisor's change could be
overwritten unseen is one campaign's plan, measured as ``read_to_write_ms``. A campaign
whose read fails gets no write this cycle; the others carry on. Campaigns that share
agents (config ``agent_pools``) are one pipeline: read each, then plan each with the
``pool_*`` facts over all of them that were read (``mixer.engine.pool``), then write,
verify and log each. The state store and the
decision log each have one writer (their lock and their single connection or file);
a campaign's records keep their order. Every outcome lands in the decision log as a
typed record (``mixer.records``), and the log is fsynced before the cycle returns.
Runners are built from the settings by ``mixer.wiring.build_runner``.
"""

from __future__ import annotations

import errno
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixer.audit import Fingerprint, fingerprint, loaded_record, refused_record
from mixer.clock import Clock
from mixer.config import Settings
from mixer.decisions import DecisionLog
from mixer.engine.facts import EngineSettings
from mixer.engine.memory import HistorySample, ListMemory
from mixer.engine.rules import RuleSet
from mixer.errors import MixerError
from mixer.guardrails import Limits
from mixer.intents import Intent, late_decision, resolve_intents
from mixer.logs import get_logger
from mixer.qm import QMClient
from mixer.qm.verify import changed_mismatches
from mixer.snapshot import CampaignSnapshot, ListUpdate
from mixer.store import StateStore, StoreError

if TYPE_CHECKING:  # the metrics module (prometheus_client) loads only where it serves
    # The record types load with the first record written, after the first read.
    from mixer.metrics import MixerMetrics
    from mixer.plan import CampaignPlan, Decision, RuleError  # (the planner: after a read)
    from mixer.records import AnyRecord, ConfigRecord, DecisionRecord, Mode, Outcome

PRUNE_EVERY = timedelta(minutes=10)  # how far the history cut moves between two prunes


@dataclass
class CampaignResult:
    """What happened to one campaign in one cycle."""

    campaign: str
    outcome: Outcome
    error: str | None = None
    plan: CampaignPlan | None = None
    applied: bool = False
    writes: int = 0
    written: frozenset[str] = frozenset()  # the lists whose update QM shows applied
    # From the read's reply to the write's reply: the longest a supervisor's change made
    # meanwhile could go unseen (None: nothing written).
    read_to_write_ms: float | None = None

    @property
    def rule_errors(self) -> tuple[RuleError, ...]:
        return self.plan.rule_errors if self.plan is not None else ()


@dataclass
class CycleReport:
    """The result of one cycle, for the CLI, the daemon and the simulator."""

    cycle_id: str
    now: datetime
    mode: Mode
    results: dict[str, CampaignResult] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def outcomes(self) -> dict[str, str]:
        return {name: r.outcome for name, r in self.results.items()}

    @property
    def errors(self) -> dict[str, str]:
        return {name: r.error for name, r in self.results.items() if r.error}

    @property
    def changes(self) -> int:
        return sum(len(r.plan.decisions) for r in self.results.values() if r.plan)

    @property
    def writes(self) -> int:
        return sum(r.writes for r in self.results.values())

    @property
    def exit_code(self) -> int:
        """1 when a campaign failed or a rule raised for a list (that list was left alone)."""
        failed = any(r.outcome == "error" or r.rule_errors for r in self.results.values())
        return 1 if failed else 0


@dataclass(frozen=True)
class _Staged:
    """One campaign's read with the memory and history its plan starts from."""

    snapshot: CampaignSnapshot
    memory: Mapping[str, ListMemory]
    settled: list[Intent]
    history: Mapping[str, Sequence[HistorySample]]


@dataclass
class _StandingStop:
    """A guardrail stop that repeats cycle after cycle: logged when it begins and ends."""

    signature: tuple[object, ...]
    guardrail: str
    lists: tuple[str, ...]
    cycles: int = 1


class CycleRunner:
    """Runs cycles against one QM, with one state store and one decision log."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: QMClient,
        store: StateStore,
        decision_log: DecisionLog,
        clock: Clock,
        rules: RuleSet,
        limits: Limits,
        engine_settings: EngineSettings,
        metrics: MixerMetrics | None = None,
        log: Any = None,
        mode: Mode | None = None,
        on_result: Callable[[CampaignResult], None] | None = None,
        fingerprint: Fingerprint | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.store = store
        self.decision_log = decision_log
        self.clock = clock
        self.rules = rules
        self.metrics = metrics
        self.log = log if log is not None else get_logger()
        self.mode: Mode = mode or settings.mode
        self.limits = limits
        self.engine_settings = engine_settings
        self.on_result = on_result
        # The config and rule files' hashes, taken once when the runner was built: the
        # config record and every cycle record (its short form) name the same rule set.
        self.fingerprint = fingerprint
        self.rules_hash = fingerprint.short if fingerprint is not None else None
        # Created at the first cycle with more than one campaign, kept until close().
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._pruned_to: datetime | None = None  # the last cut prune_history applied
        self._read_at: dict[str, float] = {}  # per campaign: when its last read replied
        self._skipped: dict[str, dict[str, str]] = {}  # per campaign: lists left alone, why
        # Per campaign: the stop in force, and each failing (list, rule) with its cycles.
        self._standing_stops: dict[str, _StandingStop] = {}
        self._failing_rules: dict[str, dict[tuple[str, str], int]] = {}

    def run_cycle(self) -> CycleReport:
        now = self.clock.now()
        started = time.monotonic()
        report = CycleReport(cycle_id=_cycle_id(now), now=now, mode=self.mode)
        campaigns = list(self.settings.campaigns)
        self._contained("the decision log", self.decision_log.reopen_if_moved)
        results: dict[str, CampaignResult] = {}
        for result in self._pipelines(self.settings.pools(), now, report.cycle_id):
            results[result.campaign] = result
            if self.on_result is not None:
                self.on_result(result)
        report.results = {campaign: results[campaign] for campaign in campaigns}
        self._contained("the state store", lambda: self._prune(now))
        self._contained("the decision log", self.decision_log.sync)
        report.duration_s = time.monotonic() - started
        return report

    def _pipelines(
        self, pools: Sequence[tuple[str, ...]], now: datetime, cycle_id: str
    ) -> Iterator[CampaignResult]:
        """Each pool's pipeline (a lone campaign's, or the campaigns sharing agents), at
        most ``qm.concurrency`` at once; results as they finish (in turn, on this thread,
        when one at a time is allowed)."""
        workers = min(self.settings.qm.concurrency, len(pools))
        if workers <= 1:
            for campaigns in pools:
                yield from self._pool_pipeline(campaigns, now, cycle_id)
            return
        if self._pool is None or self._pool_size < workers:  # a reload may add campaigns
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="campaign")
            self._pool_size = workers
        futures = [self._pool.submit(self._pool_pipeline, c, now, cycle_id) for c in pools]
        try:
            for future in as_completed(futures):
                yield from future.result()
        finally:
            # A pipeline that raised ends the cycle only once the others are done: none
            # may still write to the store or the log when the next cycle starts.
            wait(futures)

    def _pool_pipeline(
        self, campaigns: tuple[str, ...], now: datetime, cycle_id: str
    ) -> list[CampaignResult]:
        """A lone campaign's pipeline, or the pipeline of campaigns sharing agents: each
        read in turn, then each planned with the ``pool_*`` facts over all of them that
        were read (a campaign whose read failed is left out of the pool this cycle, as it
        gets no write), written, verified and logged."""
        if len(campaigns) == 1:
            return [self._pipeline(campaigns[0], now, cycle_id)]
        t0 = time.monotonic()
        reads = {campaign: self._read(campaign, now) for campaign in campaigns}
        results: dict[str, CampaignResult] = {}
        staged: dict[str, _Staged] = {}
        for campaign, read in reads.items():
            if isinstance(read, CampaignSnapshot):
                try:
                    staged[campaign] = self._stage(campaign, read, now)
                except Exception as exc:
                    results[campaign] = self._failed(campaign, exc, now, cycle_id)
        pool: dict[str, dict[str, dict[str, object]]] = {}
        try:
            pool = self._pool_facts(staged, now)
        except Exception as exc:  # each campaign of the pool fails as its own plan would
            for campaign in staged:
                results[campaign] = self._failed(campaign, exc, now, cycle_id)
        for campaign in campaigns:
            if campaign in results:
                continue
            read = reads[campaign]
            try:
                result = self._run_campaign(
                    campaign, read, now, cycle_id, staged.get(campaign), pool.get(campaign)
                )
                self._log_cycle(result, read, now, cycle_id, (time.monotonic() - t0) * 1000)
            except Exception as exc:
                result = self._failed(campaign, exc, now, cycle_id)
            results[campaign] = result
        return [results[campaign] for campaign in campaigns]

    def _pool_facts(
        self, staged: Mapping[str, _Staged], now: datetime
    ) -> dict[str, dict[str, dict[str, object]]]:
        """The ``pool_*`` facts of every list of the campaigns read, from the facts each
        campaign's plan will compute (pure, as the plan)."""
        from mixer.engine.pool import pool_facts  # the planner: after a read, as plan_campaign
        from mixer.plan import campaign_facts

        return pool_facts(
            {
                campaign: campaign_facts(
                    self.rules.for_campaign(campaign),
                    one.snapshot,
                    one.memory,
                    one.history,
                    now,
                    self.engine_settings,
                    self.limits,
                )
                for campaign, one in staged.items()
            }
        )

    def _pipeline(self, campaign: str, now: datetime, cycle_id: str) -> CampaignResult:
        """Read, plan, write, verify and log one campaign."""
        t0 = time.monotonic()
        read = self._read(campaign, now)
        try:
            result = self._run_campaign(campaign, read, now, cycle_id)
            result_ms = (time.monotonic() - t0) * 1000
            self._log_cycle(result, read, now, cycle_id, result_ms)
        except Exception as exc:  # contained to this campaign; the others go on
            return self._failed(campaign, exc, now, cycle_id)
        return result

    def _failed(
        self, campaign: str, exc: Exception, now: datetime, cycle_id: str
    ) -> CampaignResult:
        """An unexpected failure in one campaign: one clear line, an ``error`` event."""
        from mixer.records import ErrorRecord

        message = unexpected_failure(exc, campaign, self.settings.state_dir)
        self.log.error("cycle", campaign=campaign, mode=self.mode, outcome="error", error=message)
        self.log.debug("traceback", campaign=campaign, exc_info=exc)
        kind = "state" if _is_storage_failure(exc) else "internal"
        try:
            self._append(ErrorRecord(now, cycle_id, campaign, error=message, kind=kind))
        except (OSError, ValueError):
            pass  # the decision log is what failed: the line above says so
        if self.metrics:
            self.metrics.cycle(campaign, "error", 0.0, now)
        return CampaignResult(campaign, "error", error=message)

    def _contained(self, what: str, step: Callable[[], object]) -> None:
        """Run an end-of-cycle step; a failure is one line, not a stopped daemon."""
        try:
            step()
        except (OSError, sqlite3.Error, ValueError) as exc:
            self.log.error(
                "cycle step failed",
                step=what,
                error=unexpected_failure(exc, None, self.settings.state_dir),
            )

    def _prune(self, now: datetime) -> None:
        """Drop history older than twice the window, at most once per ``PRUNE_EVERY``.

        Reads ask ``history`` for one window only, so samples a few minutes past the cut
        are never read; one DELETE per ten minutes of clock instead of one per cycle. A
        clock that moves backwards prunes at once (the cut is then earlier, a no-op).
        """
        cut = now - self.settings.history.window * 2
        last = self._pruned_to
        if last is not None and last <= cut < last + PRUNE_EVERY:
            return
        self.store.prune_history(cut)
        self._pruned_to = cut

    def interrupt(self) -> None:
        """The daemon is stopping: reads in flight end now, none start (see QMClient)."""
        interrupt = getattr(self.client, "interrupt", None)
        if callable(interrupt):
            interrupt()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.client.close()
        self.store.close()
        self.decision_log.close()

    # -- one campaign -------------------------------------------------------------

    def _read(self, campaign: str, now: datetime) -> CampaignSnapshot | MixerError:
        try:
            snapshot = self.client.read_lists(campaign, now=now)
        except MixerError as exc:
            return exc
        except Exception as exc:  # contained to this campaign, as in _run_campaign
            self.log.debug("traceback", campaign=campaign, exc_info=exc)
            return MixerError(unexpected_failure(exc, campaign, self.settings.state_dir))
        self._read_at[campaign] = time.monotonic()
        return snapshot

    def _stage(self, campaign: str, snapshot: CampaignSnapshot, now: datetime) -> _Staged:
        """What a plan starts from: the read's counters added to the history, the memory
        with last cycle's pending intents settled, the history window."""
        self.store.add_samples(campaign, _samples(snapshot, now))
        memory = self.store.load_memory(campaign)
        memory, settled = self._settle_intents(snapshot, memory)
        history = self.store.history(campaign, since=now - self.settings.history.window)
        return _Staged(snapshot, memory, settled, history)

    def _run_campaign(
        self,
        campaign: str,
        read: CampaignSnapshot | MixerError,
        now: datetime,
        cycle_id: str,
        staged: _Staged | None = None,
        pool: Mapping[str, Mapping[str, object]] | None = None,
    ) -> CampaignResult:
        """Plan, write, verify and log one campaign; ``staged`` and ``pool`` when it shares
        agents (staged with the pool's other campaigns, planned with the pool facts)."""
        from mixer.records import ErrorRecord, ListState, OverrideRecord

        if isinstance(read, MixerError):
            self._append(ErrorRecord(now, cycle_id, campaign, error=read.message, kind="read"))
            return CampaignResult(campaign, "error", error=read.message)
        one = staged if staged is not None else self._stage(campaign, read, now)
        snapshot, settled = one.snapshot, one.settled
        from mixer.plan import plan_campaign  # loaded after the first read, not before it

        plan = plan_campaign(
            self.rules.for_campaign(campaign),
            snapshot,
            one.memory,
            one.history,
            now,
            self.engine_settings,
            self.limits,
            pool,
        )
        for override in plan.overrides:
            self._append(
                OverrideRecord(
                    now,
                    cycle_id,
                    campaign,
                    list=override.list,
                    mode=self.mode,
                    expected=ListState(override.expected_weight, override.expected_paused),
                    found=ListState(override.found_weight, override.found_paused),
                    hold_until=override.hold_until,
                    reason=override.reason,
                )
            )
            if self.metrics:
                self.metrics.override(campaign)
        self._log_rule_errors(plan, now, cycle_id)
        repeated = self._log_stops(plan, now, cycle_id)
        self._report_skipped(campaign, plan.skipped)
        if plan.recreated:
            self.store.forget_history(campaign, plan.recreated, now)
            self.log.warning(
                "list re-created: its memory starts fresh",
                campaign=campaign,
                lists=sorted(plan.recreated),
            )

        result = CampaignResult(campaign, "guardrail" if plan.stopped else "ok", plan=plan)
        records = {d.list: self._decision_record(plan, d, cycle_id) for d in plan.decisions}
        written: set[str] = set()
        unknown: set[str] = set()
        intents: list[Intent] = []
        if self.mode == "apply" and plan.updates:
            names = plan.update_names
            intents = [self._intent(plan, d, cycle_id) for d in plan.decisions if d.list in names]
            # Durable before anything is sent: a crash from here on leaves the intent,
            # and the next cycle knows a value equal to it for the mixer's own.
            self.store.record_intents(campaign, intents)
            written, unknown = self._write(plan, result, now, cycle_id)
        result.applied = bool(written)
        result.writes = len(written)
        result.written = frozenset(written)
        # A refused plan that repeats the last cycle's was logged when it began.
        for d in () if repeated else plan.decisions:
            if d.list in unknown:
                continue  # logged by the cycle that learns the outcome (from the intent)
            self._append(replace(records[d.list], applied=d.list in written))
        settled += [i for i in intents if i.list not in unknown]
        self.store.save_memory(campaign, plan.memory_after(written), settled=settled)
        if self.metrics and written:
            self.metrics.writes(campaign, len(written))
        return result

    def _report_skipped(self, campaign: str, skipped: Mapping[str, str]) -> None:
        """Warn when a list starts being left alone (or why changes), and say when it
        ends; every cycle record lists them, the log need not repeat it every minute."""
        before = self._skipped.get(campaign, {})
        for name, why in skipped.items():
            if before.get(name) != why:
                self.log.warning("list left alone", campaign=campaign, list=name, reason=why)
        for name in before.keys() - skipped.keys():
            self.log.info("list no longer left alone", campaign=campaign, list=name)
        self._skipped[campaign] = dict(skipped)

    def _settle_intents(
        self, snapshot: CampaignSnapshot, memory: dict[str, ListMemory]
    ) -> tuple[dict[str, ListMemory], list[Intent]]:
        """Settle the intents an earlier cycle left pending against what QM shows now.

        A value equal to an intent's is the mixer's own write: its memory is brought up
        to date and its decision is logged (``late``), unless that cycle logged it before
        it stopped. Returns the memory and the intents settled (deleted when it is saved).
        """
        pending = self.store.intents(snapshot.campaign)
        if not pending:
            return memory, []
        memory, resolutions = resolve_intents(
            snapshot, memory, pending, self.engine_settings.timezone
        )
        if not resolutions:
            return memory, []
        logged = self.decision_log.logged_decisions(
            {r.intent.cycle_id for r in resolutions},
            since=min(r.intent.at for r in resolutions),
        )
        for resolution in resolutions:
            intent = resolution.intent
            if (intent.cycle_id, intent.list) in logged:
                continue
            self.decision_log.append(late_decision(resolution))
            self.log.warning(
                "write settled late",
                campaign=intent.campaign,
                list=intent.list,
                cycle_id=intent.cycle_id,
                outcome=resolution.landed,
            )
        return memory, [r.intent for r in resolutions]

    def _decision_record(self, plan: CampaignPlan, d: Decision, cycle_id: str) -> DecisionRecord:
        from mixer.records import DecisionRecord, ListState

        return DecisionRecord(
            plan.now,
            cycle_id,
            plan.campaign,
            list=d.list,
            mode=self.mode,
            before=ListState(d.before_weight, d.before_paused),
            after=ListState(d.after_weight, d.after_paused),
            rules=d.rules,
            reason=d.reason,
            facts=d.facts,
            applied=False,
            overridden=d.overridden,
        )

    def _intent(self, plan: CampaignPlan, d: Decision, cycle_id: str) -> Intent:
        return Intent(
            campaign=plan.campaign,
            list=d.list,
            cycle_id=cycle_id,
            at=plan.now,
            before_weight=d.before_weight,
            before_paused=d.before_paused,
            after_weight=d.after_weight,
            after_paused=d.after_paused,
            decision=self._decision_record(plan, d, cycle_id).to_json(),
        )

    def _write(
        self, plan: CampaignPlan, result: CampaignResult, now: datetime, cycle_id: str
    ) -> tuple[set[str], set[str]]:
        """Send the plan's updates: (lists that landed, lists whose outcome is unknown)."""
        from mixer.records import ErrorRecord

        campaign = plan.campaign
        try:
            try:
                reply = self.client.update_lists(campaign, plan.updates, read=plan.snapshot)
            finally:
                read_at = self._read_at.get(campaign)
                if read_at is not None:
                    result.read_to_write_ms = round((time.monotonic() - read_at) * 1000, 3)
        except MixerError as exc:
            result.outcome, result.error = "error", exc.message
            self._append(ErrorRecord(now, cycle_id, campaign, error=exc.message, kind="write"))
            # A write can fail after QM applied it (a timeout, a cut connection, a later
            # chunk refused): read back, so what did land is remembered as the mixer's
            # own and not taken for a human's change next cycle.
            try:
                reply = self.client.read_lists(campaign, now=now)
            except MixerError:
                # Not known: the intents stay pending and the next cycle settles them.
                return set(), {u.name for u in plan.updates}
            return _landed(reply, plan.updates), _missing(reply, plan.updates)
        mismatches = changed_mismatches(reply, plan.updates)
        if not mismatches:
            return {u.name for u in plan.updates}, set()
        message = (
            f"QM at {self.client.host} did not take every update (amoUpdateLists, campaign "
            f"{campaign!r}): {'; '.join(mismatches)}; the next cycle tries again, and if "
            "this persists check QM's logs"
        )
        result.outcome, result.error = "error", message
        self._append(ErrorRecord(now, cycle_id, campaign, error=message, kind="verify"))
        return _landed(reply, plan.updates), _missing(reply, plan.updates)

    # -- logging ------------------------------------------------------------------

    def _append(self, record: AnyRecord) -> None:
        self.decision_log.append(record.to_json())

    def log_config_loaded(self) -> None:
        """Record the configuration this runner was built with (start-up, reload)."""
        found = self.fingerprint or fingerprint(
            self.settings.config_path, [Path(f.path) for f in self.rules.files]
        )
        self._log_config(
            loaded_record(
                self.clock.now(),
                self.settings.config_path,
                found,
                rule_count=sum(len(f.rules) for f in self.rules.files),
                campaigns=self.settings.campaigns,
                mode=self.mode,
            )
        )

    def log_config_refused(self, config_path: Path, errors: Sequence[str]) -> None:
        """Record a reload that was refused: this runner's configuration stays in force."""
        self._log_config(refused_record(self.clock.now(), config_path, errors))

    def _log_config(self, record: ConfigRecord) -> None:
        self._append(record)
        self.decision_log.sync()

    def _log_rule_errors(self, plan: CampaignPlan, now: datetime, cycle_id: str) -> None:
        """Each (list, rule) error goes to the decision log and the daemon's log when it
        begins; the daemon's log says when it clears. The metric counts every cycle."""
        from mixer.records import ErrorRecord

        campaign = plan.campaign
        before = self._failing_rules.get(campaign, {})
        now_failing: dict[tuple[str, str], int] = {}
        for error in plan.rule_errors:
            key = (error.list, error.rule)
            now_failing[key] = before.get(key, 0) + 1
            if self.metrics:
                self.metrics.rule_error(error.rule)
            if key in before:
                continue
            self._append(
                ErrorRecord(
                    now,
                    cycle_id,
                    campaign,
                    error=f"rule {error.rule!r} failed for list {error.list!r}: "
                    f"{error.message}; the list was left as QM has it",
                    kind="rule",
                    rule=error.rule,
                    list=error.list,
                )
            )
            self.log.warning(
                "rule error",
                campaign=campaign,
                list=error.list,
                rule=error.rule,
                error=error.message,
            )
        for (list_name, rule), cycles in before.items():
            if (list_name, rule) not in now_failing:
                self.log.warning(
                    "rule error cleared",
                    campaign=campaign,
                    list=list_name,
                    rule=rule,
                    cycles=cycles,
                )
        if now_failing:
            self._failing_rules[campaign] = now_failing
        else:
            self._failing_rules.pop(campaign, None)

    def _log_stops(self, plan: CampaignPlan, now: datetime, cycle_id: str) -> bool:
        """Log guardrail stops as edges; True when this plan repeats the standing stop
        (same guardrail, lists and refused decisions), which was logged when it began."""
        from mixer.records import GuardrailRecord

        campaign = plan.campaign
        standing = self._standing_stops.get(campaign)
        signature = (
            tuple((s.guardrail, s.lists) for s in plan.stops),
            tuple((d.list, d.after_weight, d.after_paused) for d in plan.decisions),
        )
        if self.metrics:
            for stop in plan.stops:
                self.metrics.guardrail_stop(campaign, stop.guardrail)
        if standing is not None and plan.stops and standing.signature == signature:
            standing.cycles += 1
            return True

        def log(guardrail: str, lists: tuple[str, ...], reason: str, ended: int = 0) -> None:
            record = GuardrailRecord(
                now,
                cycle_id,
                campaign,
                mode=self.mode,
                guardrail=guardrail,
                lists=lists,
                reason=reason,
                ended=bool(ended),
                cycles=ended or None,
            )
            self._append(record)

        if standing is not None:
            ended = f"Ended after {_cycles(standing.cycles)}."
            log(standing.guardrail, standing.lists, ended, standing.cycles)
            del self._standing_stops[campaign]
        for stop in plan.stops:
            log(stop.guardrail, stop.lists, stop.reason)
        if plan.stops:
            first = plan.stops[0]
            self._standing_stops[campaign] = _StandingStop(signature, first.guardrail, first.lists)
        return False

    def _log_cycle(
        self,
        result: CampaignResult,
        read: CampaignSnapshot | MixerError,
        now: datetime,
        cycle_id: str,
        duration_ms: float,
    ) -> None:
        from mixer.records import CycleRecord, ListCounters

        plan = result.plan
        lists: dict[str, ListCounters] = {}
        if isinstance(read, CampaignSnapshot):
            lists = {
                item.name: ListCounters(
                    item.weight,
                    item.paused,
                    item.added,
                    item.pulled,
                    item.completed,
                    item.can_reserve,
                    # What replay needs to rebuild the facts: deadline tags, the
                    # completed state and idle minutes (docs/backtests.md).
                    notes=item.notes,
                    dialer_state=item.dialer_state,
                    last_pull=(
                        None
                        if item.last_pull is None
                        else item.last_pull.isoformat(timespec="seconds")
                    ),
                )
                for item in read.lists
            }
        changes = len(plan.decisions) if plan else 0
        self._append(
            CycleRecord(
                now,
                cycle_id,
                result.campaign,
                mode=self.mode,
                lists_seen=len(lists),
                changes=changes,
                applied=result.applied,
                outcome=result.outcome,
                error=result.error,
                duration_ms=round(duration_ms, 3),
                read_to_write_ms=result.read_to_write_ms,
                lists=lists,
                rules_hash=self.rules_hash,
                skipped=plan.skipped if plan else {},
                recreated=tuple(sorted(plan.recreated)) if plan else (),
            )
        )
        self.log.info(
            "cycle",
            campaign=result.campaign,
            mode=self.mode,
            outcome=result.outcome,
            lists=len(lists),
            changes=changes,
            writes=result.writes,
            error=result.error,
            duration_ms=round(duration_ms, 1),
            read_to_write_ms=result.read_to_write_ms,
        )
        if self.metrics:
            self.metrics.cycle(result.campaign, result.outcome, duration_ms / 1000, now)
            if isinstance(read, CampaignSnapshot):
                self.metrics.lists(result.campaign, _state_counts(read))
            if plan is not None:
                self.metrics.plan(plan, result.written)


def _is_storage_failure(exc: BaseException) -> bool:
    return isinstance(exc, OSError | sqlite3.Error | StoreError)


def unexpected_failure(exc: BaseException, campaign: str | None, state_dir: Path) -> str:
    """One line for a failure outside the error tree: what, where, what to do."""
    where = f" (campaign {campaign!r})" if campaign is not None else ""
    if isinstance(exc, MixerError):
        return exc.message
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        name = exc.filename or state_dir
        return (
            f"no space left for {name}{where}: free space on that disk; the mixer sends no "
            "write it cannot record first"
        )
    if isinstance(exc, sqlite3.Error):
        full = "full" in str(exc).lower()
        todo = "free space on that disk" if full else "check the disk and the file's permissions"
        return f"the state store in {state_dir} failed{where} ({exc}): {todo}"
    if isinstance(exc, OSError):
        name = exc.filename or state_dir
        return f"{name} could not be written{where} ({exc.strerror or exc}): check the disk"
    text = " ".join(str(exc).split())[:200]
    return (
        f"internal error{where}: {type(exc).__name__}: {text}; the other campaigns go on, "
        "this one is retried next cycle; please report it (--debug shows the traceback)"
    )


def _landed(reply: CampaignSnapshot, updates: Iterable[ListUpdate]) -> set[str]:
    """The updates QM's listing shows as applied."""
    landed = set()
    for update in updates:
        item = reply.get(update.name)
        if item is not None and (item.weight, item.paused) == (update.weight, update.paused):
            landed.add(update.name)
    return landed


def _cycles(n: int) -> str:
    return f"{n} cycle" if n == 1 else f"{n} cycles"


def _missing(reply: CampaignSnapshot, updates: Iterable[ListUpdate]) -> set[str]:
    """Updated lists QM's listing does not show: whether they landed is not known yet."""
    return {update.name for update in updates if reply.get(update.name) is None}


def _cycle_id(now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"


def _samples(snapshot: CampaignSnapshot, now: datetime) -> dict[str, HistorySample]:
    """One sample per list, stamped in UTC: the store keeps UTC instants, and a sample
    already in UTC is kept as it is instead of being rebuilt."""
    ts = now.astimezone(UTC)
    return {
        item.name: HistorySample(
            ts=ts, pulled=item.pulled, completed=item.completed, added=item.added
        )
        for item in snapshot.lists
    }


def _state_counts(snapshot: CampaignSnapshot) -> dict[str, int]:
    counts = {"open": 0, "paused": 0, "exhausted": 0, "completed": 0}
    for item in snapshot.lists:
        if item.completed_state:
            counts["completed"] += 1
        elif item.paused:
            counts["paused"] += 1
        elif not item.can_reserve:
            counts["exhausted"] += 1
        else:
            counts["open"] += 1
    return counts
