"""``amo-mixer emulator``: serve the QM AMO emulator on a loopback port until stopped."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from datetime import UTC, datetime
from types import FrameType

from mixer.clock import ScaledClock
from mixer.emulator.app import DEFAULT_USERS, create_app
from mixer.emulator.scenario import Scenario, load_scenario, parse_local_time, shipped_scenarios
from mixer.emulator.server import serve
from mixer.emulator.shift import shift_scenario
from mixer.errors import UsageError


class _DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help="serve the QM AMO emulator (a stand-in QueueMetrics server)",
        description="Serve a stand-in QueueMetrics AMO API with a simulated dialer, for "
        "trying rules, the demo and curl. The scenario is moved to start now (its deadlines "
        "and dated additions move with it) unless --at says otherwise. Runs until SIGINT or "
        "SIGTERM.",
        formatter_class=_DefaultsHelp,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port (0 = any free port)")
    parser.add_argument(
        "--scenario",
        default="default",
        help=f"a shipped scenario ({', '.join(shipped_scenarios())}) or a YAML path",
    )
    parser.add_argument(
        "--at",
        default="now",
        metavar="TIME",
        help="when the scenario starts: 'now', a local time 'YYYY-MM-DD HH:MM' in the "
        "scenario's time zone (or ISO 8601 with an offset), or 'scenario' for the start "
        "written in the file",
    )
    parser.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per real second"
    )
    parser.add_argument(
        "--user",
        action="append",
        metavar="NAME:PASSWORD",
        help="an API user holding USR_AMO (repeatable; replaces the default users "
        "robot:bot and nokey:nokey)",
    )
    parser.set_defaults(handler=run)


def _users(specs: list[str] | None) -> dict[str, tuple[str, bool]]:
    if not specs:
        return dict(DEFAULT_USERS)
    users: dict[str, tuple[str, bool]] = {}
    for spec in specs:
        name, sep, password = spec.partition(":")
        if not sep or not name or not password:
            raise UsageError("--user wants NAME:PASSWORD, for example --user robot:bot")
        users[name] = (password, True)
    return users


def _start(text: str, scenario: Scenario, now: datetime) -> datetime | None:
    """The moment ``--at`` asks the scenario to start; None keeps the file's own start."""
    word = text.strip().lower()
    if word == "scenario":
        return None
    if word == "now":
        return now
    try:
        return scenario.local(parse_local_time(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--at {text!r} is not a time: write 'now', 'scenario', a local time like "
            f"'2024-04-22 08:00' ({scenario.timezone}) or ISO 8601 with an offset"
        ) from None
    return scenario.local(moment) if moment.tzinfo is None else moment


def run(args: argparse.Namespace) -> int:
    if args.speed <= 0:
        raise UsageError("--speed must be a positive number, for example --speed 60")
    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    users = _users(args.user)
    scenario = load_scenario(args.scenario)
    start = _start(args.at, scenario, datetime.now(UTC))
    if start is not None:
        scenario = shift_scenario(scenario, start)
    app = create_app(scenario, clock=ScaledClock(scenario.start, args.speed), users=users)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with serve(app, host=args.host, port=args.port) as base_url:
            user, (password, _) = next((name, cred) for name, cred in users.items() if cred[1])
            local_start = scenario.start.astimezone(scenario.tz)
            print(
                f"QM emulator (scenario {scenario.name or args.scenario}, speed "
                f"{args.speed:g}x, starting {local_start:%Y-%m-%d %H:%M} {scenario.timezone})"
                f" at {base_url} - try user {user!r}, password {password!r}",
                flush=True,
            )
            campaign = json.dumps({"amoCampaignName": next(iter(scenario.campaigns), "")})
            print(
                f"  curl -v --user {user}:{password} {base_url}/amoUpdateLists.do -G "
                f"--data-urlencode 'data={campaign}'",
                flush=True,
            )
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
