"""Lazy command modules: a command imports only its own module; ``--help`` imports none."""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

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


# What `once` has not loaded when it sends its first request: the heavy modules that the
# read does not need (structlog and its console renderer, rich; the planner and the
# evaluator; the decision-log record types) or that serve other commands. Each would
# cost start-up time before QM hears from the mixer.
NOT_BEFORE_THE_FIRST_REQUEST = (
    "structlog",
    "mixer.log_render",
    "rich",
    "mixer.plan",
    "mixer.engine.evaluate",
    "mixer.records",
    "prometheus_client",
    "mixer.metrics",
    "apscheduler",
    "mixer.daemon",
    "mixer.report",
    "mixer.emulator",
    "mixer.simulate",
    "plotly",
)

_FIRST_REQUEST = """
import json, os, socket, sys

# httpx imports its own command-line tool when click and rich are installed (as on a
# development machine, not in a user's install): left out, so what is seen is the mixer's.
sys.modules["httpx._main"] = None

def connect(self, *args):
    print(json.dumps(sorted(sys.modules)), flush=True)
    os._exit(0)

socket.socket.connect = connect  # the first request: stop there, say what is loaded
from mixer.cli import main
main(["once", "-c", sys.argv[1]])
"""


def _modules_at_first_request(config: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_REQUEST, str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "AMO_MIXER_QM_PASSWORD": "bot"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _once_config(folder: Path, rules: str) -> Path:
    (folder / "rules").mkdir()
    (folder / "rules" / "r.yaml").write_text(rules, encoding="utf-8")
    config = folder / "config.yaml"
    config.write_text(
        "qm: {url: 'http://127.0.0.1:9/qm', user: robot, timezone: Europe/Zurich}\n"
        "campaigns: [Sales]\nrules: [rules/*.yaml]\nstate_dir: state\n",
        encoding="utf-8",
    )
    config.chmod(0o600)
    return config


def test_once_sends_its_first_request_before_loading_what_the_read_does_not_need(
    tmp_path: Path,
) -> None:
    """By `once`'s first request the config and rules are validated (their modules are
    loaded) but structlog, rich, the planner, the evaluator, the metrics server, the
    daemon, the report, the emulator and the simulator are not: they would only delay
    that request."""
    rules = "rules:\n  - {name: boost, when: hour >= 12, set: {weight: 'base_weight * 2'}}\n"
    loaded = _modules_at_first_request(_once_config(tmp_path, rules))
    assert {"mixer.config", "mixer.rulefile.schema", "mixer.engine.rules"} <= loaded
    unwanted = set(NOT_BEFORE_THE_FIRST_REQUEST)
    heavy = {m for m in loaded if m in unwanted or m.split(".")[0] in unwanted}
    assert heavy == set()


def test_only_the_logging_modules_import_structlog() -> None:
    """Loggers come from ``mixer.logs.get_logger`` (which configures structlog first);
    only ``mixer.log_render`` and ``mixer.logs`` (when a line is logged) import structlog."""
    root = Path(commands.__path__[0]).parent
    importers = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "structlog" or n.startswith("structlog.") for n in names):
                importers.add(path.relative_to(root).as_posix())
    assert importers == {"log_render.py", "logs.py"}  # logs.py: in ``_structlog()``
