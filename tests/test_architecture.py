"""The package's own rules of structure that import contracts cannot state.

The layers themselves are import-linter contracts in ``pyproject.toml`` (``lint-imports``
in ``.ci/run``); these tests hold what is about names rather than modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mixer"


def _imports_of_private_names() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mixer"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        where = path.relative_to(PACKAGE.parent)
                        found.append(f"{where}:{node.lineno}: {node.module}.{alias.name}")
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    """A name with a leading underscore stays in its module: what others need is public."""
    assert _imports_of_private_names() == []


def test_the_state_file_name_is_spelled_once() -> None:
    """Where the state database lives is decided in one place (``mixer.wiring``)."""
    spelled = [
        str(path.relative_to(PACKAGE.parent))
        for path in sorted(PACKAGE.rglob("*.py"))
        if '"state.sqlite3"' in path.read_text(encoding="utf-8")
    ]
    assert spelled == ["mixer/wiring.py"]
