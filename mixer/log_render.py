"""The structlog half of logging: renderers, processors and structlog's configuration.

Importing it imports structlog (with its console renderer, and rich where that is
installed): tens of milliseconds. ``mixer.logs`` imports it only once something is
logged, so a one-shot command that logs nothing before its first QM request (``once``)
does not pay for it there.
"""

from __future__ import annotations

import logging
from typing import Any, TextIO

import structlog
from structlog.typing import Processor

from mixer.logs import isatty, redact_secrets


def configure_structlog(out: TextIO, *, as_json: bool, level: int) -> None:
    """structlog's own loggers: filtered at ``level``, rendered to ``out``."""
    structlog.configure(
        processors=[*_shared(), structlog.processors.StackInfoRenderer(), *_tail(out, as_json)],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_SafePrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def stdlib_formatter(out: TextIO, *, as_json: bool) -> logging.Formatter:
    """Standard-library records (APScheduler, httpx) through the same renderer."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *_shared()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_tail(out, as_json),
        ],
    )


def _shared() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]


def _tail(out: TextIO, as_json: bool) -> list[Processor]:
    if as_json:
        return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    return [structlog.dev.ConsoleRenderer(colors=isatty(out))]


class _SafePrintLogger(structlog.PrintLogger):
    """A print logger that drops a line it cannot write (a closed or broken stdout pipe):
    logging must never raise into the daemon's control thread or a cycle."""

    def msg(self, message: str) -> None:
        try:
            super().msg(message)
        except (OSError, ValueError):
            pass

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


class _SafePrintLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *_args: Any) -> _SafePrintLogger:
        return _SafePrintLogger(self._file)
