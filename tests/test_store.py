"""The SQLite state store: memory and history survive restarts, schema is versioned."""

from __future__ import annotations

import dataclasses
import random
import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from mixer.engine.memory import HistorySample, ListMemory, RuleMemory
from mixer.store import MIGRATIONS, SCHEMA_VERSION, StateStore, StoreError

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


def test_version_1_file_is_migrated_in_place(tmp_path: Path) -> None:
    """A file written by schema version 1 opens with its memory and history intact, and its
    history table is then keyed by time first (samples of a cycle are stored side by side)."""
    path = tmp_path / "s.db"
    raw = sqlite3.connect(path, isolation_level=None)
    raw.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    raw.execute(
        "INSERT INTO list_memory VALUES ('S', 'A', 10, 0, ?, NULL, NULL, 0, NULL, NULL, NULL, 0)",
        ("2024-04-29T08:00:00.000000Z",),
    )
    for minute, pulled in ((0, 5), (1, 7), (2, 9)):
        raw.execute(
            "INSERT INTO history VALUES ('S', 'A', ?, ?, 1, 100)",
            (f"2024-04-29T08:0{minute}:00.000000Z", pulled),
        )
    raw.close()
    with StateStore(path) as store:
        assert store.schema_version() == SCHEMA_VERSION == 3
        assert store.load_memory("S")["A"].base_weight == 10
        assert [(s.ts, s.pulled) for s in store.history("S", since=T0)["A"]] == [
            (T0 + timedelta(minutes=m), p) for m, p in ((0, 5), (1, 7), (2, 9))
        ]
        store.add_samples("S", {"A": HistorySample(T0 + timedelta(minutes=3), 11, 2, 100)})
        assert store.prune_history(T0 + timedelta(minutes=1)) == 1
    with sqlite3.connect(path) as raw:
        ddl = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'history'").fetchone()[0]
        indexes = raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
        pulled = [row[0] for row in raw.execute("SELECT pulled FROM history ORDER BY ts")]
    assert "PRIMARY KEY (ts, campaign, list)" in ddl
    assert "WITHOUT ROWID" in ddl
    assert ("history_ts",) not in indexes
    assert pulled == [7, 9, 11]


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


# -- the write-through cache -------------------------------------------------------


def on_file(path: Path, campaigns: list[str], since: datetime) -> tuple[object, ...]:
    """What a newly opened store sees: every campaign's memory and history."""
    with StateStore(path) as fresh:
        return tuple((fresh.load_memory(c), fresh.history(c, since=since)) for c in campaigns)


def table_rows(path: Path) -> tuple[list[tuple[object, ...]], ...]:
    """Every row of the three tables, sorted, read with a plain SQLite connection."""
    with sqlite3.connect(path) as raw:
        return tuple(
            sorted(raw.execute(f"SELECT * FROM {table}").fetchall())
            for table in ("list_memory", "rule_memory", "history")
        )


def random_memory(rng: random.Random, now: datetime) -> dict[str, ListMemory]:
    """Memory for a random subset of lists, with random rule timers."""
    memory: dict[str, ListMemory] = {}
    for name in rng.sample(["A", "B", "C", "D", "E"], rng.randint(0, 5)):
        rules = {
            rule: RuleMemory(
                holding_since=rng.choice([None, now, T0]),
                active=rng.random() < 0.5,
                active_changed_at=rng.choice([None, now]),
            )
            for rule in rng.sample(["boost", "pause", "calm"], rng.randint(0, 3))
        }
        memory[name] = ListMemory(
            base_weight=rng.randint(1, 3),
            human_paused=rng.random() < 0.2,
            first_seen=T0,
            last_written_weight=rng.choice([None, 10, 20]),
            last_written_paused=rng.choice([None, False, True]),
            paused_by_mixer=rng.random() < 0.2,
            last_change_at=rng.choice([None, now]),
            manual_hold_until=rng.choice([None, now + timedelta(hours=1)]),
            changes_day=rng.choice([None, now.date()]),
            changes_today=rng.randint(0, 2),
            rules=rules,
        )
    return memory


def edit_memory(
    rng: random.Random, memory: dict[str, ListMemory], now: datetime
) -> dict[str, ListMemory]:
    """Keep most lists as they are (same objects), change, add or drop a few."""
    fresh = random_memory(rng, now)
    edited = {name: m for name, m in memory.items() if rng.random() < 0.8}
    for name, m in fresh.items():
        if name not in edited or rng.random() < 0.3:
            edited[name] = m
    return edited


@pytest.mark.parametrize("seed", range(5))
def test_cached_store_matches_reopened_store(tmp_path: Path, seed: int) -> None:
    """After many cycles of adds, prunes and saves, a reopened store sees what the cache
    answers, and the tables hold what whole rewrites would have left."""
    rng = random.Random(seed)
    path, twin_path = tmp_path / "cached.db", tmp_path / "rewrite.db"
    campaigns = ["Sales", "B2B"]
    window = timedelta(minutes=15)
    memory: dict[str, dict[str, ListMemory]] = {c: {} for c in campaigns}
    with StateStore(path) as store, StateStore(twin_path) as twin:
        for minute in range(120):
            now = T0 + timedelta(minutes=minute)
            for campaign in campaigns:
                when = now - timedelta(minutes=rng.choice([0, 0, 0, 1, 7]))  # late, repeated
                samples = {
                    name: HistorySample(when, rng.randint(0, 99), rng.randint(0, 9), 100)
                    for name in rng.sample(["A", "B", "C", "D"], rng.randint(1, 4))
                }
                store.add_samples(campaign, samples)
                twin.add_samples(campaign, samples)
                assert store.load_memory(campaign) == memory[campaign]
                since = now - window * rng.choice([1, 1, 1, 3])  # sometimes further back
                assert (
                    store.history(campaign, since=since) == on_file(path, [campaign], since)[0][1]
                )
                memory[campaign] = edit_memory(rng, memory[campaign], now)
                store.save_memory(campaign, memory[campaign])
                twin.save_memory(campaign, memory[campaign])
                twin._forget()  # the twin diffs against the file itself before every save
            assert store.prune_history(now - window * 2) == twin.prune_history(now - window * 2)
        end = T0 + timedelta(minutes=119)
        answers = tuple(
            (store.load_memory(c), store.history(c, since=T0 - window)) for c in campaigns
        )
    assert answers == on_file(path, campaigns, T0 - window)
    assert table_rows(path) == table_rows(twin_path)
    assert [answers[i][0] for i in range(2)] == [memory["Sales"], memory["B2B"]]
    assert max(s.ts for samples in answers[0][1].values() for s in samples) == end


