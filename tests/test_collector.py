"""The console command paces the garbage collector for its own process; code calling
``main`` with arguments (tests, other programs) keeps its collector as it was."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from mixer import collector
from mixer.cli import main


@pytest.fixture
def thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*before)


@pytest.mark.usefixtures("thresholds")
def test_the_console_command_sets_its_pace(monkeypatch: pytest.MonkeyPatch) -> None:
    """`amo-mixer` (main without arguments, as the console script calls it) collects the
    youngest generation every 200,000 allocations instead of every 700."""
    monkeypatch.setattr(sys, "argv", ["amo-mixer", "--version"])
    with pytest.raises(SystemExit):
        main()
    assert gc.get_threshold() == collector.THRESHOLDS
    assert collector.THRESHOLDS[0] >= 100_000


@pytest.mark.usefixtures("thresholds")
def test_a_caller_with_arguments_keeps_its_collector() -> None:
    """main([...]) from another program leaves that program's collector alone."""
    with pytest.raises(SystemExit):
        main(["--version"])
    assert gc.get_threshold() == (700, 10, 10)
