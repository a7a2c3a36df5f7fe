"""Allow-list, type-check, then compile: from expression source to a callable.

The source is parsed by the standard ``ast`` module; every node is checked against an
allow-list (anything not listed is rejected, so a new Python feature is rejected too),
every name against the fact schema, every operator against the types of its operands.
Only then is the tree rewritten (facts read by subscript from the mapping passed in,
arithmetic wrapped in a range check) and handed to ``compile``: what runs is Python
bytecode with no builtins, whose only callables are the functions in ``FUNCTIONS``.
"""

from __future__ import annotations

import ast
import datetime as dt
import io
import re
import tokenize
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from mixer.engine.expressions.functions import (
    FUNCTION_NAMES,
    FUNCTIONS,
    MAX_MAGNITUDE,
    SIGNATURES,
    EvaluationProblem,
    bounded,
    glob_matcher,
)
from mixer.engine.expressions.values import (
    ExpressionError,
    ExpressionEvaluationError,
    Kind,
    ListOfNumbers,
    ValueType,
    describe,
)
from mixer.opsfiles.problems import did_you_mean

MAX_SOURCE_CHARS: Final = 2_000
MAX_STRING_CHARS: Final = 200
MAX_DEPTH: Final = 50

_FACTS: Final = "_facts_"  # the compiled lambda's parameter; facts are read from it
_BOUNDED: Final = "_bounded_"
_NULL_MESSAGE: Final = (
    "null (None) cannot be written in an expression: a rule whose condition reads a null "
    "fact simply does not fire, so there is nothing to compare with None"
)
_DATE_LITERAL = re.compile(r"\d{4}-\d{2}-\d{2}")
_STRING_LITERAL = re.compile(r"""'(?:\\.|[^'\\])*'?|"(?:\\.|[^"\\])*"?""")
_DURATION_FUNCTIONS: Final = {"d": "days", "h": "hours", "m": "minutes"}
_COMMON_SLIPS: Final[tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...]] = (
    (re.compile(r"&&"), "write 'and' instead of '&&'"),
    (re.compile(r"\|\|"), "write 'or' instead of '||'"),
    (re.compile(r"!(?!=)"), "write 'not' instead of '!'"),
    (re.compile(r"=>"), "write '>=' for 'greater than or equal' ('=>' is not an operator)"),
    (re.compile(r"=<"), "write '<=' for 'less than or equal' ('=<' is not an operator)"),
    (re.compile(r"(?<![=!<>])=(?!=)"), "write '==' to compare ('=' alone is not an operator)"),
    (
        re.compile(r"\b(\d+(?:\.\d+)?)\s*(days?|d|hours?|h|minutes?|mins?|m)\b"),
        lambda m: (
            f"write {_DURATION_FUNCTIONS[m.group(2)[0]]}({m.group(1)}) for a duration: "
            "durations are days(n), hours(n) and minutes(n), in hours "
            "(see 'Functions' in docs/expressions.md)"
        ),
    ),
)

