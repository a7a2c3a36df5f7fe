"""What configuration is in force, as hashes: the decision log's ``config`` events.

A supervisor reading the log asks "which rules made this decision?": every start-up and
every reload (applied or refused) records the sha256 of the config file and of each rule
file, and every ``cycle`` record carries the short hash of the rule set in force. The
files are hashed as bytes, at the edge; nothing here parses them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the record type loads when a record is built, not at start-up
    from mixer.records import ConfigRecord

SHORT = 12  # hex digits of a rule-set hash shown in cycle records and status lines


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """The config file's and each rule file's sha256, and the rule set's own hash."""

    config_sha256: str | None  # None: the file could not be read
    rules: tuple[tuple[str, str], ...]  # (file, sha256), in load order
    rules_hash: str  # sha256 over the rule files' names and contents, in load order

    @property
    def short(self) -> str:
        return self.rules_hash[:SHORT]


def fingerprint(config_path: Path | None, rule_files: Sequence[Path]) -> Fingerprint:
    """Hash the files as they are on disk now (unreadable ones hash as absent)."""
    rules = tuple((str(path), _sha256(path) or "") for path in rule_files)
    return Fingerprint(
        config_sha256=_sha256(config_path) if config_path is not None else None,
        rules=rules,
        rules_hash=rules_hash(rules),
    )


def rules_hash(rules: Sequence[tuple[str, str]]) -> str:
    """One hash for a rule set: the files' base names and contents, in load order.
    Base names, so the same rules installed under another folder hash the same."""
    digest = hashlib.sha256()
    for name, sha in rules:
        digest.update(f"{Path(name).name}\0{sha}\n".encode())
    return digest.hexdigest()


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def loaded_record(
    now: datetime,
    config_path: Path,
    found: Fingerprint,
    *,
    rule_count: int,
    campaigns: Sequence[str],
    mode: str,
) -> ConfigRecord:
    """The ``config`` record of a start-up or reload that put the files ``found`` hashed
    in force."""
    from mixer.records import ConfigRecord

    return ConfigRecord(
        now,
        None,
        None,
        outcome="loaded",
        config=str(config_path),
        config_sha256=found.config_sha256,
        rules=found.rules,
        rules_hash=found.rules_hash,
        rule_count=rule_count,
        campaigns=tuple(campaigns),
        mode=mode,
    )


def refused_record(now: datetime, config_path: Path, errors: Sequence[str]) -> ConfigRecord:
    """The ``config`` record of a reload that was refused: the running config stays."""
    from mixer.records import ConfigRecord

    return ConfigRecord(
        now,
        None,
        None,
        outcome="refused",
        config=str(config_path),
        config_sha256=_sha256(config_path),
        rules=(),
        rules_hash=None,
        rule_count=None,
        campaigns=(),
        mode=None,
        errors=tuple(errors),
    )
