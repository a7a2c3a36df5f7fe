"""``amo-mixer run``: the daemon, as systemd starts it."""

from __future__ import annotations

import argparse
import os
from typing import Any

from mixer.commands._common import add_config_argument


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the daemon: a cycle every interval until stopped",
        description="Run a cycle every interval until SIGTERM or SIGINT (the cycle in flight "
        "finishes, exit 0). SIGHUP reloads config and rules; an invalid reload keeps the "
        "running ones. Speaks the systemd notify protocol (Type=notify, watchdog) and logs "
        "JSON lines on stdout unless stdout is a terminal.",
    )
    add_config_argument(parser)
    parser.add_argument(
        "--max-cycles",
        type=_positive_int,
        default=None,
        metavar="N",
        help="stop after N cycles (for smoke tests)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mixer.commands.explain import render_trace, trace_as_json
    from mixer.daemon import Daemon
    from mixer.listener import WhyViews
    from mixer.logs import configure_logging

    configure_logging(debug=args.debug)
    why = WhyViews(text=render_trace, data=trace_as_json)
    return Daemon(args.config, environ=os.environ, max_cycles=args.max_cycles, why=why).run()


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
