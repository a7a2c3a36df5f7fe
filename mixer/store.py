"""The state store: what the mixer remembers between cycles, in one SQLite file.

SQLite (stdlib) in WAL mode with ``synchronous=FULL``: a committed cycle survives a power
cut, and a reader (``explain``, a backup) never blocks the daemon. The schema carries its
version in ``PRAGMA user_version``; ``MIGRATIONS[n]`` takes a file from version ``n`` to
``n + 1``, so an upgraded daemon opens an older file in place. Times are stored as
fixed-width UTC text, which sorts like the instants and stays readable in ``sqlite3``.

One connection per process, guarded by a lock: the daemon is the one writer.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

from mixer.closing import Closing
from mixer.engine.memory import HistorySample, ListMemory, RuleMemory
from mixer.errors import MixerError
from mixer.intents import Intent

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: memory per list and per rule, counters history.
    """
    CREATE TABLE list_memory (
        campaign TEXT NOT NULL,
        list TEXT NOT NULL,
        base_weight INTEGER NOT NULL,
        human_paused INTEGER NOT NULL,
        first_seen TEXT NOT NULL,
        last_written_weight INTEGER,
        last_written_paused INTEGER,
        paused_by_mixer INTEGER NOT NULL,
        last_change_at TEXT,
        manual_hold_until TEXT,
        changes_day TEXT,
        changes_today INTEGER NOT NULL,
        PRIMARY KEY (campaign, list)
    );
    CREATE TABLE rule_memory (
        campaign TEXT NOT NULL,
        list TEXT NOT NULL,
        rule TEXT NOT NULL,
        holding_since TEXT,
        active INTEGER NOT NULL,
        active_changed_at TEXT,
        PRIMARY KEY (campaign, list, rule)
    );
    CREATE TABLE history (
        campaign TEXT NOT NULL,
        list TEXT NOT NULL,
        ts TEXT NOT NULL,
        pulled INTEGER NOT NULL,
        completed INTEGER NOT NULL,
        added INTEGER NOT NULL,
        PRIMARY KEY (campaign, list, ts)
    );
    CREATE INDEX history_ts ON history (ts);
    """,
    # 1 -> 2: history keyed by time first, without a rowid. A cycle's samples share one
    # instant, so they land side by side at the end of the table instead of on a page per
    # list (a 100-list cycle dirtied ~100 pages; now one or two), and pruning cuts the
    # oldest rows off the front. No separate index on ts is needed.
    """
    CREATE TABLE history_by_time (
        campaign TEXT NOT NULL,
        list TEXT NOT NULL,
        ts TEXT NOT NULL,
        pulled INTEGER NOT NULL,
        completed INTEGER NOT NULL,
        added INTEGER NOT NULL,
        PRIMARY KEY (ts, campaign, list)
    ) WITHOUT ROWID;
    INSERT INTO history_by_time SELECT campaign, list, ts, pulled, completed, added FROM history;
    DROP TABLE history;
    ALTER TABLE history_by_time RENAME TO history;
    """,
    # 2 -> 3: write-ahead intents (mixer.intents): a change recorded before it is sent,
    # deleted in the transaction that saves the memory once its outcome is known.
    """
    CREATE TABLE intent (
        campaign TEXT NOT NULL,
        list TEXT NOT NULL,
        cycle_id TEXT NOT NULL,
        at TEXT NOT NULL,
        before_weight INTEGER NOT NULL,
        before_paused INTEGER NOT NULL,
        after_weight INTEGER NOT NULL,
        after_paused INTEGER NOT NULL,
        decision TEXT NOT NULL,
        PRIMARY KEY (campaign, list, cycle_id)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(MixerError):
    """The state file cannot be used as it is."""


def refuse_lost_state(path: Path, decision_log: Path, wrote: Callable[[], bool]) -> None:
    """Refuse a missing or empty state file when the decision log shows the mixer wrote.

    The memory says which weights the mixer wrote; without it, every list QM shows would
    be taken as a human's baseline and boosted again (10 → 30 → 90). A new install has no
    applied decision in its log; a lost state file leaves them behind: that is refused.
    ``wrote`` (reading the log) is asked only when the state file is missing or empty.
    """
    size = _size(path)
    # In WAL mode a young database can live wholly in ``-wal`` (no checkpoint yet).
    if size or _size(path.with_name(path.name + "-wal")) or not wrote():
        return
    what = "missing" if size is None else "empty (0 bytes)"
    raise StoreError(
        f"state store {path} is {what}, but the decision log {decision_log} records writes "
        "the mixer applied: starting afresh would take the weights it wrote for human "
        "baselines and compound them. Restore the state file from a backup; or set every "
        "list in QM back to its human baseline, move the decision log and its rotated files "
        "aside, and start again (see docs/reliability.md, 'Lost state')"
    )


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


class StateStore(Closing):
    """Memory per list and counters history, for every campaign, in ``path``.

    Write-through cache: the process holding the state directory is its only writer (a
    lock allows one daemon per state directory), so what was read or written once is kept
    in memory and later reads are answered from there. A campaign's history is read from
    the file once, then appended by :meth:`add_samples` and trimmed by
    :meth:`prune_history`; its memory is kept after :meth:`load_memory` and
    :meth:`save_memory`, and a save writes only the rows that differ from the file. A write
    that fails drops the cache, so the next read comes from the file again.

    The ``ListMemory`` and ``HistorySample`` values handed out are shared with the cache:
    they are frozen, and a list's ``rules`` dict must be replaced, never edited in place.
    """

    def __init__(self, path: Path, *, preview: bool = False) -> None:
        self.path = Path(path)
        self.preview = preview
        self._lock = threading.RLock()
        self._memory: dict[str, dict[str, ListMemory]] = {}  # as on file, sorted by list
        self._history: dict[str, _CachedHistory] = {}
        self._intents: dict[str, dict[tuple[str, str], Intent]] = {}  # by (list, cycle_id)
        try:
            self._db = self._open_preview() if preview else self._open()
            self._migrate()
        except sqlite3.DatabaseError as exc:
            if "full" in str(exc).lower():
                raise StoreError(
                    f"state store {self.path} cannot be written ({exc}): free space on that "
                    "disk, then start again"
                ) from exc
            raise StoreError(
                f"state store {self.path} cannot be opened ({exc}): restore it from a backup "
                "(see docs/reliability.md, 'Lost state'); starting without it would take the "
                "mixer's own writes for human baselines"
            ) from exc

    # -- lifecycle ----------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def _open_preview(self) -> sqlite3.Connection:
        """A private in-memory copy of the file as it is now (empty when there is none):
        a preview plans from the daemon's state, and what it 'saves' goes nowhere. WAL
        lets it read while the daemon writes; the copy is one consistent snapshot."""
        db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        if self.path.exists():
            source = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0
            )
            try:
                source.backup(db)
            finally:
                source.close()
        return db

    def _migrate(self) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"state store {self.path} has schema version {version}, newer than this "
                f"amo-mixer understands ({SCHEMA_VERSION}): upgrade amo-mixer"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._transaction() as db:
                for statement in MIGRATIONS[target - 1].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {target}")

    def schema_version(self) -> int:
        with self._lock:
            row = self._db.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def integrity_check(self) -> str:
        """SQLite's own check: ``"ok"`` or the problems it found."""
        with self._lock:
            rows = self._db.execute("PRAGMA integrity_check").fetchall()
        return "; ".join(str(row[0]) for row in rows)

    def close(self) -> None:
        with self._lock:
            self._forget()
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction; on any failure (the commit too) roll back and drop the cache."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._forget()
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _forget(self) -> None:
        self._intents.clear()
        self._memory.clear()
        self._history.clear()

    # -- memory -------------------------------------------------------------------

    def load_memory(self, campaign: str) -> dict[str, ListMemory]:
        """Every list's memory for ``campaign`` (empty for a campaign never seen)."""
        with self._lock:
            cached = self._memory.get(campaign)
            if cached is None:
                cached = self._memory[campaign] = self._read_memory(campaign)
            return dict(cached)

    def _read_memory(self, campaign: str) -> dict[str, ListMemory]:
        lists = self._db.execute(
            "SELECT list, base_weight, human_paused, first_seen, last_written_weight,"
            " last_written_paused, paused_by_mixer, last_change_at, manual_hold_until,"
            " changes_day, changes_today FROM list_memory WHERE campaign = ? ORDER BY list",
            (campaign,),
        ).fetchall()
        rules = self._db.execute(
            "SELECT list, rule, holding_since, active, active_changed_at"
            " FROM rule_memory WHERE campaign = ? ORDER BY list, rule",
            (campaign,),
        ).fetchall()
        by_list: dict[str, dict[str, RuleMemory]] = {}
        for name, rule, holding_since, active, changed_at in rules:
            by_list.setdefault(name, {})[rule] = RuleMemory(
                holding_since=_from_text(holding_since),
                active=bool(active),
                active_changed_at=_from_text(changed_at),
            )
        memory: dict[str, ListMemory] = {}
        for row in lists:
            name = row[0]
            memory[name] = ListMemory(
                base_weight=int(row[1]),
                human_paused=bool(row[2]),
                first_seen=_required(row[3]),
                last_written_weight=None if row[4] is None else int(row[4]),
                last_written_paused=None if row[5] is None else bool(row[5]),
                paused_by_mixer=bool(row[6]),
                last_change_at=_from_text(row[7]),
                manual_hold_until=_from_text(row[8]),
                changes_day=None if row[9] is None else date.fromisoformat(row[9]),
                changes_today=int(row[10]),
                rules=by_list.get(name, {}),
            )
        return memory

    def save_memory(
        self,
        campaign: str,
        memory: Mapping[str, ListMemory],
        *,
        settled: Sequence[Intent] = (),
    ) -> None:
        """Replace ``campaign``'s memory with ``memory`` and delete the ``settled``
        intents, all or nothing (one transaction: an intent is never dropped without
        the memory that records its outcome).

        Only the lists and rules that differ from the file are written (none: no
        transaction), also on a process's first save: ``once`` and a restarted daemon
        write what changed, not every row. The file's memory is the cache when the
        campaign was loaded or saved before, else it is read once here. A preview keeps
        the memory for its own later reads only: what it saves goes nowhere anyway.
        """
        with self._lock:
            if not self.preview:
                previous = self._memory.get(campaign)
                if previous is None:
                    previous = self._read_memory(campaign)
                self._update_memory(campaign, previous, memory, settled)
            self._memory[campaign] = dict(sorted(memory.items()))
            cached = self._intents.get(campaign)
            if cached is not None:
                for intent in settled:
                    cached.pop((intent.list, intent.cycle_id), None)

    # -- write-ahead intents --------------------------------------------------------

    def intents(self, campaign: str) -> list[Intent]:
        """``campaign``'s pending intents (recorded, not yet settled), oldest first."""
        with self._lock:
            cached = self._intents.get(campaign)
            if cached is None:
                cached = self._intents[campaign] = self._read_intents(campaign)
            return list(cached.values())

    def _read_intents(self, campaign: str) -> dict[tuple[str, str], Intent]:
        rows = self._db.execute(
            "SELECT list, cycle_id, at, before_weight, before_paused, after_weight,"
            " after_paused, decision FROM intent WHERE campaign = ? ORDER BY at, cycle_id, list",
            (campaign,),
        ).fetchall()
        found: dict[tuple[str, str], Intent] = {}
        for name, cycle_id, at, bw, bp, aw, ap, decision in rows:
            found[(name, cycle_id)] = Intent(
                campaign=campaign,
                list=name,
                cycle_id=cycle_id,
                at=_required(at),
                before_weight=int(bw),
                before_paused=bool(bp),
                after_weight=int(aw),
                after_paused=bool(ap),
                decision=json.loads(decision),
            )
        return found

    def record_intents(self, campaign: str, intents: Sequence[Intent]) -> None:
        """Durably record ``intents`` (one transaction, fsynced: ``synchronous=FULL``)
        before the write they describe is sent."""
        if not intents:
            return
        rows = [
            (
                campaign,
                i.list,
                i.cycle_id,
                _instant_text(i.at),
                i.before_weight,
                int(i.before_paused),
                i.after_weight,
                int(i.after_paused),
                json.dumps(i.decision, ensure_ascii=False, default=str),
            )
            for i in intents
        ]
        with self._lock:
            self.intents(campaign)  # the cache holds every pending intent before adding
            with self._transaction() as db:
                db.executemany(_INSERT_INTENT, rows)
            cached = self._intents.setdefault(campaign, {})
            for intent in intents:
                cached[(intent.list, intent.cycle_id)] = intent

    def _update_memory(
        self,
        campaign: str,
        previous: Mapping[str, ListMemory],
        memory: Mapping[str, ListMemory],
        settled: Sequence[Intent] = (),
    ) -> None:
        list_rows: list[tuple[object, ...]] = []
        rule_rows: list[tuple[object, ...]] = []
        gone_rules: list[tuple[str, str, str]] = []
        for name, m in memory.items():
            old = previous.get(name)
            if old is m or old == m:
                continue
            if old is None or not _same_list_fields(old, m):
                list_rows.append(_list_row(campaign, name, m))
            old_rules = old.rules if old is not None else {}
            for rule, r in m.rules.items():
                before = old_rules.get(rule)
                if before is not r and before != r:
                    rule_rows.append(_rule_row(campaign, name, rule, r))
            gone_rules.extend((campaign, name, rule) for rule in old_rules if rule not in m.rules)
        gone_lists = [(campaign, name) for name in previous if name not in memory]
        if not (list_rows or rule_rows or gone_rules or gone_lists or settled):
            return
        with self._transaction() as db:
            db.executemany("DELETE FROM list_memory WHERE campaign = ? AND list = ?", gone_lists)
            db.executemany("DELETE FROM rule_memory WHERE campaign = ? AND list = ?", gone_lists)
            db.executemany(
                "DELETE FROM rule_memory WHERE campaign = ? AND list = ? AND rule = ?", gone_rules
            )
            db.executemany(_UPSERT_LIST, list_rows)
            db.executemany(_UPSERT_RULE, rule_rows)
            db.executemany(_DELETE_INTENT, _intent_keys(campaign, settled))

    # -- history ------------------------------------------------------------------

    def add_samples(self, campaign: str, samples: Mapping[str, HistorySample]) -> None:
        """Record one sample per list (a second sample at the same instant replaces it)."""
        texts: dict[datetime, str] = {}  # a cycle's lists share one instant: format it once
        rows: list[tuple[object, ...]] = []
        kept: list[tuple[str, HistorySample]] = []
        for name, s in samples.items():
            text = texts.get(s.ts)
            if text is None:
                text = texts[s.ts] = _instant_text(s.ts)
            rows.append((campaign, name, text, s.pulled, s.completed, s.added))
            if s.ts.tzinfo is not UTC:  # keep what a read of the file gives: UTC instants
                s = HistorySample(_required(text), s.pulled, s.completed, s.added)
            kept.append((name, s))
        with self._lock:
            with self._transaction() as db:
                db.executemany("INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?, ?, ?)", rows)
            cached = self._history.get(campaign)
            if cached is not None:
                for name, sample in kept:
                    cached.put(name, sample)

    def history(self, campaign: str, since: datetime) -> dict[str, list[HistorySample]]:
        """Samples of ``campaign`` at or after ``since``, per list, oldest first."""
        if since.tzinfo is None:
            raise ValueError(f"the state store keeps aware datetimes only, got {since!r}")
        with self._lock:
            cached = self._history.get(campaign)
            if cached is None or since < cached.since:
                cached = self._history[campaign] = self._read_history(campaign, since)
            return cached.since_(since)

    def _read_history(self, campaign: str, since: datetime) -> _CachedHistory:
        text = _instant_text(since)
        rows = self._db.execute(
            "SELECT list, ts, pulled, completed, added FROM history"
            " WHERE campaign = ? AND ts >= ? ORDER BY list, ts",
            (campaign, text),
        ).fetchall()
        found: dict[str, list[HistorySample]] = {}
        instants: dict[str, datetime] = {}  # every list shares the cycle's instant: parse once
        for name, ts, pulled, completed, added in rows:
            when = instants.get(ts)
            if when is None:
                when = instants[ts] = _required(ts)
            found.setdefault(name, []).append(
                HistorySample(ts=when, pulled=pulled, completed=completed, added=added)
            )
        return _CachedHistory(_required(text), found)

    def forget_history(self, campaign: str, names: Collection[str], before: datetime) -> None:
        """Drop the samples of lists ``names`` older than ``before`` (a re-created list:
        its old counters must not feed its rates)."""
        if not names:
            return
        cut = _instant_text(before)
        with self._lock:
            with self._transaction() as db:
                db.executemany(
                    "DELETE FROM history WHERE campaign = ? AND list = ? AND ts < ?",
                    [(campaign, name, cut) for name in names],
                )
            cached = self._history.get(campaign)
            if cached is not None:
                for name in names:
                    cached.drop_list_before(name, before)

    def prune_history(self, before: datetime) -> int:
        """Drop samples older than ``before``, for every campaign; returns how many."""
        with self._lock:
            with self._transaction() as db:
                count = db.execute("DELETE FROM history WHERE ts < ?", (_to_text(before),))
                dropped = count.rowcount
            for cached in self._history.values():
                cached.drop_before(before)
            return dropped