_BIN_OPS: Final[dict[type[ast.operator], str]] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
}
_FORBIDDEN_OPS: Final[dict[type[ast.AST], str]] = {
    ast.Pow: "the power operator '**' is not allowed (it builds huge numbers): multiply",
    ast.BitAnd: "'&' is not allowed: write 'and'",
    ast.BitOr: "'|' is not allowed: write 'or'",
    ast.BitXor: "'^' is not allowed",
    ast.LShift: "'<<' is not allowed",
    ast.RShift: "'>>' is not allowed",
    ast.MatMult: "'@' is not allowed",
    ast.Invert: "'~' is not allowed: write 'not'",
}
_FORBIDDEN_NODES: Final[dict[type[ast.AST], str]] = {
    ast.Attribute: "attribute access ('.{attr}') is not allowed",
    ast.Subscript: "indexing and slicing ('[...]' after a value) are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.Lambda: "'lambda' is not allowed",
    ast.NamedExpr: "assignment (':=') is not allowed",
    ast.Starred: "unpacking ('*') is not allowed",
    ast.JoinedStr: "f-strings are not allowed: write a plain string",
    ast.Dict: "dict literals ('{...}') are not allowed",
    ast.Set: "set literals ('{...}') are not allowed: write a list '[...]'",
    ast.Await: "'await' is not allowed",
    ast.Yield: "'yield' is not allowed",
    ast.YieldFrom: "'yield' is not allowed",
}
_ORDERED: Final = frozenset({ValueType.NUMBER, ValueType.DATETIME, ValueType.DATE})
_EQUATABLE: Final = _ORDERED | {ValueType.STRING, ValueType.BOOL}


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled, type-checked expression; call it with one list's facts.

    The call is the fast path: it does no null checks (the engine checks that every fact
    in ``names`` is not None before calling) and reads facts by name from the mapping.
    """

    source: str
    names: frozenset[str]
    result_type: ValueType
    # The compiled callable itself, for a caller that handles any exception by calling
    # again through ``__call__`` (which turns it into a one-line message).
    function: Callable[[Mapping[str, object]], object] = field(repr=False, compare=False)

    def __call__(self, facts: Mapping[str, object]) -> object:
        try:
            return self.function(facts)
        except ZeroDivisionError:
            problem = "division by zero"
        except EvaluationProblem as exc:
            problem = str(exc)
        except ArithmeticError:
            problem = f"a number went out of range (beyond ±{MAX_MAGNITUDE:.0e})"
        except KeyError as exc:
            problem = f"fact {exc.args[0]!r} is missing"
        except (TypeError, ValueError) as exc:
            problem = f"a fact has a value of the wrong type ({exc})"
        raise ExpressionEvaluationError(f"expression '{self.source}': {problem}")


def compile_expression(
    source: str, schema: Mapping[str, ValueType], *, expect: ValueType
) -> Expression:
    """Check ``source`` against the fact ``schema`` and compile it.

    ``expect`` is the type the caller needs: BOOL for a ``when`` condition, NUMBER for
    ``set.weight``. Raises ``ExpressionError`` locating the first problem.
    """
    if len(source) > MAX_SOURCE_CHARS:
        raise ExpressionError(
            f"the expression is {len(source)} characters long; the limit is "
            f"{MAX_SOURCE_CHARS}: split the rule",
            MAX_SOURCE_CHARS,
            len(source) - MAX_SOURCE_CHARS,
        )
    # One line (same length, so offsets hold): a YAML block scalar may span lines.
    text = source.replace("\r", " ").replace("\n", " ")
    stripped = text.lstrip()
    if not stripped.strip():
        raise ExpressionError("the expression is empty", 0, max(1, len(source)))
    shift = len(text) - len(stripped)
    _reject_comments(stripped, shift)
    tree = _parse(stripped, shift)
    checker = _Checker(stripped, shift, schema)
    kind, body = checker.visit(tree.body, 1)
    if kind != expect:
        hint = " (compare it, e.g. 'x > 0')" if expect is ValueType.BOOL else ""
        raise checker.error(
            tree.body, f"the expression must give {describe(expect)}, not {describe(kind)}{hint}"
        )
    assert isinstance(kind, ValueType)  # a list never reaches the top: visit() refuses it
    arguments = ast.arguments(
        posonlyargs=[], args=[ast.arg(arg=_FACTS)], kwonlyargs=[], kw_defaults=[], defaults=[]
    )
    lambda_tree = ast.Expression(body=ast.Lambda(args=arguments, body=body))
    ast.fix_missing_locations(lambda_tree)
    code = compile(lambda_tree, "<rule expression>", "eval")
    namespace: dict[str, object] = {"__builtins__": {}, **FUNCTIONS, _BOUNDED: bounded}
    namespace.update(checker.constants)
    function = eval(code, namespace)  # the checked tree only: see the module docstring
    return Expression(source, frozenset(checker.names), kind, function)


def _parse(text: str, shift: int) -> ast.Expression:
    """``ast.parse`` in eval mode, with syntax errors located and common slips named."""
    try:
        return ast.parse(text, mode="eval")
    except SyntaxError as exc:
        blanked = _STRING_LITERAL.sub(lambda m: "_" * len(m.group()), text)
        for pattern, advice in _COMMON_SLIPS:
            slip = pattern.search(blanked)
            if slip:
                text_advice = advice if isinstance(advice, str) else advice(slip)
                raise ExpressionError(
                    f"syntax error: {text_advice}", shift + slip.start(), len(slip.group())
                ) from None
        if not exc.offset:  # the parser ran out of input
            raise ExpressionError(
                "syntax error: the expression ends too early", shift + len(text)
            ) from None
        offset = exc.offset - 1
        length = 1
        if exc.end_offset and exc.end_lineno == exc.lineno and exc.end_offset > offset + 1:
            length = exc.end_offset - offset - 1
        raise ExpressionError(f"syntax error: {exc.msg}", shift + offset, length) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            f"the expression is nested too deeply (more than {MAX_DEPTH} levels)", shift, 1
        ) from None


def _reject_comments(text: str, shift: int) -> None:
    """A '#' would silently swallow the rest of a multi-line expression: refuse it."""
    if "#" not in _STRING_LITERAL.sub("", text):
        return
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                raise ExpressionError(
                    "comments are not allowed inside an expression: put them in YAML",
                    shift + token.start[1],
                    len(token.string),
                )
    except (tokenize.TokenError, SyntaxError):
        return  # the parser reports it


class _Checker:
    """Walks a parsed tree: checks it against the allow-list and types, rewrites it."""

    def __init__(self, text: str, shift: int, schema: Mapping[str, ValueType]) -> None:
        self.text = text
        self.shift = shift
        self.encoded = text.encode()
        self.schema = schema
        self.names: set[str] = set()
        self.constants: dict[str, object] = {}

    # -- locating -------------------------------------------------------------------

    def _char(self, byte_column: int) -> int:
        return len(self.encoded[:byte_column].decode("utf-8", "replace"))

    def span(self, first: ast.AST, last: ast.AST | None = None) -> tuple[int, int]:
        """Offset into the original source and length of ``first`` (through ``last``)."""
        last = last or first
        start = self._char(getattr(first, "col_offset", 0))
        end_column = getattr(last, "end_col_offset", None)
        end = self._char(end_column) if end_column is not None else start + 1
        return self.shift + start, max(1, end - start)

    def snippet(self, node: ast.AST) -> str:
        offset, length = self.span(node)
        text = self.text[offset - self.shift : offset - self.shift + length]
        if len(text) > 30:
            text = f"{text[:27]}..."
        return text if text[0] in "'\"" else f"'{text}'"

    def error(self, node: ast.AST, message: str, last: ast.AST | None = None) -> ExpressionError:
        """The error to raise for ``node`` (through ``last``)."""
        offset, length = self.span(node, last)
        return ExpressionError(message, offset, length)

    # -- the walk -------------------------------------------------------------------

    def visit(self, node: ast.expr, depth: int, *, list_ok: bool = False) -> tuple[Kind, ast.expr]:
        """The kind of ``node`` and its rewritten form, or an ExpressionError."""
        if depth > MAX_DEPTH:
            raise self.error(
                node, f"the expression is nested too deeply (more than {MAX_DEPTH} levels)"
            )
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.BoolOp):
            return self._bool_op(node, depth)
        if isinstance(node, ast.UnaryOp):
            return self._unary_op(node, depth)
        if isinstance(node, ast.BinOp):
            return self._bin_op(node, depth)
        if isinstance(node, ast.Compare):
            return self._compare(node, depth)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        if isinstance(node, ast.IfExp):
            return self._if_exp(node, depth)
        if isinstance(node, ast.List | ast.Tuple):
            if not list_ok:
                raise self.error(
                    node,
                    "a list may only stand right of 'in' / 'not in' or as a function argument",
                )
            return self._list(node, depth)
        message = _FORBIDDEN_NODES.get(type(node), f"'{type(node).__name__}' is not allowed")
        if isinstance(node, ast.Attribute):
            message = message.format(attr=node.attr)
        raise self.error(node, message)

    def _constant(self, node: ast.Constant) -> tuple[Kind, ast.expr]:
        value = node.value
        if isinstance(value, bool):
            return ValueType.BOOL, node
        if isinstance(value, int | float):
            if not -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:
                raise self.error(node, f"number too large: the limit is ±{MAX_MAGNITUDE:.0e}")
            return ValueType.NUMBER, node
        if isinstance(value, str):
            if len(value) > MAX_STRING_CHARS:
                raise self.error(
                    node, f"string too long: the limit is {MAX_STRING_CHARS} characters"
                )
            return ValueType.STRING, node
        if value is None:
            raise self.error(node, _NULL_MESSAGE)
        raise self.error(node, "only numbers, strings, True and False can be written as values")

    def _name(self, node: ast.Name) -> tuple[Kind, ast.expr]:
        name = node.id
        kind = self.schema.get(name)
        if kind is not None:
            self.names.add(name)
            read = ast.Subscript(
                value=ast.Name(id=_FACTS, ctx=ast.Load()), slice=ast.Constant(name), ctx=ast.Load()
            )
            return kind, ast.copy_location(read, node)
        if name in FUNCTION_NAMES:
            raise self.error(
                node, f"'{name}' is a function: call it, as in {SIGNATURES[name].usage}"
            )
        if name in {"true", "false"}:
            raise self.error(node, f"unknown name '{name}': write {name.capitalize()}")
        if name.lower() in {"null", "none", "nil"}:
            raise self.error(node, _NULL_MESSAGE)
        raise self.error(node, f"unknown name '{name}'{self._suggest(name)}")

    def _suggest(self, name: str, *, functions_only: bool = False) -> str:
        pool = sorted(FUNCTION_NAMES) if functions_only else [*self.schema, *FUNCTION_NAMES]
        hint = did_you_mean(name, pool)
        return f": {hint}" if hint else ""

    def _bool_op(self, node: ast.BoolOp, depth: int) -> tuple[Kind, ast.expr]:
        word = "and" if isinstance(node.op, ast.And) else "or"
        values = [self._require_bool(value, depth, f"'{word}'") for value in node.values]
        return ValueType.BOOL, ast.copy_location(ast.BoolOp(op=node.op, values=values), node)

    def _require_bool(self, node: ast.expr, depth: int, what: str) -> ast.expr:
        kind, rewritten = self.visit(node, depth + 1)
        if kind is not ValueType.BOOL:
            hint = " (compare it, e.g. 'x > 0')" if kind is ValueType.NUMBER else ""
            raise self.error(
                node, f"{what} needs true/false, but {self.snippet(node)} is {describe(kind)}{hint}"
            )
        return rewritten

    def _unary_op(self, node: ast.UnaryOp, depth: int) -> tuple[Kind, ast.expr]:
        if isinstance(node.op, ast.Not):
            operand = self._require_bool(node.operand, depth, "'not'")
            return ValueType.BOOL, ast.copy_location(ast.UnaryOp(op=node.op, operand=operand), node)
        if isinstance(node.op, ast.Invert):
            raise self.error(node, _FORBIDDEN_OPS[ast.Invert])
        sign = "-" if isinstance(node.op, ast.USub) else "+"
        kind, operand = self.visit(node.operand, depth + 1)
        if kind is not ValueType.NUMBER:
            raise self.error(
                node,
                f"'{sign}' needs a number, but {self.snippet(node.operand)} is {describe(kind)}",
            )
        return ValueType.NUMBER, ast.copy_location(ast.UnaryOp(op=node.op, operand=operand), node)

    def _bin_op(self, node: ast.BinOp, depth: int) -> tuple[Kind, ast.expr]:
        symbol = _BIN_OPS.get(type(node.op))
        if symbol is None:
            message = _FORBIDDEN_OPS.get(type(node.op), "this operator is not allowed")
            raise self.error(node, message)
        operands = []
        for side in (node.left, node.right):
            kind, rewritten = self.visit(side, depth + 1)
            if kind is not ValueType.NUMBER:
                raise self.error(
                    side,
                    f"'{symbol}' needs numbers on both sides, but {self.snippet(side)} is "
                    f"{describe(kind)}",
                )
            operands.append(rewritten)
        arithmetic = ast.BinOp(left=operands[0], op=node.op, right=operands[1])
        checked = ast.Call(
            func=ast.Name(id=_BOUNDED, ctx=ast.Load()), args=[arithmetic], keywords=[]
        )
        return ValueType.NUMBER, ast.copy_location(checked, node)

    def _compare(self, node: ast.Compare, depth: int) -> tuple[Kind, ast.expr]:
        left_node = node.left
        left_kind, left = self.visit(left_node, depth + 1)
        comparators: list[ast.expr] = []
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Is | ast.IsNot):
                if any(_is_none(side) for side in (left_node, right_node)):
                    raise self.error(left_node, _NULL_MESSAGE, right_node)
                raise self.error(left_node, "'is' is not allowed: write == or !=", right_node)
            if isinstance(op, ast.In | ast.NotIn):
                right_kind, right = self._membership(left_node, left_kind, right_node, depth)
            else:
                right_kind, right = self.visit(right_node, depth + 1)
                # A "YYYY-MM-DD" literal beside a date is a date, converted once, here.
                if left_kind is ValueType.DATE and right_kind is ValueType.STRING:
                    right_kind, right = self._date_literal(right_node)
                elif right_kind is ValueType.DATE and left_kind is ValueType.STRING:
                    left_kind, converted = self._date_literal(left_node)
                    if comparators:
                        comparators[-1] = converted
                    else:
                        left = converted
                self._check_comparison(op, left_node, left_kind, right_node, right_kind)
            comparators.append(right)
            left_node, left_kind = right_node, right_kind
        compare = ast.Compare(left=left, ops=node.ops, comparators=comparators)
        return ValueType.BOOL, ast.copy_location(compare, node)

    def _check_comparison(
        self, op: ast.cmpop, left: ast.expr, left_kind: Kind, right: ast.expr, right_kind: Kind
    ) -> None:
        if left_kind != right_kind:
            hint = ""
            if ValueType.DATETIME in (left_kind, right_kind):
                hint = ': compare it with a date-and-time fact, or compare date with "YYYY-MM-DD"'
            raise self.error(
                left,
                f"cannot compare {describe(left_kind)} ({self.snippet(left)}) with "
                f"{describe(right_kind)} ({self.snippet(right)}){hint}",
                right,
            )
        ordered = not isinstance(op, ast.Eq | ast.NotEq)
        allowed = _ORDERED if ordered else _EQUATABLE
        if left_kind not in allowed:
            extra = ""
            if left_kind is ValueType.STRING:
                extra = ": strings compare only with == and !=, or with matches()"
            elif left_kind is ValueType.BOOL:
                extra = ": true/false values compare only with == and !="
            raise self.error(left, f"{describe(left_kind)} cannot be ordered{extra}", right)

    def _membership(
        self, left_node: ast.expr, left_kind: Kind, right_node: ast.expr, depth: int
    ) -> tuple[Kind, ast.expr]:
        if left_kind is ValueType.DATE and isinstance(right_node, ast.List | ast.Tuple):
            return ValueType.STRINGS, self._date_list(right_node)
        right_kind, right = self.visit(right_node, depth + 1, list_ok=True)
        element = {
            ValueType.STRINGS: ValueType.STRING,
            ValueType.STRING: ValueType.STRING,  # a substring test: "VIP" in notes
            ListOfNumbers.NUMBERS: ValueType.NUMBER,
        }.get(right_kind)
        if element is None:
            raise self.error(
                right_node,
                f'\'in\' needs a list (like ["a", "b"]), a list-of-strings fact such as tags, '
                f"or a string on its right, but {self.snippet(right_node)} is "
                f"{describe(right_kind)}",
            )
        if element is not left_kind:
            raise self.error(
                left_node,
                f"{self.snippet(left_node)} is {describe(left_kind)}, so it is never in "
                f"{describe(right_kind)}",
                right_node,
            )
        return right_kind, right

    def _date_literal(self, node: ast.expr) -> tuple[Kind, ast.expr]:
        """``"2024-04-30"`` beside a date: a date constant, made once, at compile time."""
        return ValueType.DATE, self._constant_name(self._parse_date(node), node)

    def _date_list(self, node: ast.List | ast.Tuple) -> ast.expr:
        """``date in ["2024-12-24", "2024-12-25"]``: a frozenset of dates, made once."""
        if not node.elts:
            raise self.error(node, "an empty list matches nothing: add items or drop the condition")
        return self._constant_name(frozenset(self._parse_date(item) for item in node.elts), node)

    def _parse_date(self, node: ast.expr) -> dt.date:
        value = node.value if isinstance(node, ast.Constant) else None
        if not isinstance(value, str) or not _DATE_LITERAL.fullmatch(value):
            raise self.error(node, 'a date compares with a date fact or a literal "YYYY-MM-DD"')
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise self.error(node, f"'{value}' is not a real date") from None

    def _constant_name(self, value: object, node: ast.AST) -> ast.expr:
        name = f"_constant_{len(self.constants)}_"
        self.constants[name] = value
        return ast.copy_location(ast.Name(id=name, ctx=ast.Load()), node)

    def _list(self, node: ast.List | ast.Tuple, depth: int) -> tuple[Kind, ast.expr]:
        if not node.elts:
            raise self.error(node, "an empty list matches nothing: add items or drop the condition")
        items: list[ast.expr] = []
        first: Kind | None = None
        for item in node.elts:
            kind, rewritten = self.visit(item, depth + 1)
            if kind not in (ValueType.NUMBER, ValueType.STRING):
                raise self.error(
                    item, f"list items must be numbers or strings, not {describe(kind)}"
                )
            if first is None:
                first = kind
            elif kind is not first:
                raise self.error(
                    item,
                    f"a list holds only numbers or only strings, but {self.snippet(item)} is "
                    f"{describe(kind)} after {describe(first)}",
                )
            items.append(rewritten)
        kind = ValueType.STRINGS if first is ValueType.STRING else ListOfNumbers.NUMBERS
        return kind, ast.copy_location(ast.Tuple(elts=items, ctx=ast.Load()), node)

    def _call(self, node: ast.Call, depth: int) -> tuple[Kind, ast.expr]:
        if not isinstance(node.func, ast.Name):
            self.visit(node.func, depth + 1)  # rejects attribute access and the like
            raise self.error(
                node.func, "only the functions of the rule language can be called, by name"
            )
        assert isinstance(node.func, ast.Name)
        name = node.func.id
        signature = SIGNATURES.get(name)
        if signature is None:
            if name in self.schema:
                raise self.error(node.func, f"'{name}' is a fact, not a function")
            known = ", ".join(sorted(FUNCTION_NAMES))
            suggestion = self._suggest(name, functions_only=True)
            raise self.error(
                node.func,
                f"unknown function '{name}'{suggestion or f' (the functions are {known})'}",
            )
        assert signature is not None
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.error(arg, _FORBIDDEN_NODES[ast.Starred])
        if node.keywords:
            raise self.error(node.keywords[0], "keyword arguments ('name=value') are not allowed")
        if not signature.accepts_count(len(node.args)):
            raise self.error(
                node,
                f"{signature.usage} takes {signature.arity()} argument"
                f"{'' if signature.arity() == '1' else 's'}, not {len(node.args)}",
            )
        args: list[ast.expr] = []
        kinds: list[Kind] = []
        for index, arg in enumerate(node.args):
            accepted = signature.parameter(index)
            assert accepted is not None
            kind, rewritten = self.visit(arg, depth + 1, list_ok=True)
            if kind not in accepted:
                wanted = " or ".join(sorted(describe(one) for one in accepted))
                raise self.error(
                    arg,
                    f"argument {index + 1} of {signature.usage} must be {wanted}, but "
                    f"{self.snippet(arg)} is {describe(kind)}",
                )
            args.append(rewritten)
            kinds.append(kind)
        if name == "matches" and (globs := _constant_strings(node.args[1:])) is not None:
            many = kinds[0] is ValueType.STRINGS
            matcher = self._constant_name(glob_matcher(globs, many=many), node.func)
            call = ast.Call(func=matcher, args=args[:1], keywords=[])
            return ValueType.BOOL, ast.copy_location(call, node)
        call = ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=args, keywords=[])
        return signature.result, ast.copy_location(call, node)

    def _if_exp(self, node: ast.IfExp, depth: int) -> tuple[Kind, ast.expr]:
        test = self._require_bool(node.test, depth, "the condition of 'if ... else'")
        body_kind, body = self.visit(node.body, depth + 1)
        else_kind, orelse = self.visit(node.orelse, depth + 1)
        if body_kind != else_kind:
            raise self.error(
                node.orelse,
                f"both branches of 'if ... else' must give the same type, but "
                f"{self.snippet(node.body)} is {describe(body_kind)} and "
                f"{self.snippet(node.orelse)} is {describe(else_kind)}",
            )
        rewritten = ast.IfExp(test=test, body=body, orelse=orelse)
        return body_kind, ast.copy_location(rewritten, node)


def _constant_strings(nodes: list[ast.expr]) -> list[str] | None:
    """The strings written in ``nodes`` (plain or in list literals); None if any is not."""
    found: list[str] = []
    for node in nodes:
        items = node.elts if isinstance(node, ast.List | ast.Tuple) else [node]
        for item in items:
            if not (isinstance(item, ast.Constant) and isinstance(item.value, str)):
                return None
            found.append(item.value)
    return found


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None
