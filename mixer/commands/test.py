"""``amo-mixer test``: run rule unit tests (YAML steps of list snapshots and the decisions
expected), like ``promtool test rules``. Exit 0 all pass, 1 any fails, 2 unreadable file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "test",
        help="run rule unit tests",
        description="Run rule unit tests: each file names rule files and gives list "
        "snapshots at times with the decisions expected; the real pipeline (memory, "
        "rules, guardrails) decides. Exit 0 when all pass, 1 when one fails, 2 when a "
        "file cannot be read.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="test files")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mixer.ruletests import RuleTestFileError, run_test_files

    status = 0
    for outcome in run_test_files(args.files):
        if isinstance(outcome, RuleTestFileError):
            print(f"error: {outcome.message}")
            for problem in outcome.problems:
                print(f"  {problem}")
            status = 2
            continue
        print(outcome.summary())
        for failure in outcome.failures:
            print(f"  {failure}")
        if not outcome.ok and status == 0:
            status = 1
    return status
