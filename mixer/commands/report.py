"""``amo-mixer report``: the decision log as one self-contained HTML page."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mixer.commands._common import add_config_argument, add_tz_argument, parse_when, zone_from
from mixer.errors import MixerError, UsageError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write the decision log as a self-contained HTML report",
        description="Write one HTML file, readable offline, with each list's weight and "
        "pause state over time, pulls and completions, counts of changes, overrides, "
        "guardrail stops and errors, and a searchable table of every decision. "
        "Needs the optional charts dependency: pip install 'amo-mixer[report]'.",
    )
    add_config_argument(parser)
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="only records from this time on: a duration back from now (24h, 7d) "
        "or an ISO 8601 time (2026-04-10T08:00, in the --tz zone unless it has an offset)",
    )
    parser.add_argument(
        "--until", metavar="WHEN", help="only records before this time (same forms as --since)"
    )
    parser.add_argument(
        "--campaign", metavar="GLOB", help="only campaigns whose name matches (e.g. 'Sales*')"
    )
    parser.add_argument("--title", help="the page title (default: names the config)")
    parser.add_argument(
        "--replay-rules",
        nargs="+",
        metavar="NEW_GLOB",
        help="add a section replaying these rule files over the same range (needs --since): "
        "old vs new weights per list, as amo-mixer replay computes them",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("report.html"),
        help="the HTML file to write (default: %(default)s)",
    )
    add_tz_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mixer.config import load_settings

    now = datetime.now(UTC)
    settings = load_settings(args.config, environ=os.environ, read_secrets=False)
    zone = zone_from(args, settings)
    since = parse_when(args.since, now, "--since", zone)
    until = parse_when(args.until, now, "--until", zone)
    if since and until and since >= until:
        raise UsageError(f"--since ({args.since}) must be before --until ({args.until})")
    try:
        from mixer.report import collect, render_report, write_report
        from mixer.report.build import plotly_js
    except ImportError as exc:  # pragma: no cover - the package ships with mixer
        raise MixerError(f"the report module cannot load: {exc}") from exc
    plotly_js()  # fail in one line before reading a large log when plotly is missing
    replay_files = None
    if args.replay_rules:
        from mixer.commands.simulate import expand_rule_args
        from mixer.rule_loading import load_rules

        if since is None:
            raise UsageError("--replay-rules needs --since: the range to replay (e.g. 7d)")
        replay_files = expand_rule_args(args.replay_rules)
        load_rules(replay_files)  # a broken rules file fails here, in one line

    from mixer.decisions import log_files, read_records

    log_path = settings.decision_log
    if not any(p.exists() for p in log_files(log_path)):
        raise MixerError(
            f"no decision log at {log_path}: has the mixer run yet? "
            f"(state_dir and decision_log in {args.config} say where it is)"
        )
    records = read_records(log_path, since=since, until=until, campaign=args.campaign)
    try:
        data = collect(records, zone=zone)
    except OSError as exc:
        raise MixerError(
            f"cannot read the decision log {log_path}: {exc.strerror or exc}; check its permissions"
        ) from exc
    title = args.title or f"amo-mixer decisions · {settings.config_path.name}"
    replay = None
    if replay_files is not None and since is not None:
        from mixer.commands.replay import replay_log

        result = replay_log(settings, replay_files, since, until or now, campaign=args.campaign)
        replay = {**result.to_dict(), "rule_files": [str(p) for p in replay_files]}
    write_report(
        args.output, render_report(data, title=title, generated_at=now, zone=zone, replay=replay)
    )
    skipped = f" ({records.skipped} unreadable lines skipped)" if records.skipped else ""
    print(f"{args.output}: {data.summary_line()}{skipped}")
    return 0
