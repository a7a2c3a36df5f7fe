"""Pool facts: the campaigns that share agents, seen as one for pacing.

QM's dialer draws an agent's next number by weight among every reservable list of every
campaign that agent serves. When agents serve several campaigns (config ``agent_pools:``),
a weight only means something next to the weights of the other campaigns' lists: two
campaigns each giving their earliest deadline 100 split the agents evenly whatever the
deadlines. The ``pool_*`` facts are the campaign aggregates computed over every list of
every campaign in the pool, so rules can order deadlines and size a floor across it.

A campaign in no pool is its own pool, and then each ``pool_*`` fact equals its
``campaign_*`` counterpart (``pool_deadline_rank`` = ``deadline_rank``,
``pool_deadline_share`` = ``deadline_share``): rules written on the pool facts behave on a
lone campaign exactly as on the campaign facts.

Pure: computed from the per-list facts ``compute_facts`` gives (without pool facts), one
mapping per campaign of the pool; the cycle gathers them once the pool's reads are in.
"""

from __future__ import annotations

import math
import operator
from bisect import bisect_left
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import cast

from mixer.engine.expressions import ValueType

N = ValueType.NUMBER

POOL_FACT_TYPES: Mapping[str, ValueType] = {
    "pool_campaigns": N,
    "pool_deadline_lists": N,
    "pool_overdue_lists": N,
    "pool_deadline_rank": N,
    "pool_deadline_share": N,
    "pool_reservable_deadline_rank": N,
    "pool_unpulled": N,
    "pool_pull_rate_per_hour": N,
    "pool_required_rate_per_hour": N,
    # The other unpaused lists of the pool (this list excluded), as the campaign_* ones.
    "pool_max_base_weight": N,
    "pool_max_weight": N,
    "pool_min_weight": N,
    "pool_total_weight": N,
}

# The pool facts that always have a value (docs/rules.md: null "never").
POOL_NEVER_NULL: frozenset[str] = frozenset(
    {
        "pool_campaigns",
        "pool_deadline_lists",
        "pool_overdue_lists",
        "pool_unpulled",
        "pool_total_weight",
    }
)

ListFacts = Mapping[str, Mapping[str, object]]  # list name -> fact name -> value
PoolFacts = dict[str, dict[str, dict[str, object]]]  # campaign -> list -> pool facts
_Key = tuple[str, str]  # (campaign, list)


def pool_facts(campaigns: Mapping[str, ListFacts]) -> PoolFacts:
    """The ``pool_*`` facts of every list of every campaign in one pool.

    ``campaigns``: campaign name -> that campaign's list facts, in config order (sums add
    in campaign then list order). The definitions are those of the ``campaign_*`` facts
    over the pooled lists: a deadline competes when the list has numbers without a final
    status and is not paused by a human; ranks are dense over the deadlines of the lists
    not overdue; each list's need is its required rate capped at the pool's pull rate.
    """
    competing = overdue = 0
    unpulled: float = 0
    rate: float | None = None
    required: float | None = None
    deadlines: set[float] = set()
    reservable: set[float] = set()  # the deadlines of the ranked lists QM can draw from now
    keys: dict[_Key, float] = {}
    weights: list[tuple[_Key, float, float]] = []
    for campaign, lists in campaigns.items():
        for name, facts in lists.items():
            key = (campaign, name)
            completed_state = facts["completed_state"] is True
            unpulled += float(_number(facts["unpulled"]))
            own_rate = facts["pull_rate_per_hour"]
            if _is_number(own_rate):
                rate = (0 if rate is None else rate) + _number(own_rate)
            own_required = facts["required_rate_per_hour"]
            if own_required is not None and not completed_state:
                required = (0 if required is None else required) + _number(own_required)
            if _competes(facts):
                if facts["overdue"] is True:
                    overdue += 1
                else:
                    competing += 1
                    deadline = facts["deadline"]
                    assert isinstance(deadline, datetime)
                    keys[key] = deadline.timestamp()
                    deadlines.add(keys[key])
                    if facts["can_reserve"] is True and facts["paused"] is not True:
                        reservable.add(keys[key])
            if facts["paused"] is not True:
                weights.append((key, _number(facts["weight"]), _number(facts["base_weight"])))
    ranked = sorted(deadlines)
    ranked_reservable = sorted(reservable)
    cap = rate if rate is not None and rate > 0 else math.inf
    needs: dict[_Key, float] = {}
    for campaign, lists in campaigns.items():
        for name, facts in lists.items():
            own_required = facts["required_rate_per_hour"]
            if own_required is not None and facts["completed_state"] is not True:
                needs[(campaign, name)] = min(_number(own_required), cap)
    total_need = sum(needs.values())
    others = _others(weights)
    common = {
        "pool_campaigns": len(campaigns),
        "pool_deadline_lists": competing,
        "pool_overdue_lists": overdue,
        "pool_unpulled": unpulled,
        "pool_pull_rate_per_hour": rate,
        "pool_required_rate_per_hour": required,
    }
    result: PoolFacts = {}
    for campaign, lists in campaigns.items():
        out = result[campaign] = {}
        for name in lists:
            key = (campaign, name)
            deadline_key = keys.get(key)
            need = needs.get(key)
            out[name] = {
                **common,
                "pool_deadline_rank": None
                if deadline_key is None
                else 1 + bisect_left(ranked, deadline_key),
                "pool_deadline_share": need / total_need
                if need is not None and total_need > 0
                else None,
                "pool_reservable_deadline_rank": None
                if deadline_key is None
                else 1 + bisect_left(ranked_reservable, deadline_key),
                **others(key),
            }
    return result


