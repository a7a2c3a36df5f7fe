"""The ``amo-mixer`` entry point: parse arguments, dispatch, map failures to exit codes.

Every failure a person can act on is a ``MixerError`` and becomes one line on stderr;
anything else is a bug, also one line unless ``--debug`` asks for the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from mixer import __version__
from mixer.commands import SUMMARIES
from mixer.errors import MixerError
from mixer.printable import printable

Handler = Callable[[argparse.Namespace], int]


_EVERY = object()


def build_parser(only: str | object | None = _EVERY) -> argparse.ArgumentParser:
    """The parser with every command's module registered, or with ``only`` that one
    (others are listed by their summary; ``None``: none, enough for ``--help``)."""
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
    for name, summary in SUMMARIES.items():
        if only is _EVERY or name == only:
            module = importlib.import_module(f"mixer.commands.{name}")
            module.register(subparsers)
        else:
            subparsers.add_parser(name, help=summary, add_help=False)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv``: the first word that is no option (the global
    options take no value)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in SUMMARIES else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # the console command: the process is ours to tune
        from mixer.collector import pace_for_commands

        pace_for_commands()
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(only=_command_in(words))
    args = parser.parse_args(words)
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
