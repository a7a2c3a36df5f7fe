"""Lazy command modules: a command imports only its own module; ``--help`` imports none."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import subprocess
import sys

from mixer import commands
from mixer.commands import SUMMARIES


def test_summaries_name_every_command_module_with_its_own_help() -> None:
    """``SUMMARIES`` lists exactly the command modules, each with the help it registers."""
    modules = sorted(
        m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")
    )
    assert sorted(SUMMARIES) == modules
    for name in modules:
        parser = argparse.ArgumentParser()
        subparsers = parser.add_subparsers()
        importlib.import_module(f"mixer.commands.{name}").register(subparsers)
        (action,) = subparsers._choices_actions
        assert (action.dest, action.help) == (name, SUMMARIES[name])


def _command_modules_after(*argv: str) -> set[str]:
    code = (
        "import sys\n"
        "from mixer.cli import main\n"
        "try:\n"
        f"    main({list(argv)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "import json\n"
        "print(json.dumps([m for m in sys.modules if m.startswith('mixer.commands.')]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_help_imports_no_command_module_and_a_command_only_its_own() -> None:
    """``amo-mixer --help`` lists the commands without importing one; ``once --help``
    imports ``once`` (and the shared ``_common``) only."""
    assert _command_modules_after("--help") == set()
    assert _command_modules_after("once", "--help") == {
        "mixer.commands.once",
        "mixer.commands._common",
    }


def test_the_cycle_path_does_not_load_the_metrics_server() -> None:
    """`once` builds a runner through the wiring: prometheus_client (the daemon's metrics
    server) is not among what that imports."""
    code = (
        "import sys, mixer.wiring, mixer.commands.once; print('prometheus_client' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"
