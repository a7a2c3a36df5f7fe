"""The state store: what the mixer remembers between cycles, in one SQLite file.

SQLite (stdlib) in WAL mode with ``synchronous=FULL``: a committed cycle survives a power
cut, and a reader (``explain``, a backup) never blocks the daemon. The schema carries its
version in ``PRAGMA user_version``; ``MIGRATIONS[n]`` takes a file from version ``n`` to
``n + 1``, so an upgraded daemon opens an older file in place. Times are stored as
fixed-width UTC text, which sorts like the instants and stays readable in ``sqlite3``.

One connection per process, guarded by a lock: the daemon is the one writer.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType

from mixer.engine.memory import HistorySample, ListMemory, RuleMemory
from mixer.errors import MixerError

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
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(MixerError):
    """The state file cannot be used as it is."""


class StateStore:
    """Memory per list and counters history, for every campaign, in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"state store {self.path} cannot be opened ({exc}): move the file aside and "
                "restart (the mixer relearns baselines from QM)"
            ) from exc

    # -- lifecycle ----------------------------------------------------------------

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
            self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- memory -------------------------------------------------------------------

    def load_memory(self, campaign: str) -> dict[str, ListMemory]:
        """Every list's memory for ``campaign`` (empty for a campaign never seen)."""
        with self._lock:
            lists = self._db.execute(
                "SELECT list, base_weight, human_paused, first_seen, last_written_weight,"
                " last_written_paused, paused_by_mixer, last_change_at, manual_hold_until,"
                " changes_day, changes_today FROM list_memory WHERE campaign = ?",
                (campaign,),
            ).fetchall()
            rules = self._db.execute(
                "SELECT list, rule, holding_since, active, active_changed_at"
                " FROM rule_memory WHERE campaign = ?",
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

    def save_memory(self, campaign: str, memory: Mapping[str, ListMemory]) -> None:
        """Replace ``campaign``'s memory with ``memory``, all or nothing."""
        list_rows = [
            (
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
            for name, m in memory.items()
        ]
        rule_rows = [
            (
                campaign,
                name,
                rule,
                _to_text(r.holding_since),
                int(r.active),
                _to_text(r.active_changed_at),
            )
            for name, m in memory.items()
            for rule, r in m.rules.items()
        ]
        with self._transaction() as db:
            db.execute("DELETE FROM list_memory WHERE campaign = ?", (campaign,))
            db.execute("DELETE FROM rule_memory WHERE campaign = ?", (campaign,))
            db.executemany(
                "INSERT INTO list_memory VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", list_rows
            )
            db.executemany("INSERT INTO rule_memory VALUES (?, ?, ?, ?, ?, ?)", rule_rows)

    # -- history ------------------------------------------------------------------

    def add_samples(self, campaign: str, samples: Mapping[str, HistorySample]) -> None:
        """Record one sample per list (a second sample at the same instant replaces it)."""
        rows = [
            (campaign, name, _to_text(s.ts), s.pulled, s.completed, s.added)
            for name, s in samples.items()
        ]
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?, ?, ?)", rows)

    def history(self, campaign: str, since: datetime) -> dict[str, list[HistorySample]]:
        """Samples of ``campaign`` at or after ``since``, per list, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT list, ts, pulled, completed, added FROM history"
                " WHERE campaign = ? AND ts >= ? ORDER BY list, ts",
                (campaign, _to_text(since)),
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
        return found

    def prune_history(self, before: datetime) -> int:
        """Drop samples older than ``before``, for every campaign; returns how many."""
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM history WHERE ts < ?", (_to_text(before),))
            return cursor.rowcount


_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _to_text(when: datetime | None) -> str | None:
    if when is None:
        return None
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
