"""One module per sub-command.

Each module defines ``register(subparsers)``, which adds its parser and sets
``handler=<callable(args) -> int>`` through ``set_defaults``. The CLI imports only the
module of the command given (``--help`` imports none): ``SUMMARIES`` holds each
command's one-line help for the list, and a test keeps it equal to what the modules
register. Modules import their heavy dependencies inside the handler, so one command's
import problem cannot break the others.
"""

SUMMARIES: dict[str, str] = {
    "check": "validate config and rules offline",
    "demo": "watch the daemon tune an emulated QM in accelerated time",
    "emulator": "serve the QM AMO emulator (a stand-in QueueMetrics server)",
    "explain": "trace every rule for one list",
    "log": "query the decision log",
    "once": "run one cycle and print the plan",
    "replay": "what new rules would have decided on the recorded cycles",
    "report": "write the decision log as a self-contained HTML report",
    "run": "run the daemon: a cycle every interval until stopped",
    "scenario": "scenarios from your own history (scenario fit)",
    "schema": "print JSON Schemas for editor completion",
    "simulate": "backtest rules on the emulator: static weights vs rules vs an oracle",
    "status": "last cycle, outcome, rule set, holds and timers",
    "test": "run rule unit tests",
}
