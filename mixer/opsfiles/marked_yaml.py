"""YAML as operators write it, with the line and column of every key and value.

Every file an operator writes (config, rules, rule tests, scenarios) is read through this
one safe loader, so each can point at the spot of a mistake: mappings load as
``MarkedDict`` (with ``key_marks``/``value_marks``), sequences as ``MarkedList`` (with
``item_marks``), and a key given twice is remembered instead of silently overwritten.
Pure: text in, data out.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml

from mixer.opsfiles.no_aliases import NoAliasesMixin

try:  # libyaml's parser, when PyYAML was built with it (the wheels are)
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover - a PyYAML without libyaml
    _CParser = None  # type: ignore[assignment,misc]

__all__ = [
    "Duplicate",
    "KeyPath",
    "Mark",
    "MarkedDict",
    "MarkedList",
    "duplicate_keys",
    "empty_mapping",
    "key_lines",
    "key_mark",
    "load_yaml",
    "locate",
    "plain",
    "syntax_error_at",
    "walk",
    "without",
]

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Mark:
    """Where a node starts: ``line`` 1-based, ``column`` 0-based; ``style`` the scalar
    quoting (``'``, ``"``, ``|``, ``>``) or None when plain."""

    line: int
    column: int
    style: str | None = None


class MarkedDict(dict[Any, Any]):
    """A mapping that knows where its keys and values are written."""

    key_marks: dict[Any, Mark]
    value_marks: dict[Any, Mark]
    duplicates: list[tuple[Any, Mark]]  # keys given again, where the repeat is
    mark: Mark


class MarkedList(list[Any]):
    """A sequence that knows where its items are written."""

    item_marks: list[Mark]
    mark: Mark


@dataclass(frozen=True)
class Duplicate:
    """A key given more than once: its name and where the repeat is."""

    key: str
    mark: Mark


def empty_mapping() -> MarkedDict:
    """An empty document read as an empty mapping at line 1."""
    data = MarkedDict()
    data.key_marks, data.value_marks, data.duplicates, data.mark = {}, {}, [], Mark(1, 0)
    return data


def _mark(node: yaml.Node) -> Mark:
    style = getattr(node, "style", None) or None  # libyaml says '' for plain, PyYAML None
    return Mark(node.start_mark.line + 1, node.start_mark.column, style)


class _Loader(NoAliasesMixin, yaml.SafeLoader):
    """A safe loader that remembers where each key and value is, and duplicate keys, and
    refuses YAML aliases (an alias bomb expands 330 bytes into gigabytes)."""

    duplicates: list[Duplicate]


if _CParser is not None:

    class _FastLoader(
        NoAliasesMixin,
        yaml.composer.Composer,
        _CParser,
        yaml.constructor.SafeConstructor,
        yaml.resolver.Resolver,
    ):
        """The same loader on libyaml's parser: PyYAML's composer and our constructors
        (so aliases, marks and duplicates behave alike) over events parsed in C, three
        times faster on a rule file. A file it refuses is read again by ``_Loader``,
        whose messages the hints below know."""

        duplicates: list[Duplicate]

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> MarkedDict:
    loader.flatten_mapping(node)
    result = MarkedDict()
    result.key_marks, result.value_marks, result.duplicates = {}, {}, []
    result.mark = _mark(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        value = loader.construct_object(value_node, deep=True)
        if key in result:
            loader.duplicates.append(Duplicate(str(key), _mark(key_node)))
            result.duplicates.append((key, _mark(key_node)))
        try:
            result[key] = value
        except TypeError:  # an unhashable key: report it as a string key
            key = str(key)
            result[key] = value
        result.key_marks[key] = _mark(key_node)
        result.value_marks[key] = _mark(value_node)
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> MarkedList:
    result = MarkedList(loader.construct_object(child, deep=True) for child in node.value)
    result.item_marks = [_mark(child) for child in node.value]
    result.mark = _mark(node)
    return result


for _loader in (_Loader, _FastLoader) if _CParser is not None else (_Loader,):
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(text: str) -> tuple[Any, list[Duplicate]]:
    """The document in ``text`` (mappings and sequences marked) and its duplicate keys, in
    the order they were read. Raises ``yaml.YAMLError`` on broken YAML."""
    if _CParser is not None:
        try:
            return _load(_FastLoader(text))
        except yaml.YAMLError:
            pass  # said again below, in the words the hints know (and an alias as such)
    return _load(_Loader(text))


def _load(loader: Any) -> tuple[Any, list[Duplicate]]:
    loader.duplicates = []
    try:
        return loader.get_single_data(), loader.duplicates
    finally:
        loader.dispose()


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


def syntax_error_at(exc: yaml.YAMLError) -> tuple[Mark | None, str]:
    """Where broken YAML breaks (None when the parser does not say) and what is wrong:
    in plain words first when the mistake is a common one, then PyYAML's own words."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = Mark(mark.line + 1, mark.column) if mark else None
        return where, _in_plain_words(exc.problem or exc.context or "unreadable")
    return None, str(exc)


def _in_plain_words(problem: str) -> str:
    for needle, hint in _HINTS:
        if needle in problem:
            return f"{hint} (YAML says: {problem})"
    return problem


# -- finding things in marked data --------------------------------------------------------


def walk(data: Any, loc: Sequence[int | str]) -> tuple[Any, bool]:
    """The node at ``loc`` and whether it is there."""
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if not (in_dict or in_list):
            return None, False
        node = node[part]
    return node, True


def locate(data: Any, loc: Sequence[int | str]) -> tuple[Mark | None, bool]:
    """The mark of the deepest element of ``loc`` found, and whether it is a key."""
    mark: Mark | None = getattr(data, "mark", None)
    is_key = False
    node = data
    for part in loc:
        if isinstance(node, MarkedDict) and part in node:
            mark, is_key = node.value_marks[part], False
            node = node[part]
        elif isinstance(node, MarkedDict) and part in node.key_marks:
            mark, is_key = node.key_marks[part], True
            break
        elif isinstance(node, MarkedList) and isinstance(part, int) and part < len(node):
            mark, is_key = node.item_marks[part], False
            node = node[part]
        else:
            break
    return mark, is_key


def key_mark(data: Any, loc: Sequence[int | str]) -> Mark | None:
    """The mark of the key at the end of ``loc``."""
    parent, _ = walk(data, loc[:-1])
    if isinstance(parent, MarkedDict):
        return parent.key_marks.get(loc[-1])
    return None


def without(raw: Any, locs: Iterable[tuple[int | str, ...]]) -> Any:
    """A deep copy of ``raw`` without the keys at ``locs`` (the broken ones)."""
    trimmed = copy.deepcopy(raw)
    for loc in locs:
        if not loc:
            continue
        parent, found = walk(trimmed, loc[:-1])
        if found and isinstance(parent, dict) and loc[-1] in parent:
            del parent[loc[-1]]
    return trimmed


def _nodes(data: Any, where: KeyPath) -> Iterator[tuple[KeyPath, Mark, Any]]:
    if isinstance(data, MarkedDict):
        for key, value in data.items():
            child = (*where, str(key))
            yield child, data.key_marks[key], value
            yield from _nodes(value, child)
    elif isinstance(data, MarkedList):
        for index, (value, mark) in enumerate(zip(data, data.item_marks, strict=True)):
            child = (*where, index)
            yield child, mark, value
            yield from _nodes(value, child)


def key_lines(data: Any) -> dict[KeyPath, int]:
    """The line of every key (text keys) and sequence item (index) by its path."""
    return {path: mark.line for path, mark, _ in _nodes(data, ())}


def duplicate_keys(data: Any) -> list[tuple[KeyPath, Mark]]:
    """Every key given more than once, by its path and the repeat's mark, in file order."""
    found: list[tuple[KeyPath, Mark]] = []
    if isinstance(data, MarkedDict):
        found += [((str(key),), mark) for key, mark in data.duplicates]
    for path, _, value in _nodes(data, ()):
        if isinstance(value, MarkedDict):
            found += [((*path, str(key)), mark) for key, mark in value.duplicates]
    return sorted(found, key=lambda item: (item[1].line, item[1].column))


def plain(data: Any) -> Any:
    """The same data as plain dicts and lists (for code that must not see the marks)."""
    if isinstance(data, dict):
        return {key: plain(value) for key, value in data.items()}
    if isinstance(data, list):
        return [plain(value) for value in data]
    return data
