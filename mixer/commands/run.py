"""``amo-mixer run``: the daemon, as systemd starts it."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from mixer.commands._common import add_config_argument

if TYPE_CHECKING:
    from mixer.config import Settings
    from mixer.cycle import CampaignResult


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the daemon: a cycle every interval until stopped",
        description="Run a cycle every interval until SIGTERM or SIGINT (the cycle in flight "
        "finishes, exit 0). SIGHUP reloads config and rules; an invalid reload keeps the "
        "running ones. Speaks the systemd notify protocol (Type=notify, watchdog) and logs "
        "JSON lines on stdout unless stdout is a terminal. On a terminal each decision is "
        "printed as the demo prints it; in JSON each is a 'decision' line.",
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
    factory = functools.partial(_watched_runner, on_terminal=_isatty(sys.stdout))
    why = WhyViews(text=render_trace, data=trace_as_json)
    return Daemon(
        args.config,
        environ=os.environ,
        max_cycles=args.max_cycles,
        runner_factory=factory,
        why=why,
    ).run()


def _watched_runner(settings: Settings, *, on_terminal: bool, **kwargs: Any) -> Any:
    """``build_runner`` that shows each decision: on a terminal a line as ``demo`` prints
    it (and one line per failed campaign), elsewhere (journald) one JSON log line with
    the same fields."""
    from mixer.simulate.live import DecisionPrinter
    from mixer.wiring import build_runner

    watcher: Callable[[CampaignResult], None]
    if on_terminal:
        watcher = DecisionPrinter(settings.qm.tz, sys.stdout)
    else:
        watcher = functools.partial(log_decisions, kwargs.get("log"))
    return build_runner(settings, on_result=watcher, **kwargs)


def log_decisions(log: Any, result: CampaignResult) -> None:
    """One ``decision`` log line per change of one campaign's cycle, one ``override`` line
    per manual change found and one ``guardrail_stop`` line per stopped plan."""
    from mixer.logs import get_logger

    log = log if log is not None else get_logger()
    plan = result.plan
    if plan is None:
        return
    for override in plan.overrides:
        log.warning(
            "override",
            campaign=result.campaign,
            list=override.list,
            weight=[override.expected_weight, override.found_weight],
            paused=[override.expected_paused, override.found_paused],
            hold_until=override.hold_until.isoformat(timespec="seconds"),
            reason=override.reason,
        )
    for stop in plan.stops:
        log.warning("guardrail_stop", campaign=result.campaign, reason=stop.reason)
    for d in plan.decisions:
        log.info(
            "decision",
            campaign=result.campaign,
            list=d.list,
            weight_before=d.before_weight,
            weight_after=d.after_weight,
            paused_before=d.before_paused,
            paused_after=d.after_paused,
            rules=list(d.rules),
            overridden=list(d.overridden),
            reason=d.reason,
            applied=result.applied,
        )


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
