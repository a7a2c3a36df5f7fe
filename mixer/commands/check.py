"""``amo-mixer check``: validate the configuration and every rule file, offline."""

from __future__ import annotations

import argparse
import fnmatch
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
    from mixer.rule_loading import load_rules
    from mixer.rulefile import RuleLoadError

    settings = settings_from(args)
    print(f"config ok: {settings.config_path}")
    for warning in settings.warnings:
        print(f"warning: {warning}")
    if settings.qm.password is None:
        print(
            "warning: no QM password configured (AMO_MIXER_QM_PASSWORD, qm.password_file or "
            "the systemd credential qm_password): run and once will refuse to start"
        )
    files = settings.rule_files()
    if not files:
        patterns = ", ".join(settings.rules) or "(none)"
        print(f"error: no rule file matches rules: {patterns}")
        return 1
    try:
        ruleset = load_rules(files)
    except RuleLoadError as exc:
        for problem in exc.problems:
            print(problem)
        print(f"{len(exc.problems)} problem(s) in the rule files")
        return 1
    status = 0
    for name in settings.campaigns:
        count = len(ruleset.for_campaign(name).rules)
        print(f"campaign {name!r}: {count} rule(s)")
    for rule_file in ruleset.files:
        globs = rule_file.campaigns
        if globs and not any(fnmatch.fnmatchcase(c, g) for g in globs for c in settings.campaigns):
            print(
                f"warning: {rule_file.path}: campaigns {list(globs)} match no configured campaign"
            )
    for warning in _unmatched_globs(settings, ruleset):
        print(printable(warning))
    print(f"rules ok: {len(files)} file(s)")
    return status


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
