"""Suite-wide fixtures: logging isolation, and the in-process mixer rig of the cycle tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from mixer.logs import LOGGER_NAME
from tests.cycle_harness import Mixer


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    """Commands configure logging onto pytest's capture streams, which close after the
    test; put structlog and the root handler back so later tests never write to them."""
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == LOGGER_NAME]:
        root.removeHandler(handler)


@pytest.fixture
def make(tmp_path: Path) -> Iterator[type[Mixer]]:
    """``make(lists=..., rules=...)`` builds a ``Mixer`` in the test's folder; every one
    made is closed after the test."""
    made: list[Mixer] = []

    class Made(Mixer):
        def __init__(self, **kw: object) -> None:
            super().__init__(tmp_path, **kw)  # type: ignore[arg-type]
            made.append(self)

    yield Made
    for mixer in made:
        mixer.close()
