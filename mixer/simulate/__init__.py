"""Backtests: one scenario run three ways on a simulated clock, so rules can be judged.

``static`` leaves the weights as the scenario sets them, ``rules`` runs the real mixer
cycle (apply mode, one cycle per simulated minute) against the emulator, and ``oracle``
lets the emulated dialer pick the earliest deadline it can still meet (``edf``, the older
reference that keeps serving passed deadlines, on request). Everything runs in-process through
``httpx.WSGITransport``: no port, no sleeping.
"""

from mixer.simulate.backtest import (
    ALL_STRATEGIES,
    STRATEGIES,
    BacktestResult,
    StrategyResult,
    backtest,
    run_strategy,
)
from mixer.simulate.comparison import render_comparison

__all__ = [
    "ALL_STRATEGIES",
    "STRATEGIES",
    "BacktestResult",
    "StrategyResult",
    "backtest",
    "render_comparison",
    "run_strategy",
]
