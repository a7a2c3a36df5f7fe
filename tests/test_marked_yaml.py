"""The marked YAML loader reads alike on libyaml's parser and on PyYAML's own: the same
data, the same line, column and style of every key and value, the same duplicates, and
for broken YAML or an alias the same one-line problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mixer.opsfiles import marked_yaml
from mixer.opsfiles.marked_yaml import MarkedDict, MarkedList, load_yaml, syntax_error_at

ROOT = Path(__file__).parent.parent
PATTERNS = ("rules/*.yaml", "rules/tests/*.yaml", "mixer/emulator/scenarios/*.yaml")
FILES = [
    *sorted(p for pattern in PATTERNS for p in ROOT.glob(pattern)),
    ROOT / "config.example.yaml",
]

TRICKY = """\
# comments, every scalar style, flow collections, a duplicate key, anchors without aliases
plain: text
single: 'it''s'
double: "tab\\there \\u00e9"
block: |
  two
  lines
folded: >
  one
  line
flow: [1, 2.5, {a: true, b: null}]
when: hours_to_deadline < 48 and unpulled > 0
date: 2024-04-30 18:00
anchored: &keep {x: 1}
plain: again
"""


def _marks(data: Any) -> Any:
    """Every mark in ``data``, nested like it."""
    if isinstance(data, MarkedDict):
        return (
            data.mark,
            dict(data.key_marks),
            dict(data.value_marks),
            list(data.duplicates),
            {k: _marks(v) for k, v in data.items()},
        )
    if isinstance(data, MarkedList):
        return (data.mark, list(data.item_marks), [_marks(v) for v in data])
    return None


def _pure(text: str) -> tuple[Any, list[Any]]:
    return marked_yaml._load(marked_yaml._Loader(text))


@pytest.mark.skipif(marked_yaml._CParser is None, reason="PyYAML built without libyaml")
@pytest.mark.parametrize(
    "text",
    [TRICKY, *(p.read_text(encoding="utf-8") for p in FILES)],
    ids=["tricky", *map(str, FILES)],
)
def test_both_parsers_read_the_same_data_and_marks(text: str) -> None:
    """Each shipped operator file, and one with every scalar style: data, marks and
    duplicate keys are the same whichever parser produced the events."""
    fast, fast_duplicates = load_yaml(text)
    pure, pure_duplicates = _pure(text)
    assert fast == pure
    assert _marks(fast) == _marks(pure)
    assert fast_duplicates == pure_duplicates


def test_the_fast_parser_is_the_one_used() -> None:
    """Rule files and configs are read through libyaml when PyYAML has it (the shipped
    wheels do): the fast path is not silently lost."""
    assert marked_yaml._CParser is not None


@pytest.mark.parametrize(
    "text",
    [
        "rules:\n  - name: a\n\twhen: x\n",  # a tab
        "a: b: c\n",  # mapping values not allowed here
        "rules: [1, 2\n",  # an unclosed flow sequence
        "base: &b {w: 1}\nrules: [*b, *b]\n",  # an alias
        'name: "unclosed\n',
    ],
)
def test_broken_yaml_is_reported_as_pure_pyyaml_reports_it(text: str) -> None:
    """A file libyaml refuses is read again by the pure loader, so the problem, its place
    and the plain-words hint are the ones operators have always been shown."""
    with pytest.raises(yaml.YAMLError) as fast:
        load_yaml(text)
    with pytest.raises(yaml.YAMLError) as pure:
        _pure(text)
    assert syntax_error_at(fast.value) == syntax_error_at(pure.value)
