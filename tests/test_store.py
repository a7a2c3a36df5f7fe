"""The SQLite state store: memory and history survive restarts, schema is versioned."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from mixer.engine.memory import HistorySample, ListMemory, RuleMemory
from mixer.store import SCHEMA_VERSION, StateStore, StoreError

T0 = datetime(2024, 4, 29, 8, 0, tzinfo=UTC)


def full_memory() -> ListMemory:
    return ListMemory(
        base_weight=10,
        human_paused=False,
        first_seen=T0,
        last_written_weight=30,
        last_written_paused=True,
        paused_by_mixer=True,
        last_change_at=T0 + timedelta(minutes=5, microseconds=7),
        manual_hold_until=T0 + timedelta(hours=1),
        changes_day=date(2024, 4, 29),
        changes_today=3,
        rules={
            "boost": RuleMemory(
                holding_since=T0, active=True, active_changed_at=T0 + timedelta(minutes=1)
            ),
            "pause": RuleMemory(),
        },
    )


def test_memory_round_trip_with_rule_timers(tmp_path: Path) -> None:
    """Every ListMemory field, incl. per-rule timers and None values, comes back equal."""
    memory = {"Recalls": full_memory(), "Fresh": ListMemory(5, True, T0)}
    with StateStore(tmp_path / "state.sqlite3") as store:
        store.save_memory("Sales", memory)
        assert store.load_memory("Sales") == memory
        assert store.load_memory("Other") == {}


def test_memory_survives_reopen(tmp_path: Path) -> None:
    """What one process saved, the next one loads."""
    path = tmp_path / "deep" / "folder" / "state.sqlite3"
    with StateStore(path) as store:
        store.save_memory("Sales", {"A": full_memory()})
    with StateStore(path) as store:
        assert store.load_memory("Sales") == {"A": full_memory()}


def test_save_replaces_campaign_memory_only(tmp_path: Path) -> None:
    """Saving a campaign drops its lists no longer given and leaves other campaigns alone."""
    with StateStore(tmp_path / "s.db") as store:
        store.save_memory("Sales", {"A": full_memory(), "B": ListMemory(1, False, T0)})
        store.save_memory("B2B", {"X": ListMemory(2, False, T0)})
        store.save_memory("Sales", {"B": ListMemory(3, False, T0)})
        assert store.load_memory("Sales") == {"B": ListMemory(3, False, T0)}
        assert store.load_memory("B2B") == {"X": ListMemory(2, False, T0)}


def test_failed_save_leaves_previous_memory(tmp_path: Path) -> None:
    """A save that fails half-way is rolled back: the old memory stays whole."""
    with StateStore(tmp_path / "s.db") as store:
        store.save_memory("Sales", {"A": full_memory()})
        naive = ListMemory(1, False, datetime(2024, 1, 1))  # naive on purpose
        with pytest.raises(ValueError, match="aware"):
            store.save_memory("Sales", {"B": ListMemory(1, False, T0), "C": naive})
        assert store.load_memory("Sales") == {"A": full_memory()}


def test_history_ordered_and_filtered(tmp_path: Path) -> None:
    """history() returns samples since the given instant, per list, oldest first."""
    with StateStore(tmp_path / "s.db") as store:
        for minutes in (10, 0, 5, 20):
            ts = T0 + timedelta(minutes=minutes)
            store.add_samples(
                "Sales",
                {
                    "A": HistorySample(ts, pulled=minutes, completed=0, added=100),
                    "B": HistorySample(ts, pulled=2 * minutes, completed=1, added=50),
                },
            )
        store.add_samples("B2B", {"A": HistorySample(T0, 1, 1, 1)})
        found = store.history("Sales", since=T0 + timedelta(minutes=5))
        assert [s.pulled for s in found["A"]] == [5, 10, 20]
        assert [s.pulled for s in found["B"]] == [10, 20, 40]
        assert found["A"][0].ts == T0 + timedelta(minutes=5)
        assert found["A"][0].ts.tzinfo is not None


def test_history_accepts_other_time_zones(tmp_path: Path) -> None:
    """Instants are compared as instants whatever zone they are given in."""
    from zoneinfo import ZoneInfo

    zurich = ZoneInfo("Europe/Zurich")
    with StateStore(tmp_path / "s.db") as store:
        store.add_samples("S", {"A": HistorySample(T0.astimezone(zurich), 1, 0, 9)})
        assert store.history("S", since=T0 - timedelta(seconds=1))["A"][0].ts == T0
        assert store.history("S", since=T0 + timedelta(microseconds=1)) == {}


def test_same_instant_sample_replaced(tmp_path: Path) -> None:
    """A second sample for the same list and instant replaces the first."""
    with StateStore(tmp_path / "s.db") as store:
        store.add_samples("S", {"A": HistorySample(T0, 1, 0, 9)})
        store.add_samples("S", {"A": HistorySample(T0, 2, 0, 9)})
        assert [s.pulled for s in store.history("S", since=T0)["A"]] == [2]


def test_prune_history(tmp_path: Path) -> None:
    """prune_history drops samples older than the cut for every campaign, returns the count."""
    with StateStore(tmp_path / "s.db") as store:
        for minutes in range(0, 60, 10):
            ts = T0 + timedelta(minutes=minutes)
            store.add_samples("S", {"A": HistorySample(ts, minutes, 0, 1)})
            store.add_samples("T", {"B": HistorySample(ts, minutes, 0, 1)})
        assert store.prune_history(T0 + timedelta(minutes=30)) == 6
        assert [s.pulled for s in store.history("S", since=T0)["A"]] == [30, 40, 50]
        assert store.prune_history(T0 + timedelta(minutes=30)) == 0


def test_schema_version_and_pragmas(tmp_path: Path) -> None:
    """A new file gets the current schema version, WAL journal and FULL sync."""
    path = tmp_path / "s.db"
    with StateStore(path) as store:
        assert store.schema_version() == SCHEMA_VERSION >= 1
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_schema_refused(tmp_path: Path) -> None:
    """A file from a newer version is refused with a message saying to upgrade."""
    path = tmp_path / "s.db"
    StateStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match="upgrade amo-mixer"):
        StateStore(path)


def test_not_a_database_is_clear_error(tmp_path: Path) -> None:
    """A file that is not SQLite is a one-line StoreError naming the file."""
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="cannot be opened") as info:
        StateStore(path)
    assert str(path) in info.value.message


def test_integrity_check(tmp_path: Path) -> None:
    """integrity_check reports 'ok' on a healthy file."""
    with StateStore(tmp_path / "s.db") as store:
        store.save_memory("S", {"A": full_memory()})
        assert store.integrity_check() == "ok"


def test_concurrent_threads_share_one_connection(tmp_path: Path) -> None:
    """Saves and reads from several threads do not corrupt or raise."""
    errors: list[BaseException] = []
    with StateStore(tmp_path / "s.db") as store:

        def work(n: int) -> None:
            try:
                for i in range(20):
                    ts = T0 + timedelta(seconds=i)
                    store.add_samples(f"C{n}", {"A": HistorySample(ts, i, 0, 1)})
                    store.save_memory(f"C{n}", {"A": ListMemory(i + 1, False, T0)})
                    store.load_memory(f"C{n}")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert store.load_memory("C3")["A"].base_weight == 20
        assert len(store.history("C0", since=T0)["A"]) == 20
