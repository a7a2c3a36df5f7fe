"""YAML without aliases, for every operator file (config, rules, rule tests, scenarios):
the marked loader of ``mixer.opsfiles.marked_yaml`` mixes this in.

An alias (``*name``) repeats an anchored node; nine nested levels of ten aliases each
expand a 330-byte file into a billion nodes (the "billion laughs"). Operator files have no
need for them, so the composer refuses the first alias with the usual marked YAML error
(line and column), before anything is expanded. Anchors alone are harmless and allowed.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError

ALIAS_PROBLEM = "YAML aliases (*{anchor}) are not allowed here: write the value out in full"


class NoAliasesMixin:
    """Put before a PyYAML loader class in the bases: aliases become a ``ComposerError``."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        loader: Any = self
        if loader.check_event(yaml.AliasEvent):
            event = loader.peek_event()
            raise ComposerError(
                None, None, ALIAS_PROBLEM.format(anchor=event.anchor), event.start_mark
            )
        return super().compose_node(parent, index)  # type: ignore[misc]
