"""Operator-facing wording for YAML files: where a YAML error is and what it means in plain
words, the line of each key (so a schema error can name its line), and "did you mean".

Shared by the loaders of config, rule, rule-test and scenario files, which each print
problems in their own shape.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Final

import yaml

KeyPath = tuple[int | str, ...]

# PyYAML's words for a problem → what a person most likely did, and what to do.
_HINTS: Final = (
    (
        "expected <block end>",
        "this line is indented differently from the lines above it: line it up with the "
        "other keys at the same level (spaces only)",
    ),
    (
        "mapping values are not allowed here",
        "a ':' where YAML expects none: check this line's indentation, or quote a value "
        "that contains ': '",
    ),
    ("cannot start any token", "YAML cannot indent with tabs: use spaces"),
    (
        "could not find expected ':'",
        "a key without its ':' (or a line that continues the one above): add ':' after the key",
    ),
    (
        "did not find expected key",
        "a line that is not 'key: value' at this indentation: check its indentation and "
        "the '- ' of list items",
    ),
    (
        "did not find expected '-' indicator",
        "a list item without '- ' at this indentation: add '- ' or indent it",
    ),
    ("found unexpected end of stream", "a quote or bracket is not closed"),
    ("expected ',' or ']'", "an inline list [...] is not closed or lacks a comma"),
    ("expected ',' or '}'", "an inline mapping {...} is not closed or lacks a comma"),
    ("found undefined alias", "'*' starts an alias in YAML: quote the value"),
    ("found character '@'", "'@' and '`' cannot start a value: quote the value"),
    ("found character '`'", "'@' and '`' cannot start a value: quote the value"),
)


def yaml_error_position(exc: yaml.YAMLError) -> tuple[int, int] | None:
    """1-based (line, column) of a YAML error, when PyYAML knows it."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return None
    return mark.line + 1, mark.column + 1


def yaml_error_message(exc: yaml.YAMLError) -> str:
    """A plain-words hint followed by PyYAML's own words, without the position."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    for needle, hint in _HINTS:
        if needle in problem:
            return f"{hint} (YAML says: {problem})"
    return str(problem)


def key_lines(text: str) -> dict[KeyPath, int]:
    """The 1-based line of every key and list item in a YAML document, by key path.

    Empty when the text is not YAML (the caller reports that error itself)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[KeyPath, int] = {}

    def walk(node: yaml.Node, where: KeyPath) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                child = (*where, str(key_node.value))
                lines.setdefault(child, key_node.start_mark.line + 1)
                walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                child = (*where, index)
                lines.setdefault(child, item.start_mark.line + 1)
                walk(item, child)

    if root is not None:
        walk(root, ())
    return lines


def line_of(lines: dict[KeyPath, int], where: KeyPath) -> int | None:
    """The line of ``where``, or of its nearest ancestor the document has."""
    for depth in range(len(where), 0, -1):
        line = lines.get(tuple(where[:depth]))
        if line is not None:
            return line
    return None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or nothing."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