class _CachedHistory:
    """A campaign's history rows at or after ``since``, exactly as in the file."""

    def __init__(self, since: datetime, lists: dict[str, list[HistorySample]]) -> None:
        self.since = since
        self.lists = lists  # per list, oldest first; no empty lists

    def since_(self, since: datetime) -> dict[str, list[HistorySample]]:
        found: dict[str, list[HistorySample]] = {}
        at = 0
        for name in sorted(self.lists):  # the file's ORDER BY list
            samples = self.lists[name]
            at = _cut(samples, since, at)
            if at < len(samples):
                found[name] = samples[at:]
        return found

    def put(self, name: str, sample: HistorySample) -> None:
        if sample.ts < self.since:
            return  # outside what this cache holds
        samples = self.lists.setdefault(name, [])
        if not samples or samples[-1].ts < sample.ts:
            samples.append(sample)
            return
        at = bisect_left(samples, sample.ts, key=_instant)
        if at < len(samples) and samples[at].ts == sample.ts:
            samples[at] = sample
        else:
            samples.insert(at, sample)

    def drop_list_before(self, name: str, before: datetime) -> None:
        samples = self.lists.get(name)
        if samples is None:
            return
        kept = [s for s in samples if s.ts >= before]
        if kept:
            self.lists[name] = kept
        else:
            del self.lists[name]

    def drop_before(self, before: datetime) -> None:
        at = 0
        for name in list(self.lists):
            samples = self.lists[name]
            at = _cut(samples, before, at)
            if at:
                del samples[:at]
                if not samples:
                    del self.lists[name]


