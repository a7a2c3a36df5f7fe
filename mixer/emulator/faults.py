"""Faults the emulator injects on demand, so tests can show the mixer survives a bad QM.

Switch them from Python (``app.faults.set("status_500", times=2)``) or over HTTP
(``POST <base>/_emulator/faults`` with ``{"kind": "status_500", "times": 2}``; ``DELETE``
clears). Every fault takes ``endpoint`` (``"amoUpdateLists"`` or ``"amoUpdateNumbers"``:
only that one) and ``times`` (only the next N requests it affects; default: forever).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ENDPOINTS", "FAULT_KINDS", "Fault", "FaultError", "Faults"]

ENDPOINTS = ("amoUpdateLists", "amoUpdateNumbers")

# kind -> what it does (shown in docs/emulator.md and in the HTTP error for a bad kind)
FAULT_KINDS: dict[str, str] = {
    "latency": "sleep `seconds` (real time) before answering",
    "status_500": "answer HTTP 500 with an error page",
    "unauthorized_401": "answer HTTP 401 as if the credentials were wrong",
    "html_200": "answer an HTML login page with status 200",
    "truncated_json": "answer a valid reply cut in the middle",
    "vanish_list": "list `list` of campaign `campaign` is missing from replies",
    "fail_writes": "reads work; a call that writes gets HTTP 500 and changes nothing",
    "api_errors": "the reply carries `errors` entries (`message`); writes are not applied",
    "ignore_writes": "answers 200 with the listing but does not apply the update",
}
_OPTIONS: dict[str, set[str]] = {
    "latency": {"seconds"},
    "vanish_list": {"campaign", "list"},
    "api_errors": {"message"},
}
WRITE_ONLY = frozenset({"fail_writes", "ignore_writes"})


class FaultError(ValueError):
    """A fault request that cannot be honoured (unknown kind, missing option)."""


@dataclass(slots=True)
class Fault:
    kind: str
    endpoint: str | None = None
    times: int | None = None  # None: forever
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "endpoint": self.endpoint, "times": self.times, **self.options}


class Faults:
    """The active faults, at most one per kind. Thread-safe."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self.sleep = sleep  # tests swap it to record latency without waiting
        self._active: dict[str, Fault] = {}
        self._lock = threading.Lock()

    def set(
        self, kind: str, *, endpoint: str | None = None, times: int | None = None, **options: Any
    ) -> Fault:
        """Switch a fault on (replacing one of the same kind)."""
        if kind not in FAULT_KINDS:
            raise FaultError(f"unknown fault {kind!r}: use one of {', '.join(FAULT_KINDS)}")
        if endpoint is not None:
            endpoint = endpoint.removesuffix(".do")
            if endpoint not in ENDPOINTS:
                raise FaultError(f"unknown endpoint {endpoint!r}: use one of {ENDPOINTS}")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise FaultError("'times' must be a positive integer")
        allowed = _OPTIONS.get(kind, set())
        unknown = set(options) - allowed
        if unknown:
            raise FaultError(f"fault {kind!r} takes no option {sorted(unknown)[0]!r}")
        if kind == "latency":
            seconds = options.get("seconds")
            if not isinstance(seconds, int | float) or seconds < 0:
                raise FaultError("fault 'latency' needs 'seconds' >= 0")
        if kind == "vanish_list" and not (options.get("campaign") and options.get("list")):
            raise FaultError("fault 'vanish_list' needs 'campaign' and 'list'")
        fault = Fault(kind, endpoint, times, dict(options))
        with self._lock:
            self._active[kind] = fault
        return fault

    def clear(self, kind: str | None = None) -> None:
        """Switch one fault off, or all of them."""
        with self._lock:
            if kind is None:
                self._active.clear()
            else:
                self._active.pop(kind, None)

    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._active.values())

    def take(self, kind: str, endpoint: str, *, is_write: bool = False) -> Fault | None:
        """The fault of ``kind`` if it applies to this request; uses up one of its times."""
        with self._lock:
            fault = self._active.get(kind)
            if fault is None or (fault.endpoint is not None and fault.endpoint != endpoint):
                return None
            if kind in WRITE_ONLY and not is_write:
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self._active[kind]
            return fault
