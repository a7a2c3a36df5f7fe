"""Logging, configured once per process: JSON lines for journald, a console view for people.

On a terminal the output is the readable console rendering; anywhere else (journald, a
pipe, a file) it is one JSON object per line. Timestamps are ISO 8601 UTC. Any field
named like a password, an authorization header, a secret or a token is redacted before
rendering, whatever code logged it. Standard-library loggers (APScheduler, httpx) go
through the same renderer, quieted to warnings unless ``--debug``. A QM read that is
retried logs one ``qm_retry`` line (debug only for one-shot commands).

structlog itself (``mixer.log_render``) is imported when the first line is logged, not
when logging is configured: a one-shot command that logs nothing before its first QM
request does not pay tens of milliseconds of imports for it. Every logger the mixer
uses comes from ``get_logger`` here, which applies the configuration first.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Mapping, MutableMapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from stamina.instrumentation import RetryDetails, RetryHook
    from structlog.typing import EventDict

LOGGER_NAME = "amo-mixer"
REDACTED = "[redacted]"
SECRET_WORDS = ("password", "passwd", "authorization", "secret", "token", "credential")

# The structlog configuration ``configure_logging`` asked for and nothing has applied
# yet (structlog not imported): applied by the first logger used, under the lock.
_pending: Callable[[], None] | None = None
_pending_lock = threading.Lock()


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
    global _pending
    out = sys.stdout if stream is None else stream
    as_json = not isatty(out) if json is None else json
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO

    def apply() -> None:
        from mixer.log_render import configure_structlog

        configure_structlog(out, as_json=as_json, level=level)

    with _pending_lock:
        if "structlog" in sys.modules:  # already paid for: configure it now
            _pending = None
            apply()
        else:
            _pending = apply

    handler = _SafeStreamHandler(out)
    handler.set_name(LOGGER_NAME)
    handler.setFormatter(_RenderingFormatter(out, as_json=as_json))
    # stamina would log each retry as its own raw event; one readable line of ours
    # instead, and none at all for one-shot commands unless --debug (their one-line
    # error after the last attempt already says it all).
    import stamina.instrumentation  # the QM client's retries: loaded with it anyway

    stamina.instrumentation.set_on_retry_hooks([_retry_hook(quiet=quiet)])
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == LOGGER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)


def _structlog() -> Any:
    """structlog, with the configuration ``configure_logging`` asked for applied."""
    global _pending
    import structlog

    if _pending is not None:
        with _pending_lock:  # cleared only once applied: no logger sees it half-done
            if _pending is not None:
                _pending()
                _pending = None
    return structlog


class _RenderingFormatter(logging.Formatter):
    """Renders standard-library records as structlog does; built at the first record."""

    def __init__(self, out: TextIO, *, as_json: bool) -> None:
        super().__init__()
        self._out = out
        self._as_json = as_json
        self._formatter: logging.Formatter | None = None

    def format(self, record: logging.LogRecord) -> str:
        if self._formatter is None:
            _structlog()
            from mixer.log_render import stdlib_formatter

            self._formatter = stdlib_formatter(self._out, as_json=self._as_json)
        return self._formatter.format(record)


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


def get_logger(name: str = LOGGER_NAME, **initial: Any) -> Any:
    """The project's logger (a structlog bound logger), with ``initial`` fields bound.

    Until structlog is loaded this is a stand-in that loads and configures it at its
    first use: getting a logger (at import, in a constructor) costs nothing.
    """
    if _pending is None and "structlog" in sys.modules:
        import structlog  # (waits if another thread is still importing it)

        return structlog.get_logger(name, **initial)
    return _LazyLogger(name, initial)


class _LazyLogger:
    """A structlog logger that is made (structlog imported, configured) at first use."""

    def __init__(self, name: str, initial: dict[str, Any]) -> None:
        self._name = name
        self._initial = initial
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None:
            self._logger = _structlog().get_logger(self._name, **self._initial)
        return getattr(self._logger, attr)


def isatty(stream: TextIO) -> bool:
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
