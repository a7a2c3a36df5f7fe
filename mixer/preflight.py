"""The one validation ``check``, ``once``, ``run``, ``explain`` and every reload run before
anything reaches QM: what ``check`` knows, the others enforce.

Fail closed. A rules glob that matches no file, a configuration left with no enabled rule,
a rule file whose ``campaigns:`` match none of the configured campaigns, a literal weight
the guardrails would clamp: each would make the mixer write lists back to their baseline
(or somewhere the operator did not mean) without a word. They are errors, listed together
with ``file:line``, what and what to do; the commands exit 2 before any QM call and a
reload keeps the running configuration.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from dataclasses import dataclass

from mixer.config import Settings
from mixer.engine.expressions import Expression
from mixer.engine.rules import RuleSet
from mixer.errors import ConfigError
from mixer.opsfiles.problems import Problem, did_you_mean
from mixer.rule_loading import load_rules
from mixer.rulefile import RuleLoadError

__all__ = ["Checked", "check_setup"]


@dataclass(frozen=True)
class Checked:
    """Settings and rules that passed every check, and the notes that do not stop them."""

    settings: Settings
    rules: RuleSet
    warnings: tuple[str, ...]


def check_setup(settings: Settings) -> Checked:
    """Load the rules the settings name and check them against the settings.

    Raises ``ConfigError`` (a rules glob matching nothing) or ``RuleLoadError`` (a rule
    file's own problems, or one that does not fit the settings), both exit code 2.
    """
    unmatched = [pattern for pattern in settings.rules if not _matches_a_file(pattern)]
    if unmatched:
        raise ConfigError(
            f"invalid config {settings.config_path}: rules matches no file",
            [
                f"At 'rules': {_as_written(pattern, settings)!r} matches no file: check the "
                "path (relative to the config file's folder); with no rules the mixer would "
                "write every list back to its baseline"
                for pattern in unmatched
            ],
        )
    rules = load_rules(settings.rule_files())
    problems = [*_campaign_globs(rules, settings), *_literal_weights(rules, settings)]
    enabled = sum(1 for f in rules.files for r in f.rules if r.enabled)
    if not enabled and not problems:
        files = ", ".join(f.path for f in rules.files)
        problems.append(
            Problem(
                str(settings.config_path),
                1,
                None,
                f"no enabled rule in {files}: the mixer would write every list back to its "
                "baseline; add a rule or set enabled: true",
            )
        )
    if problems:
        raise RuleLoadError(problems)
    return Checked(settings, rules, (*settings.warnings, *rules.warnings))


def _as_written(pattern: str, settings: Settings) -> str:
    """A glob as the config file has it: relative to its folder when it lies below it."""
    folder = str(settings.config_path.parent)
    if pattern.startswith(folder + os.sep):
        return pattern[len(folder) + 1 :]
    return pattern


def _matches_a_file(pattern: str) -> bool:
    return any(os.path.isfile(name) for name in glob.iglob(pattern, recursive=True))


def _campaign_globs(rules: RuleSet, settings: Settings) -> list[Problem]:
    """A file whose ``campaigns:`` match no configured campaign applies nowhere."""
    found = []
    for rule_file in rules.files:
        globs = rule_file.campaigns
        if not globs or any(fnmatch.fnmatchcase(c, g) for g in globs for c in settings.campaigns):
            continue
        hints = [did_you_mean(g, settings.campaigns) for g in globs]
        hint = next((h for h in hints if h), "")
        found.append(
            Problem(
                rule_file.path,
                rule_file.campaigns_line,
                None,
                f"campaigns {list(globs)} match none of the configured campaigns "
                f"({', '.join(settings.campaigns)})"
                + (f": {hint}" if hint else "")
                + "; fix the glob, or add the campaign to the config's campaigns",
            )
        )
    return found


def _literal_weights(rules: RuleSet, settings: Settings) -> list[Problem]:
    """A fixed ``set.weight`` outside the guardrails' bounds would always be clamped."""
    low, high = settings.guardrails.min_weight, settings.guardrails.max_weight
    found = []
    for rule_file in rules.files:
        for rule in rule_file.rules:
            weight = rule.weight
            if weight is None or isinstance(weight, Expression) or low <= weight <= high:
                continue
            found.append(
                Problem(
                    rule.file,
                    rule.line,
                    rule.name,
                    f"set.weight {weight:g} is outside [{low}, {high}] "
                    "(guardrails.min_weight, max_weight): write a weight within them",
                )
            )
    return found
