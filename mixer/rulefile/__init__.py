"""The rule file format, apart from the rule engine (as Prometheus keeps ``rulefmt``).

``schema`` holds the pydantic models (and so the JSON Schema); ``parse`` turns a file's
text into a ``ParsedRules``: marked data, the valid rules and list entries, and every
problem found. Pure: the files are read at the edge (``mixer.rule_loading``) and
compiled by the engine (``mixer.engine.rules.compile_rules``).
"""

from mixer.rulefile.parse import ParsedRules, RuleLoadError, parse_rules
from mixer.rulefile.schema import (
    ListEntryModel,
    MatchSpec,
    RuleModel,
    RulesFileModel,
    SetModel,
    rules_json_schema,
)

__all__ = [
    "ListEntryModel",
    "MatchSpec",
    "ParsedRules",
    "RuleLoadError",
    "RuleModel",
    "RulesFileModel",
    "SetModel",
    "parse_rules",
    "rules_json_schema",
]
