"""``amo-mixer check``: validate the configuration and every rule file, offline."""

from __future__ import annotations

import argparse
import fnmatch
from typing import Any

from mixer.commands._common import add_config_argument, settings_from


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
    print(f"rules ok: {len(files)} file(s)")
    return status
