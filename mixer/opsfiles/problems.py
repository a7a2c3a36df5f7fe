"""Problems in operators' files: one type, one did-you-mean, one key-path spelling.

A ``Problem`` is a mistake located for a person to fix: the file, the line (and column),
the key path, the message, a caret excerpt under the spot. Each kind of file shows it in
the form its readers know (``file:line: rule 'x': message`` for rule files, ``At 'path':
message (line N)`` for the config), from the same fields.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Problem", "caret_excerpt", "closest", "did_you_mean", "edit_distance", "key_path"]

_INDENT = "    "


@dataclass(frozen=True)
class Problem:
    """One mistake in an operator's file, located for a person to fix."""

    file: str
    line: int
    rule: str | None  # the rule it is in (rule files), else None
    message: str
    excerpt: str | None = None  # the source line and a caret line under the spot
    column: int | None = None  # 0-based, when known
    path: tuple[str | int, ...] = ()  # the key path, when known
    origin: str | None = None  # where the value came from when not the file (an env var)

    def __str__(self) -> str:
        """``file:line: rule 'name': message``, then the excerpt on lines of their own."""
        where = f"{self.file}:{self.line}: "
        if self.rule is not None:
            where += f"rule '{self.rule}': "
        text = where + self.message
        if self.excerpt:
            text += "\n" + self.excerpt
        return text

    def at_path(self) -> str:
        """``At 'qm.timeout': message (line 12)``, or ``(from AMO_MIXER_...)`` when the
        value came from the environment; ``At line 3, column 1: message`` for a spot that
        is no key (broken YAML)."""
        if not self.path and self.column is not None:
            return f"At line {self.line}, column {self.column + 1}: {self.message}"
        origin = ""
        if self.origin is not None:
            origin = f" (from {self.origin})"
        elif self.line > 0:
            origin = f" (line {self.line})"
        return f"At '{key_path(self.path) or '<top>'}': {self.message}{origin}"


def key_path(loc: Sequence[str | int]) -> str:
    """``('qm', 'timeout')`` → ``qm.timeout``; ``('lists', 0, 'name')`` → ``lists[0].name``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` was most likely meant to be, if one is close enough."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``did you mean 'x'?`` for the closest candidate, or "" when none is close."""
    found = closest(word, candidates)
    return f"did you mean '{found}'?" if found is not None else ""


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: how many one-letter edits turn ``a`` into ``b``."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def caret_excerpt(text: str, column: int, width: int = 1) -> str:
    """A source line and a caret line under ``column`` (tabs kept, so the caret lines up)."""
    column = min(max(column, 0), len(text))
    pad = "".join("\t" if ch == "\t" else " " for ch in text[:column])
    return f"{_INDENT}{text}\n{_INDENT}{pad}{'^' * max(width, 1)}"
