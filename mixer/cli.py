"""The ``amo-mixer`` entry point: parse arguments, dispatch, map failures to exit codes.

Every failure a person can act on is a ``MixerError`` and becomes one line on stderr;
anything else is a bug, also one line unless ``--debug`` asks for the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Callable, Sequence

from mixer import __version__, commands
from mixer.errors import MixerError
from mixer.printable import printable

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amo-mixer",
        description="Keeps QueueMetrics AMO campaigns on track: rules set list weights "
        "and pauses, with dry-run, rule tests, backtests and a decision trace.",
    )
    parser.add_argument("--version", action="version", version=f"amo-mixer {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks and debug logging on errors"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = [m for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
    for info in sorted(modules, key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except MixerError as exc:
        if args.debug:
            raise
        print(printable(f"amo-mixer: {exc.message}"), file=sys.stderr)
        for problem in getattr(exc, "problems", None) or ():
            lines = str(problem).split("\n")  # a rule problem's caret excerpt is its own line
            print(
                "\n".join(
                    printable(f"  {line}" if i == 0 else line) for i, line in enumerate(lines)
                ),
                file=sys.stderr,
            )
        return exc.exit_code
    except KeyboardInterrupt:
        print("amo-mixer: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"amo-mixer: internal error: {type(exc).__name__}: {printable(str(exc))} "
            "(run with --debug for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