def _cut(samples: list[HistorySample], when: datetime, hint: int) -> int:
    """Index of the first sample at or after ``when``; tries ``hint`` first, since the
    lists of a campaign are sampled at the same instants and so cut at the same place."""
    size = len(samples)
    if (
        hint <= size
        and (hint == size or samples[hint].ts >= when)
        and (hint == 0 or samples[hint - 1].ts < when)
    ):
        return hint
    return bisect_left(samples, when, key=_instant)


def _instant(sample: HistorySample) -> datetime:
    return sample.ts


def _same_list_fields(a: ListMemory, b: ListMemory) -> bool:
    """Equal apart from ``rules``: the ``list_memory`` row need not be written."""
    return (
        a.base_weight == b.base_weight
        and a.human_paused == b.human_paused
        and a.first_seen == b.first_seen
        and a.last_written_weight == b.last_written_weight
        and a.last_written_paused == b.last_written_paused
        and a.paused_by_mixer == b.paused_by_mixer
        and a.last_change_at == b.last_change_at
        and a.manual_hold_until == b.manual_hold_until
        and a.changes_day == b.changes_day
        and a.changes_today == b.changes_today
    )


_UPSERT_LIST = "INSERT OR REPLACE INTO list_memory VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_UPSERT_RULE = "INSERT OR REPLACE INTO rule_memory VALUES (?, ?, ?, ?, ?, ?)"
_INSERT_INTENT = "INSERT OR REPLACE INTO intent VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_DELETE_INTENT = "DELETE FROM intent WHERE campaign = ? AND list = ? AND cycle_id = ?"


