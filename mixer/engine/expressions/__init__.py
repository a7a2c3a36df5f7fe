"""The safe expression language of rule ``when`` conditions and ``set.weight``.

Python-like syntax, checked against an allow-list and the fact schema (with static
types) before it is compiled; see ``docs/expressions.md`` for the language reference and
why it is built this way.

    >>> from mixer.engine.expressions import ValueType, compile_expression
    >>> when = compile_expression("unpulled > 0 and hour < 17", {"unpulled":
    ...     ValueType.NUMBER, "hour": ValueType.NUMBER}, expect=ValueType.BOOL)
    >>> when({"unpulled": 12, "hour": 9})
    True
"""

from mixer.engine.expressions.compiler import (
    MAX_DEPTH,
    MAX_SOURCE_CHARS,
    MAX_STRING_CHARS,
    Expression,
    compile_expression,
)
from mixer.engine.expressions.functions import FUNCTION_NAMES, FUNCTIONS, MAX_MAGNITUDE
from mixer.engine.expressions.values import (
    ExpressionError,
    ExpressionEvaluationError,
    ValueType,
)

__all__ = [
    "FUNCTIONS",
    "FUNCTION_NAMES",
    "MAX_DEPTH",
    "MAX_MAGNITUDE",
    "MAX_SOURCE_CHARS",
    "MAX_STRING_CHARS",
    "Expression",
    "ExpressionError",
    "ExpressionEvaluationError",
    "ValueType",
    "compile_expression",
]
