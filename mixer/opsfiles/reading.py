"""Reading an operator's file: the one place such a file is opened.

Parsing is pure (text in); this is the edge where the text comes from the disk, with one
short reason when it cannot (``no such file``, the OS's reason, ``not UTF-8 text``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["UnreadableFile", "read_text"]


class UnreadableFile(Exception):
    """A file that cannot be read as UTF-8 text; ``reason`` says why in a few words."""

    def __init__(
        self, path: Path, reason: str, *, missing: bool = False, not_text: bool = False
    ) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.missing = missing  # no such file
        self.not_text = not_text  # read, but not UTF-8 text


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path``; raises ``UnreadableFile`` when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise UnreadableFile(path, exc.strerror or str(exc), missing=True) from None
    except OSError as exc:
        raise UnreadableFile(path, exc.strerror or str(exc)) from None
    except UnicodeDecodeError:
        raise UnreadableFile(path, "not UTF-8 text", not_text=True) from None
