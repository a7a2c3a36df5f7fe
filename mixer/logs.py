"""Logging, configured once per process: JSON lines for journald, a console view for people.

On a terminal the output is the readable console rendering; anywhere else (journald, a
pipe, a file) it is one JSON object per line. Timestamps are ISO 8601 UTC. Any field
named like a password, an authorization header, a secret or a token is redacted before
rendering, whatever code logged it. Standard-library loggers (APScheduler, httpx) go
through the same renderer, quieted to warnings unless ``--debug``. A QM read that is
retried logs one ``qm_retry`` line (debug only for one-shot commands).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from contextlib import AbstractContextManager
from typing import Any, TextIO

import stamina
import structlog
from stamina.instrumentation import RetryDetails, RetryHook
from structlog.typing import EventDict, Processor

LOGGER_NAME = "amo-mixer"
REDACTED = "[redacted]"
SECRET_WORDS = ("password", "passwd", "authorization", "secret", "token", "credential")


def redact_secrets(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """Replace the value of every key named like a secret, nested mappings included."""
    return _redact(event_dict)


def _redact(mapping: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(mapping.items()):
        if any(word in str(key).lower() for word in SECRET_WORDS):
            mapping[key] = REDACTED
        elif isinstance(value, Mapping):
            mapping[key] = _redact(dict(value))
    return mapping


def configure_logging(
    *,
    debug: bool = False,
    stream: TextIO | None = None,
    json: bool | None = None,
    quiet: bool = False,
) -> None:
    """Route structlog and stdlib logging to ``stream`` (default stdout).

    ``json`` forces the renderer; by default it is JSON unless ``stream`` is a terminal.
    ``quiet`` keeps only warnings and errors: for one-shot commands whose own output
    already says what happened.
    """
    out = sys.stdout if stream is None else stream
    as_json = not _isatty(out) if json is None else json
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    renderer: Processor
    if as_json:
        renderer = structlog.processors.JSONRenderer()
        tail: list[Processor] = [structlog.processors.format_exc_info, renderer]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=_isatty(out))
        tail = [renderer]
    structlog.configure(
        processors=[*shared, structlog.processors.StackInfoRenderer(), *tail],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_SafePrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )

    handler = _SafeStreamHandler(out)
    handler.set_name(LOGGER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    # stamina would log each retry as its own raw event; one readable line of ours
    # instead, and none at all for one-shot commands unless --debug (their one-line
    # error after the last attempt already says it all).
    stamina.instrumentation.set_on_retry_hooks([_retry_hook(quiet=quiet)])
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == LOGGER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)


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


class _SafeStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stdlib side of the same rule: a failed write is dropped, not reported on
    stderr line by line (``logging.Handler.handleError``)."""

    def handleError(self, record: logging.LogRecord) -> None:
        return None


def _retry_hook(*, quiet: bool) -> RetryHook:
    def on_retry(details: RetryDetails) -> AbstractContextManager[None] | None:
        log = get_logger()
        emit = log.debug if quiet else log.warning
        emit(
            "qm_retry",
            attempt=details.retry_num + 1,
            wait_s=round(details.wait_for, 1),
            error=str(details.caused_by),
        )
        return None

    return on_retry


def get_logger(**initial: Any) -> Any:
    """The project's logger (a structlog bound logger), with ``initial`` fields bound."""
    return structlog.get_logger(LOGGER_NAME, **initial)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class SilentLog:
    """A logger that drops everything: a simulated week would print a line per cycle."""

    def __getattr__(self, _name: str) -> Any:
        return _drop


def _drop(*_args: object, **_kwargs: object) -> None:
    return None
