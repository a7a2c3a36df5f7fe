"""Rule files from the disk to a compiled ``RuleSet``: the one place they are read.

The edge between the files and the pure parts: each file is read here, parsed by the
rule format (``mixer.rulefile``) and compiled by the engine (``mixer.engine.rules``);
a file that cannot be read is one more problem in the same ``RuleLoadError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mixer.engine.rules import RuleSet, compile_rules
from mixer.opsfiles.reading import UnreadableFile, read_text
from mixer.rulefile.parse import ParsedRules, parse_rules, unreadable

__all__ = ["load_rules", "read_rule_file"]


def read_rule_file(path: Path) -> ParsedRules:
    """The rules file at ``path``, read and parsed (an unreadable file is a problem)."""
    name = str(path)
    try:
        text = read_text(path)
    except UnreadableFile as exc:
        reason = exc.reason if exc.not_text else f"cannot read: {exc.reason}"
        return unreadable(name, reason)
    return parse_rules(name, text)


def load_rules(paths: Sequence[Path], *, extra_texts: Sequence[tuple[str, str]] = ()) -> RuleSet:
    """Load, validate and compile rule files (applied in sorted path order).

    ``extra_texts`` are ``(name, YAML text)`` pairs applied after the files (``amo-mixer
    test`` passes a test file's own ``lists:`` this way). Raises ``RuleLoadError`` listing
    every problem of every file.
    """
    parsed = [read_rule_file(path) for path in sorted(Path(p) for p in paths)]
    parsed += [parse_rules(name, text) for name, text in extra_texts]
    return compile_rules(parsed)
