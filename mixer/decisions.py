"""The decision log: one JSON object per line, append-only, what analysts read.

Writing: each record is one ``os.write`` of one line to a file opened ``O_APPEND``, so
a reader never sees two records interleaved; ``sync`` (end of a cycle) fsyncs and is the
only place the file rotates (``decisions.jsonl`` -> ``.1`` -> ``.2`` ...), so a cycle's
records stay together. A crash mid-write can leave a torn last line: on open it is moved
to ``<name>.torn`` (never dropped) and the log is cut back to its last complete line.

Reading: ``read_records`` walks the rotated files oldest first and tolerates a line
being written while it reads, and lines it cannot parse (it counts them).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from mixer import json_codec
from mixer.closing import Closing
from mixer.logs import get_logger
from mixer.record_times import parse_ts

DECISION_CSV_COLUMNS = (
    "ts",
    "campaign",
    "list",
    "mode",
    "weight_before",
    "weight_after",
    "paused_before",
    "paused_after",
    "rules",
    "reason",
    "applied",
)
TAIL_CHUNK = 64 * 1024

log = get_logger("amo-mixer.decisions")


class DecisionLog(Closing):
    """Appends records to the decision log at ``path``, repairing a torn tail on open."""

    def __init__(self, path: Path, *, max_bytes: int = 64 * 1024 * 1024, backups: int = 20) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.repaired: list[str] = []
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self._fd: int | None = self._open()
        # An append failed part-way (a full disk): the file may end inside a line, and
        # the next append must start on a fresh one.
        self._tail_suspect = False

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def reopen_if_moved(self) -> bool:
        """Reopen ``path`` when the open file is no longer it (renamed or deleted by
        logrotate or a human); True when it did. The cycle calls this at its start."""
        with self._lock:
            if self._fd is None:
                return False
            try:
                on_disk = os.stat(self.path)
            except FileNotFoundError:
                on_disk = None
            held = os.fstat(self._fd)
            if on_disk is not None and (on_disk.st_dev, on_disk.st_ino) == (
                held.st_dev,
                held.st_ino,
            ):
                return False
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            except OSError:
                pass
            os.close(fd)
            self._fd = self._open()
            self._tail_suspect = False
        log.warning(
            "decision log reopened",
            path=str(self.path),
            why="renamed" if on_disk is not None else "deleted",
        )
        return True

    def logged_decisions(self, cycle_ids: Collection[str], since: datetime) -> set[tuple[str, str]]:
        """``(cycle_id, list)`` of the decision records of ``cycle_ids`` already logged
        at or after ``since`` (a minute of slack: ``ts`` is written to the second)."""
        found: set[tuple[str, str]] = set()
        for record in read_records(self.path, since=since - timedelta(minutes=1), event="decision"):
            cycle_id, name = record.get("cycle_id"), record.get("list")
            if cycle_id in cycle_ids and isinstance(name, str):
                found.add((str(cycle_id), name))
        return found

    # -- start-up repair ------------------------------------------------------------

    def _repair_tail(self) -> None:
        """Move a torn last line aside to ``<name>.torn`` and cut the log back."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size == 0:
            return
        with open(self.path, "rb") as handle:
            keep, fragment = _split_torn_tail(handle, size)
        if not fragment:
            return
        torn = self.path.with_name(self.path.name + ".torn")
        header = (
            f"# {datetime.now(UTC).isoformat(timespec='seconds')} moved from "
            f"{self.path.name} at byte {keep} ({len(fragment)} bytes):\n"
        ).encode()
        fd = os.open(torn, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            _write_all(fd, header + fragment + (b"" if fragment.endswith(b"\n") else b"\n"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.truncate(self.path, keep)
        message = (
            f"torn last line of {self.path} ({len(fragment)} bytes, from a crash mid-write) "
            f"moved to {torn}"
        )
        self.repaired.append(message)
        log.warning(
            "decision log repaired", path=str(self.path), torn=str(torn), bytes=len(fragment)
        )

    # -- writing --------------------------------------------------------------------

    def append(self, record: Mapping[str, object]) -> None:
        """Write ``record`` as one line (one ``os.write``; durable after ``sync``)."""
        # One line: newlines inside strings are escaped by the encoder.
        data = json_codec.dumps(record, default=_jsonable) + b"\n"
        with self._lock:
            fd = self._require_open()
            if self._tail_suspect and not _ends_with_newline(fd):
                data = b"\n" + data  # the failed append's fragment stays one bad line
            self._tail_suspect = True
            _write_all(fd, data)
            self._tail_suspect = False

    def sync(self) -> None:
        """Flush to disk, then rotate when the file has grown past ``max_bytes``."""
        with self._lock:
            fd = self._require_open()
            os.fsync(fd)
            if os.fstat(fd).st_size >= self.max_bytes:
                os.close(fd)
                self._fd = None
                try:
                    self._rotate()
                finally:  # a failed rotation (the log deleted underneath) leaves it open
                    self._fd = self._open()
                    self._tail_suspect = False
                _fsync_dir(self.path.parent)

    def _rotate(self) -> None:
        if self.backups <= 0:
            self.path.unlink(missing_ok=True)
            return
        oldest = _numbered(self.path, self.backups)
        oldest.unlink(missing_ok=True)
        for n in range(self.backups - 1, 0, -1):
            source = _numbered(self.path, n)
            if source.exists():
                source.rename(_numbered(self.path, n + 1))
        try:
            self.path.rename(_numbered(self.path, 1))
        except FileNotFoundError:  # deleted underneath: nothing to keep, start a new one
            log.warning("decision log was gone at rotation", path=str(self.path))

    def _require_open(self) -> int:
        if self._fd is None:
            raise ValueError(f"decision log {self.path} is closed")
        return self._fd

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None


# -- reading -------------------------------------------------------------------------


class PreviewLog(DecisionLog):
    """What a preview (``once --dry-run``) logs: kept in memory, never written, so a
    preview beside a running daemon leaves the daemon's decision log as it was."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.records: list[Mapping[str, object]] = []

    def append(self, record: Mapping[str, object]) -> None:
        self.records.append(record)

    def sync(self) -> None:
        return None

    def reopen_if_moved(self) -> bool:
        return False

    def close(self) -> None:
        return None


class RecordStream(Iterator[dict[str, Any]]):
    """The records ``read_records`` yields; ``skipped`` counts lines it could not parse."""

    def __init__(self, records: Iterator[dict[str, Any]]) -> None:
        self._records = records
        self.skipped = 0

    def __iter__(self) -> RecordStream:
        return self

    def __next__(self) -> dict[str, Any]:
        return next(self._records)


def log_files(path: Path) -> list[Path]:
    """The decision log and its rotated files, oldest first."""
    path = Path(path)
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)")
    rotated: list[tuple[int, Path]] = []
    if path.parent.is_dir():
        for candidate in path.parent.iterdir():
            match = pattern.fullmatch(candidate.name)
            if match:
                rotated.append((int(match.group(1)), candidate))
    return [p for _, p in sorted(rotated, reverse=True)] + [path]


def read_records(
    path: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    campaign: str | None = None,
    list_name: str | None = None,
    event: str | Sequence[str] | None = None,
) -> RecordStream:
    """Records of the decision log at ``path`` (and its rotated files), oldest first.

    ``since`` is inclusive, ``until`` exclusive; ``campaign`` and ``list_name`` are
    globs; a record lacking a filtered field does not match. A last line still being
    written is left for the next read; unparseable lines are skipped and counted.
    """
    events = {event} if isinstance(event, str) else set(event) if event is not None else None
    since, until = _aware(since), _aware(until)
    stream = RecordStream(iter(()))

    def wanted(record: dict[str, Any]) -> bool:
        if events is not None and record.get("event") not in events:
            return False
        if campaign is not None and not _glob(record.get("campaign"), campaign):
            return False
        if list_name is not None and not _glob(record.get("list"), list_name):
            return False
        if since is not None or until is not None:
            ts = parse_ts(record.get("ts"))
            if ts is None or (since is not None and ts < since):
                return False
            if until is not None and ts >= until:
                return False
        return True

    def generate() -> Iterator[dict[str, Any]]:
        files = log_files(path)
        for file in files:
            if since is not None and file != files[-1] and _ends_before(file, since):
                continue
            for record in _parse_lines(_complete_lines(file), stream):
                if wanted(record):
                    yield record

    stream._records = generate()
    return stream


def _complete_lines(file: Path) -> Iterator[bytes]:
    try:
        handle = open(file, "rb")  # noqa: SIM115 - closed below, generator-scoped
    except FileNotFoundError:  # rotated away between listing and opening
        return
    with handle:
        for line in handle:
            if line.endswith(b"\n"):
                yield line


def _parse_lines(lines: Iterable[bytes], stream: RecordStream) -> Iterator[dict[str, Any]]:
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, ValueError):
            stream.skipped += 1
            continue
        if isinstance(record, dict):
            yield record
        else:
            stream.skipped += 1


def _ends_before(file: Path, since: datetime) -> bool:
    """True when the last record of a rotated ``file`` is older than ``since``."""
    try:
        with open(file, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(size - TAIL_CHUNK, 0))
            tail = handle.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    except OSError:
        return False
    try:
        last = json.loads(tail)
    except ValueError:
        return False
    ts = parse_ts(last.get("ts")) if isinstance(last, dict) else None
    return ts is not None and ts < since


# -- small pieces ----------------------------------------------------------------------


def _split_torn_tail(handle: Any, size: int) -> tuple[int, bytes]:
    """(bytes to keep, torn fragment): the fragment is the text after the last newline,
    plus the last complete line when that one is not a JSON object (zeroed blocks)."""
    end = size
    fragment = b""
    start = size
    while start > 0:
        start = max(start - TAIL_CHUNK, 0)
        handle.seek(start)
        chunk = handle.read(end - start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            keep = start + newline + 1
            fragment = chunk[newline + 1 :] + fragment
            break
        fragment = chunk + fragment
        end = start
    else:
        keep = 0
    if keep > 0 and not fragment:
        previous = keep - 1
        begin = max(previous - TAIL_CHUNK, 0)
        handle.seek(begin)
        window = handle.read(previous - begin)
        if b"\n" not in window and begin > 0:
            return keep, b""  # a line longer than the window: leave it to the reader
        line_start = begin + window.rfind(b"\n") + 1
        handle.seek(line_start)
        last_line = handle.read(keep - line_start)
        if not _is_record(last_line):
            return line_start, last_line
    return keep, fragment


def _is_record(line: bytes) -> bool:
    if not line.strip():
        return True
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    while written < len(data):  # only on a short write (a full disk): keep the line whole
        written += os.write(fd, data[written:])


def _ends_with_newline(fd: int) -> bool:
    """The file is empty or ends with a newline (appends start on a fresh line)."""
    size = os.fstat(fd).st_size
    return size == 0 or os.pread(fd, 1, size - 1) == b"\n"


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _numbered(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


def _glob(value: object, pattern: str) -> bool:
    return isinstance(value, str) and fnmatch.fnmatchcase(value, pattern)


def _aware(when: datetime | None) -> datetime | None:
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


def _jsonable(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)
