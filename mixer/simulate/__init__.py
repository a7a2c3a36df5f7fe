"""Backtests: one scenario run three ways on a simulated clock, so rules can be judged.

``static`` leaves the weights as the scenario sets them, ``rules`` runs the real mixer
cycle (apply mode, one cycle per simulated minute) against the emulator, and ``oracle``
lets the emulated dialer pick the earliest deadline it can still meet (``edf``, the older
reference that keeps serving passed deadlines, on request). Everything runs in-process through
``httpx.WSGITransport``: no port, no sleeping.

The package itself imports nothing: ``replay`` and ``scenario fit`` use its progress bar
and must not pay for the emulator and the backtest; import ``mixer.simulate.backtest``
and ``mixer.simulate.comparison`` for those.
"""
