"""The shared ``with`` support of the client, the state store and the decision log."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixer.decisions import DecisionLog
from mixer.store import StateStore


def test_state_store_and_decision_log_close_on_exit_even_after_an_error(tmp_path: Path) -> None:
    """Leaving a `with` block, normally or by an exception, closes the resource."""
    with StateStore(tmp_path / "state.sqlite3") as store:
        assert store.integrity_check() == "ok"
    log = DecisionLog(tmp_path / "d.jsonl")
    with pytest.raises(RuntimeError):
        _fail_inside(log)
    with pytest.raises(Exception, match="closed"):
        store.integrity_check()
    with pytest.raises(ValueError, match="closed"):
        log.append({"event": "cycle"})
    assert (tmp_path / "d.jsonl").read_text(encoding="utf-8").count("\n") == 1


def _fail_inside(log: DecisionLog) -> None:
    with log:
        log.append({"event": "cycle"})
        raise RuntimeError("boom")
