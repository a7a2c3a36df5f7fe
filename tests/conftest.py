"""Suite-wide isolation: logging configured by one test must not leak into the next."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from mixer.logs import LOGGER_NAME


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    """Commands configure logging onto pytest's capture streams, which close after the
    test; put structlog and the root handler back so later tests never write to them."""
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == LOGGER_NAME]:
        root.removeHandler(handler)
