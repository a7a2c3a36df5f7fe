"""Property: for random rule sets where random rules raise on random lists, no list whose
rules raised is ever in a write."""

from __future__ import annotations

import fnmatch
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from mixer.plan import plan_campaign
from tests.test_reliability_invariants import (
    ENGINE,
    PROFILE,
    START,
    compile_rules,
    limit_sets,
    list_snapshots,
    memories,
    rule_files,
)

GLOBS = ("R*", "*Leads", "Promo", "C*", "*e*")


@st.composite
def raising_cases(draw: st.DrawFn) -> tuple[Any, ...]:
    """A random case whose rule file starts with rules that raise for the lists matching
    a glob (in the condition or in set.weight), so nothing before them can stop."""
    snapshot = draw(list_snapshots())
    document = yaml.safe_load(draw(rule_files()))
    raising = []
    for index, glob in enumerate(draw(st.lists(st.sampled_from(GLOBS), min_size=1, max_size=2))):
        where = draw(st.sampled_from(["when", "weight"]))
        rule: dict[str, Any] = {"name": f"raises{index}"}
        if where == "when":
            rule["when"] = f"matches(list, '{glob}') and 1 / (weight - weight) > 0"
            rule["set"] = {"weight": 7}
        else:
            rule["when"] = f"matches(list, '{glob}')"
            rule["set"] = {"weight": "base_weight / (added - added)"}
        raising.append((glob, rule))
    document["rules"] = [rule for _, rule in raising] + document["rules"]
    rules = compile_rules(yaml.safe_dump(document, sort_keys=False))
    memory = draw(memories(snapshot, START))
    return snapshot, rules, memory, draw(limit_sets()), [glob for glob, _ in raising]


@PROFILE
@given(raising_cases())
def test_no_list_whose_rules_raised_is_written(case: tuple[Any, ...]) -> None:
    """Every list a raising rule matches is left out of the writes and reported."""
    snapshot, rules, memory, limits, globs = case
    result = plan_campaign(rules, snapshot, memory, {}, START, ENGINE, limits)
    raised = {i.name for i in snapshot.lists if any(fnmatch.fnmatchcase(i.name, g) for g in globs)}
    assert raised.isdisjoint(u.name for u in result.updates)
    assert raised.isdisjoint(d.list for d in result.decisions)
    assert {e.list for e in result.rule_errors} == raised
    for name in raised:
        item = snapshot.get(name)
        assert item is not None
        assert (result.outcomes[name].weight, result.outcomes[name].paused) == (
            item.weight,
            item.paused,
        )
