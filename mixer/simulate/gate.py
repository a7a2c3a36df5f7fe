"""The decision-quality gate (issue 15): what the shipped rules must achieve on a scenario
with deadlines, as a list of the criteria a backtest misses (empty: it passes).

One definition for the test that enforces it (``tests/test_simulate_quality.py``) and the
benchmark that records the full-length figures (``bench/decision_quality.py``).
"""

from __future__ import annotations

from mixer.simulate.backtest import BacktestResult

ORACLE_SHARE = 0.95
"""Rules reach at least this share of the oracle's on-time ratio."""
STATIC_FACTOR = 1.5
"""Where static weights reach at most ``STATIC_CEILING`` of the oracle, rules beat them by
this factor (elsewhere rules merely match static)."""
STATIC_CEILING = 0.6
MAX_WRITES_PER_CAMPAIGN_DAY = 80.0
LEAD_WAIT_SLACK = 1.5
"""Speed to lead: the rules' mean wait to a first call is at most this times static's."""


def gate_failures(result: BacktestResult) -> list[str]:
    """Every gate criterion the rules miss on ``result``, one sentence each."""
    rules = result.strategies["rules"]
    oracle = result.strategies["oracle"]
    static = result.strategies["static"]
    problems: list[str] = []
    if rules.on_time_ratio is None or oracle.on_time_ratio is None or static.on_time_ratio is None:
        return ["no list has a deadline: the on-time gate does not apply"]
    if rules.on_time_ratio < ORACLE_SHARE * oracle.on_time_ratio:
        problems.append(
            f"on time {rules.on_time_ratio:.4f} < {ORACLE_SHARE} x oracle "
            f"{oracle.on_time_ratio:.4f} ({rules.on_time_ratio / oracle.on_time_ratio:.3f})"
        )
    if static.on_time_ratio <= STATIC_CEILING * oracle.on_time_ratio:
        if rules.on_time_ratio < STATIC_FACTOR * static.on_time_ratio:
            problems.append(
                f"on time {rules.on_time_ratio:.4f} < {STATIC_FACTOR} x static "
                f"{static.on_time_ratio:.4f}"
            )
    elif rules.on_time_ratio < static.on_time_ratio:
        problems.append(f"on time {rules.on_time_ratio:.4f} < static {static.on_time_ratio:.4f}")
    if rules.starved_lists:
        problems.append("starved: " + ", ".join("/".join(pair) for pair in rules.starved_lists))
    if rules.writes_per_campaign_day > MAX_WRITES_PER_CAMPAIGN_DAY:
        problems.append(
            f"{rules.writes_per_campaign_day:.1f} writes per campaign-day > "
            f"{MAX_WRITES_PER_CAMPAIGN_DAY:.0f}"
        )
    if rules.flaps:
        problems.append(f"{rules.flaps} flaps")
    ours, theirs = rules.wait_to_first_call_minutes, static.wait_to_first_call_minutes
    if ours is not None and theirs is not None and ours["mean"] > LEAD_WAIT_SLACK * theirs["mean"]:
        problems.append(
            f"speed to lead: mean wait {ours['mean']:.1f} min > {LEAD_WAIT_SLACK} x static "
            f"{theirs['mean']:.1f} min"
        )
    return problems
