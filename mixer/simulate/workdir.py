"""The folder a simulated run keeps its config, state store and decision log in.

The simulator and the demo write a real config file and load it with ``load_settings``,
so a backtest exercises the same loading code as the daemon. Throwaway runs go to
``/dev/shm`` when it exists: the decision log is fsynced every cycle, which is free on
tmpfs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import yaml

from mixer.emulator.scenario import Scenario

CONFIG_NAME = "config.yaml"
STATE_DIR = "state"
DECISION_LOG = "decisions.jsonl"
QM_USER = "robot"
QM_PASSWORD = "bot"  # the emulator's built-in demo user, never a real credential
SHM = Path("/dev/shm")


def write_config(
    folder: Path,
    *,
    url: str,
    scenario: Scenario,
    rule_files: Sequence[Path],
    interval: str = "60s",
    concurrency: int | None = None,
) -> Path:
    """Write ``folder/config.yaml`` for a mixer in apply mode against an emulator at ``url``.

    ``concurrency``: ``qm.concurrency`` (None leaves the default). An in-process
    emulator answers without waiting on a network, so reading in turn is fastest there.
    """
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "qm": {
            "url": url,
            "user": QM_USER,
            "password": QM_PASSWORD,
            "timezone": scenario.timezone,
            **({} if concurrency is None else {"concurrency": concurrency}),
        },
        "campaigns": list(scenario.campaigns),
        **({"agent_pools": pools} if (pools := agent_pools(scenario)) else {}),
        "rules": [str(Path(path).resolve()) for path in rule_files],
        "mode": "apply",
        "interval": interval,
        "state_dir": STATE_DIR,
        "decision_log": DECISION_LOG,
    }
    path = folder / CONFIG_NAME
    text = "# Written by amo-mixer for a simulated run against the emulator.\n"
    text += yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)  # it holds the (emulator's) password
    return path


def agent_pools(scenario: Scenario) -> list[list[str]]:
    """The config's ``agent_pools`` for the centre the scenario describes: agents without a
    ``campaign:`` serve every campaign, so when there are such agents and more than one
    campaign, all the campaigns share agents (one pool). What an operator would declare
    for that centre, not a tuning knob."""
    shared = any(shift.campaign is None and shift.count > 0 for shift in scenario.agents)
    if shared and len(scenario.campaigns) > 1:
        return [list(scenario.campaigns)]
    return []


@contextmanager
def scratch_dir(prefix: str = "amo-mixer-sim-") -> Iterator[Path]:
    """A temporary folder, on tmpfs when the machine has one; removed afterwards."""
    parent = str(SHM) if SHM.is_dir() else None
    with tempfile.TemporaryDirectory(prefix=prefix, dir=parent) as name:
        yield Path(name)