# Each pool fact with a campaign twin: for a campaign that is its own pool they are equal.
TWINS: Mapping[str, str] = {
    "pool_deadline_lists": "campaign_deadline_lists",
    "pool_overdue_lists": "campaign_overdue_lists",
    "pool_deadline_rank": "deadline_rank",
    "pool_deadline_share": "deadline_share",
    "pool_unpulled": "campaign_unpulled",
    "pool_pull_rate_per_hour": "campaign_pull_rate_per_hour",
    "pool_required_rate_per_hour": "campaign_required_rate_per_hour",
    "pool_max_base_weight": "campaign_max_base_weight",
    "pool_max_weight": "campaign_max_weight",
    "pool_min_weight": "campaign_min_weight",
    "pool_total_weight": "campaign_total_weight",
}
_POOL_NAMES = tuple(TWINS)
# The order the pool facts take in a list's facts (a lone campaign's, as added below).
POOL_FACT_ORDER = (*_POOL_NAMES, "pool_campaigns", "pool_reservable_deadline_rank")
_TWIN_VALUES = operator.itemgetter(*TWINS.values())


def lone_campaign_pool(campaign: str, lists: ListFacts) -> dict[str, dict[str, object]]:
    """The pool facts of a campaign that shares agents with no other (its own pool): what
    ``pool_facts({campaign: lists})`` gives (a test holds the two equal)."""
    copies = {name: dict(facts) for name, facts in lists.items()}
    add_lone_pool_facts(copies)
    return {name: {key: facts[key] for key in POOL_FACT_TYPES} for name, facts in copies.items()}


def add_lone_pool_facts(lists: Mapping[str, dict[str, object]]) -> None:
    """Add to each list's facts the pool facts of a campaign that is its own pool, taken
    from its campaign facts (one pass: every campaign in no pool pays it each cycle)."""
    # Dense ranks order the deadlines as the deadlines do: count the reservable ranks ahead.
    reservable = sorted(
        {
            cast(int, facts["deadline_rank"])
            for facts in lists.values()
            if facts["deadline_rank"] is not None
            and facts["can_reserve"] is True
            and facts["paused"] is not True
        }
    )
    names, values = _POOL_NAMES, _TWIN_VALUES
    for facts in lists.values():
        facts.update(zip(names, values(facts), strict=True))
        facts["pool_campaigns"] = 1
        rank = facts["deadline_rank"]
        facts["pool_reservable_deadline_rank"] = (
            None if rank is None else 1 + bisect_left(reservable, cast(int, rank))
        )


def _others(weights: list[tuple[_Key, float, float]]) -> Callable[[_Key], dict[str, object]]:
    """Aggregates over the unpaused lists other than one, each in O(1): the two largest
    and smallest weights, the two largest base weights and the total."""
    total = 0.0
    for _key, weight, _base in weights:
        total += weight
    own = {key: weight for key, weight, _base in weights}
    high = sorted(weights, key=lambda row: -row[1])[:2]
    low = sorted(weights, key=lambda row: row[1])[:2]
    base = sorted(weights, key=lambda row: -row[2])[:2]

    def pick(pair: list[tuple[_Key, float, float]], key: _Key, column: int) -> float:
        row = pair[0] if pair[0][0] != key else pair[1]
        return row[1] if column == 1 else row[2]

    def of(key: _Key) -> dict[str, object]:
        mine = own.get(key)
        if len(own) - (mine is not None) <= 0:
            return dict(_NO_OTHERS)
        return {
            "pool_max_base_weight": pick(base, key, 2),
            "pool_max_weight": pick(high, key, 1),
            "pool_min_weight": pick(low, key, 1),
            "pool_total_weight": total - (mine or 0.0),
        }

    return of


_NO_OTHERS: Mapping[str, object] = {
    "pool_max_base_weight": None,
    "pool_max_weight": None,
    "pool_min_weight": None,
    "pool_total_weight": 0.0,
}


def _competes(facts: Mapping[str, object]) -> bool:
    """As ``deadline_rank`` counts lists: a deadline, numbers without a final status, and
    not held back by a human (a list the mixer paused may be resumed)."""
    return (
        facts["deadline"] is not None
        and facts["completed_state"] is not True
        and _number(facts["remaining"]) > 0
        and (facts["paused"] is not True or facts["paused_by_mixer"] is True)
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: object) -> float:
    if not _is_number(value):
        return 0.0
    number = float(value)  # type: ignore[arg-type]
    return 0.0 if math.isnan(number) else number