def _intent_keys(campaign: str, intents: Sequence[Intent]) -> list[tuple[str, str, str]]:
    return [(campaign, i.list, i.cycle_id) for i in intents]


def _list_row(campaign: str, name: str, m: ListMemory) -> tuple[object, ...]:
    return (
        campaign,
        name,
        m.base_weight,
        int(m.human_paused),
        _to_text(m.first_seen),
        m.last_written_weight,
        None if m.last_written_paused is None else int(m.last_written_paused),
        int(m.paused_by_mixer),
        _to_text(m.last_change_at),
        _to_text(m.manual_hold_until),
        None if m.changes_day is None else m.changes_day.isoformat(),
        m.changes_today,
    )


def _rule_row(campaign: str, name: str, rule: str, r: RuleMemory) -> tuple[object, ...]:
    return (
        campaign,
        name,
        rule,
        _to_text(r.holding_since),
        int(r.active),
        _to_text(r.active_changed_at),
    )


_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _to_text(when: datetime | None) -> str | None:
    return None if when is None else _instant_text(when)


def _instant_text(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError(f"the state store keeps aware datetimes only, got {when!r}")
    return when.astimezone(UTC).strftime(_FORMAT)


def _from_text(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.fromisoformat(text)  # reads the trailing Z as UTC, far faster than strptime


def _required(text: str) -> datetime:
    when = _from_text(text)
    assert when is not None  # NOT NULL columns
    return when
