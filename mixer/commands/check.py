"""``amo-mixer check``: validate the configuration and every rule file, offline."""

from __future__ import annotations

import argparse
from typing import Any

from mixer.commands._common import add_config_argument, settings_from
from mixer.printable import printable


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="validate config and rules offline",
        description="Validate the configuration and the rule files without contacting QM. "
        "Exit 0 when all is well, 1 when a rule file has problems, 2 for invalid config.",
    )
    add_config_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mixer.errors import ConfigError
    from mixer.preflight import check_setup
    from mixer.rulefile import RuleLoadError

    settings = settings_from(args)
    print(f"config ok: {settings.config_path}")
    if settings.qm.password is None:
        print(
            "warning: no QM password configured (AMO_MIXER_QM_PASSWORD, qm.password_file or "
            "the systemd credential qm_password): run and once will refuse to start"
        )
    # The same validation once, run, explain and every reload run: what fails here
    # stops them before any QM call.
    try:
        checked = check_setup(settings)
    except ConfigError as exc:
        for line in exc.problems:
            print(f"error: {line}")
        return 1
    except RuleLoadError as exc:
        for problem in exc.problems:
            print(problem)
        print(f"{len(exc.problems)} problem(s) in the rule files")
        return 1
    for warning in checked.warnings:
        print(f"warning: {warning}")
    for name in settings.campaigns:
        count = len(checked.rules.for_campaign(name).rules)
        print(f"campaign {name!r}: {count} rule(s)")
    for warning in _unmatched_globs(settings, checked.rules):
        print(printable(warning))
    print(f"rules ok: {len(checked.rules.files)} file(s)")
    return 0


def _unmatched_globs(settings: Any, ruleset: Any) -> list[str]:
    """Globs that match no list of the last read the state database recorded (offline:
    nothing to say before the first cycle)."""
    from datetime import UTC, datetime

    from mixer.engine.names import glob_warnings
    from mixer.store import StateStore
    from mixer.wiring import state_path

    path = state_path(settings)
    if not path.is_file():
        return []
    warnings: list[str] = []
    try:
        with StateStore(path) as store:
            for campaign in settings.campaigns:
                since = datetime.now(UTC) - settings.history.window
                history = store.history(campaign, since=since)
                if not history:
                    continue
                latest = {name: max(x.ts for x in s) for name, s in history.items() if s}
                last = max(latest.values())
                names = [name for name, ts in latest.items() if ts == last]
                rules = ruleset.for_campaign(campaign).rules
                pairs = ((r.name, r.names) for r in rules)
                seen = f"the last read ({last:%Y-%m-%d %H:%M} UTC)"
                warnings += glob_warnings(campaign, pairs, names, seen)
    except Exception:  # a busy or damaged database: check says nothing rather than fail
        return []
    return warnings
