"""The backtest as a table people read: one row per strategy, one column per metric."""

from __future__ import annotations

from mixer.simulate.backtest import BacktestResult, StrategyResult

_HEADER = (
    "STRATEGY",
    "ON TIME",
    "COMPLETED",
    "IDLE AGENT-MIN",
    "STARVED",
    "MAX GAP H",
    "LEAD WAIT MIN (P90)",
    "WRITES/DAY",
    "FLAPS",
)


def render_comparison(result: BacktestResult) -> str:
    """The comparison table, its span, and how the rules did against the others."""
    rows = [_row(r) for r in result.strategies.values()]
    widths = [max(len(row[i]) for row in [_HEADER, *rows]) for i in range(len(_HEADER))]
    lines = [f"backtest {result.scenario}: {result.start} to {result.end}"]
    for row in [_HEADER, *rows]:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    starved = {name: r.starved_lists for name, r in result.strategies.items() if r.starved_lists}
    for name, pairs in starved.items():
        lines.append(f"{name}: starved " + ", ".join("/".join(pair) for pair in pairs))
    verdict = _verdict(result)
    if verdict:
        lines.append(verdict)
    return "\n".join(lines)


def _row(r: StrategyResult) -> tuple[str, ...]:
    on_time = "-" if r.on_time_ratio is None else f"{r.on_time_ratio:.1%}"
    return (
        r.strategy,
        on_time,
        str(r.completed),
        f"{r.idle_agent_minutes:.0f}",
        str(len(r.starved_lists)),
        f"{r.max_list_gap_hours:.1f}",
        _lead_wait(r),
        f"{r.writes_per_day:.0f}",
        str(r.flaps),
    )


def _lead_wait(r: StrategyResult) -> str:
    waits = r.wait_to_first_call_minutes
    if waits is None:
        return "-"
    return f"{waits['mean']:.0f} ({waits['p90']:.0f})"


def _verdict(result: BacktestResult) -> str:
    rules = result.strategies.get("rules")
    if rules is None or rules.on_time_ratio is None:
        return ""
    parts: list[str] = []
    oracle = result.strategies.get("oracle")
    if oracle is not None and oracle.on_time_ratio:
        parts.append(f"{rules.on_time_ratio / oracle.on_time_ratio:.0%} of the oracle")
    static = result.strategies.get("static")
    if static is not None and static.on_time_ratio:
        parts.append(f"{rules.on_time_ratio / static.on_time_ratio:.2f}x static")
    return "rules on time: " + ", ".join(parts) if parts else ""
