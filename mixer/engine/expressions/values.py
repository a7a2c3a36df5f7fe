"""The value types of the expression language and the two errors it raises."""

from __future__ import annotations

import enum

from mixer.errors import MixerError


class ValueType(enum.StrEnum):
    """The type of a fact, or of an expression's result, as the type checker sees it."""

    NUMBER = "number"
    BOOL = "bool"
    STRING = "string"
    STRINGS = "list of strings"
    DATETIME = "datetime"
    DATE = "date"


class ListOfNumbers(enum.StrEnum):
    """A literal list of numbers: a type no fact has, only the right side of ``in``."""

    NUMBERS = "list of numbers"


Kind = ValueType | ListOfNumbers

_DESCRIPTIONS: dict[Kind, str] = {
    ValueType.NUMBER: "a number",
    ValueType.BOOL: "true/false",
    ValueType.STRING: "a string",
    ValueType.STRINGS: "a list of strings",
    ValueType.DATETIME: "a date and time",
    ValueType.DATE: "a date",
    ListOfNumbers.NUMBERS: "a list of numbers",
}


def describe(kind: Kind) -> str:
    """``ValueType.NUMBER`` -> ``"a number"``: the words error messages use."""
    return _DESCRIPTIONS[kind]


class ExpressionError(MixerError):
    """An expression that cannot be compiled: syntax, unknown name, type, or a limit.

    ``offset`` (0-based, in characters) and ``length`` (at least 1) locate the offending
    part of the source, so ``check`` can draw a caret under it.
    """

    def __init__(self, message: str, offset: int = 0, length: int = 1) -> None:
        super().__init__(message)
        self.offset = max(0, offset)
        self.length = max(1, length)

    def caret(self, source: str, indent: str = "    ") -> str:
        """The source line holding the error, then ``^^^`` under the offending part."""
        offset = min(self.offset, len(source))
        start = source.rfind("\n", 0, offset) + 1
        end = source.find("\n", offset)
        if end == -1:
            end = len(source)
        line = source[start:end]
        column = offset - start
        width = max(1, min(self.length, len(line) - column))
        # Keep tabs so the caret lines up however the terminal renders them.
        pad = "".join("\t" if char == "\t" else " " for char in line[:column])
        return f"{indent}{line}\n{indent}{pad}{'^' * width}"


class ExpressionEvaluationError(MixerError):
    """A compiled expression that failed on one list's facts (division by zero, overflow).

    The engine treats the rule as not firing for that list and records the message in the
    trace; the next cycle tries again.
    """
