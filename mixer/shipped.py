"""Where the shipped rules live once installed.

``rules/`` at the top of the repository is the canonical copy; ``mixer/shipped_rules`` is
a symbolic link to it, so wheels carry the files and ``demo``/``simulate`` find them on a
machine that only ran ``pip install``.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED_RULES = Path(__file__).resolve().parent / "shipped_rules"


def shipped_rule_files() -> list[Path]:
    """The shipped rule files, in the order they apply."""
    return sorted(SHIPPED_RULES.glob("*.yaml"))
