"""``amo-mixer emulator``: serve the QM AMO emulator on a loopback port until stopped."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from mixer.clock import ScaledClock
from mixer.emulator.app import DEFAULT_USERS, create_app
from mixer.emulator.scenario import load_scenario, shipped_scenarios
from mixer.emulator.server import serve
from mixer.errors import UsageError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help="serve the QM AMO emulator (a stand-in QueueMetrics server)",
        description="Serve a stand-in QueueMetrics AMO API with a simulated dialer, for "
        "trying rules, the demo and curl. Runs until SIGINT or SIGTERM.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port (0 = any free port)")
    parser.add_argument(
        "--scenario",
        default="default",
        help=f"a shipped scenario ({', '.join(shipped_scenarios())}) or a YAML path",
    )
    parser.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per real second"
    )
    parser.add_argument(
        "--user",
        action="append",
        metavar="NAME:PASSWORD",
        help="an API user holding USR_AMO (repeatable; default robot:bot)",
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


def run(args: argparse.Namespace) -> int:
    if args.speed <= 0:
        raise UsageError("--speed must be a positive number, for example --speed 60")
    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    users = _users(args.user)
    scenario = load_scenario(args.scenario)
    app = create_app(scenario, clock=ScaledClock(scenario.start, args.speed), users=users)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with serve(app, host=args.host, port=args.port) as base_url:
            user, (password, _) = next((name, cred) for name, cred in users.items() if cred[1])
            print(
                f"QM emulator (scenario {scenario.name or args.scenario}, speed "
                f"{args.speed:g}x) at {base_url} - try user {user!r}, password {password!r}",
                flush=True,
            )
            print(
                f"  curl -v --user {user}:{password} {base_url}/amoUpdateLists.do -G "
                '--data-urlencode \'data={"amoCampaignName": "Sales"}\'',
                flush=True,
            )
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
