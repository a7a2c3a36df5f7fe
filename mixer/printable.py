"""Text from QM or from files, made safe for a terminal, a log line or a report.

A list named ``"Promo\\n  Sales  Fake  10→99"`` or holding ``ESC [2J`` would print a fake
table row or clear the operator's screen. Every human-facing output (``once``, ``log``,
``explain``, the demo's lines, error lines, the report) passes names and messages through
``printable``: control characters, line separators and the bidirectional overrides that
reorder text on screen become visible escapes (``\\n``, ``\\x1b``, ``\\u202e``); a
backslash stays a backslash. JSON outputs need nothing: JSON escapes them already.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(found: re.Match[str]) -> str:
    char = found.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every character that could forge or hide output escaped."""
    return _UNSAFE.sub(_escape, text)
