"""``amo-mixer scenario fit``: an emulator scenario fitted to the recorded history."""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from mixer.clock import Clock, SystemClock
from mixer.commands._common import add_config_argument, parse_when
from mixer.errors import ConfigError, MixerError, UsageError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "scenario",
        help="scenarios from your own history (scenario fit)",
        description="Work with emulator scenarios built from the decision log.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fit = actions.add_parser(
        "fit",
        help="write a scenario fitted to the recorded cycles",
        description="Write a scenario YAML fitted to the cycles the decision log recorded: "
        "the lists with their sizes, weights, deadlines and refills as seen, agents per "
        "hour of the week from the calls in progress, and a handling time from busy "
        "agent-minutes per completed number. The method and its limits are comments in "
        "the file. Then: amo-mixer simulate --scenario FILE.",
    )
    add_config_argument(fit)
    fit.add_argument(
        "--since",
        required=True,
        metavar="WHEN",
        help="fit from this time: a duration back from now (14d) or an ISO 8601 time",
    )
    fit.add_argument("--until", metavar="WHEN", help="fit up to this time (default: now)")
    fit.add_argument("--campaign", metavar="GLOB", help="only the configured campaigns matching")
    fit.add_argument(
        "-o", "--output", type=Path, required=True, help="the scenario YAML file to write"
    )
    fit.set_defaults(handler=run_fit)


def run_fit(
    args: argparse.Namespace, *, clock: Clock | None = None, out: IO[str] | None = None
) -> int:
    from mixer.config import load_settings
    from mixer.decisions import log_files
    from mixer.recorded import read_cycle_records, recorded_cycles
    from mixer.scenario_fit import fit_scenario, render_yaml
    from mixer.simulate.progress import ProgressBar

    out = out if out is not None else sys.stdout
    now = (clock or SystemClock()).now()
    since = parse_when(args.since, now, "--since")
    until = parse_when(args.until, now, "--until") or now
    assert since is not None  # required
    if since >= until:
        raise UsageError(f"--since ({args.since}) must be before --until ({args.until or 'now'})")
    settings = load_settings(args.config, environ=os.environ, read_secrets=False)
    path = settings.decision_log
    if not any(p.exists() for p in log_files(path)):
        raise MixerError(
            f"no decision log at {path}: nothing recorded to fit "
            f"(state_dir and decision_log in {settings.config_path} say where it is)"
        )
    campaigns = None
    if args.campaign is not None:
        campaigns = [c for c in settings.campaigns if fnmatch.fnmatchcase(c, args.campaign)]
    records = read_cycle_records(
        path, since=since, until=until, events=("cycle",), campaigns=campaigns
    )
    bar = ProgressBar(sys.stderr)
    try:
        result = fit_scenario(
            recorded_cycles(records), tz=settings.qm.tz, since=since, until=until, progress=bar
        )
    except ValueError as exc:
        raise MixerError(
            f"cannot fit a scenario from {path} between {_when(since)} and {_when(until)}: "
            f"{exc}; choose another --since/--until"
        ) from exc
    except OSError as exc:
        raise MixerError(
            f"cannot read the decision log {path}: {exc.strerror or exc}; check its permissions"
        ) from exc
    finally:
        bar.close()
    text = render_yaml(result)
    _write_checked(args.output, text)
    lists = sum(len(c["lists"]) for c in result.document["campaigns"].values())
    handling = (
        "unknown" if result.handling_minutes is None else f"{result.handling_minutes:.2f} min"
    )
    out.write(
        f"{args.output}: {len(result.document['campaigns'])} campaigns, {lists} lists, "
        f"{len(result.document['agents'])} shifts, handling time {handling}, "
        f"fitted to {result.cycles} cycles; try: amo-mixer simulate --scenario {args.output}\n"
    )
    return 0


def _write_checked(path: Path, text: str) -> None:
    """Validate the scenario as ``simulate`` would load it, then replace ``path`` at once."""
    from mixer.emulator.scenario import load_scenario

    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".yaml", dir=folder)
    except OSError as exc:
        raise MixerError(f"cannot write {path}: {exc.strerror}; choose another -o path") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            load_scenario(Path(tmp))
        except ConfigError as exc:  # a fitting fault, not the user's: say so plainly
            raise MixerError(f"the fitted scenario does not validate: {exc.message}") from exc
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise MixerError(f"cannot write {path}: {exc.strerror}; choose another -o path") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


def _when(when: datetime) -> str:
    return when.isoformat(timespec="minutes")