def test_unchanged_save_writes_nothing(tmp_path: Path) -> None:
    """Saving the memory just loaded touches no row; changing one rule rewrites two rows."""
    with StateStore(tmp_path / "s.db") as store:
        store.save_memory("Sales", {"A": full_memory(), "B": ListMemory(1, False, T0)})
        before = store._db.total_changes
        store.save_memory("Sales", store.load_memory("Sales"))
        assert store._db.total_changes == before
        a = full_memory()
        changed = dataclasses.replace(a, rules={**a.rules, "pause": RuleMemory(active=True)})
        store.save_memory("Sales", {"A": changed, "B": ListMemory(1, False, T0)})
        assert store._db.total_changes - before == 1  # the one rule row
        assert store.load_memory("Sales")["A"] == changed


def test_first_save_of_a_process_writes_only_what_changed(tmp_path: Path) -> None:
    """A store opened afresh (``once``, a restarted daemon) saving the memory on file
    writes no row, and one changed rule writes one row, with or without a load first."""
    path = tmp_path / "s.db"
    memory = {"A": full_memory(), "B": ListMemory(1, False, T0)}
    with StateStore(path) as store:
        store.save_memory("Sales", memory)
    with StateStore(path) as store:
        before = store._db.total_changes
        store.save_memory("Sales", dict(memory))
        assert store._db.total_changes == before
    a = full_memory()
    changed = dataclasses.replace(a, rules={**a.rules, "pause": RuleMemory(active=True)})
    with StateStore(path) as store:
        before = store._db.total_changes
        store.save_memory("Sales", {**memory, "A": changed})
        assert store._db.total_changes - before == 1
    with StateStore(path) as store:
        assert store.load_memory("Sales") == {**memory, "A": changed}


def test_history_answered_from_memory_after_first_read(tmp_path: Path) -> None:
    """Once read, a campaign's history is served from memory, also for new samples."""
    with StateStore(tmp_path / "s.db") as store:
        store.add_samples("S", {"A": HistorySample(T0, 1, 0, 9)})
        assert [s.pulled for s in store.history("S", since=T0)["A"]] == [1]
        store._db.execute("DELETE FROM history")  # behind the store's back
        store.add_samples("S", {"A": HistorySample(T0 + timedelta(minutes=1), 2, 0, 9)})
        assert [s.pulled for s in store.history("S", since=T0)["A"]] == [1, 2]


def test_history_returned_lists_are_copies(tmp_path: Path) -> None:
    """Editing what history() returned does not change the next answer."""
    with StateStore(tmp_path / "s.db") as store:
        store.add_samples("S", {"A": HistorySample(T0, 1, 0, 9)})
        store.history("S", since=T0)["A"].clear()
        assert len(store.history("S", since=T0)["A"]) == 1


def test_failed_transaction_drops_cache(tmp_path: Path) -> None:
    """A save SQLite refuses half-way is rolled back, and reads come from the file again."""
    path = tmp_path / "s.db"
    with StateStore(path) as store:
        store.save_memory("Sales", {"A": full_memory()})
        store.save_memory("Sales", {"A": full_memory()})  # now diffing
        with sqlite3.connect(path) as raw:
            raw.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON list_memory WHEN NEW.list = 'Boom'"
                " BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        with pytest.raises(sqlite3.DatabaseError, match="refused"):
            store.save_memory("Sales", {"A": ListMemory(1, False, T0), "Boom": full_memory()})
        assert store._memory == {}
        assert store.load_memory("Sales") == {"A": full_memory()}
        store.save_memory("Sales", {"A": ListMemory(2, False, T0)})  # the store still works
    assert on_file(path, ["Sales"], T0)[0][0] == {"A": ListMemory(2, False, T0)}


def test_naive_since_refused(tmp_path: Path) -> None:
    """history() with a naive instant is a ValueError, as it was before the cache."""
    with StateStore(tmp_path / "s.db") as store, pytest.raises(ValueError, match="aware"):
        store.history("S", since=datetime(2024, 1, 1))


def test_a_preview_save_writes_no_row_and_answers_its_own_reads(tmp_path: Path) -> None:
    """A preview's save keeps the memory for the preview's later reads and writes no row
    of its in-memory copy (nothing would ever read it), and the file is untouched."""
    path = tmp_path / "s.db"
    with StateStore(path) as store:
        store.save_memory("Sales", {"B": ListMemory(1, False, T0)})
    with StateStore(path, preview=True) as preview:
        before = preview._db.total_changes
        preview.save_memory("Sales", {"A": full_memory()})
        assert preview._db.total_changes == before
        assert preview.load_memory("Sales") == {"A": full_memory()}
    with StateStore(path) as store:
        assert store.load_memory("Sales") == {"B": ListMemory(1, False, T0)}
