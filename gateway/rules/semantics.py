"""JMESPath's value semantics where generated code calls them (codegen.py) and the engine tests a
rule's result (`is_false`: a stream step's `when`, a parameter's fate)."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Number
from typing import Any

from gateway.rules.context import EvalContext

Evaluator = Callable[[Any, EvalContext], Any]


class ExpressionError(ValueError):
    """An expression that does not parse or calls something that does not exist."""


class LocatedError(ExpressionError):
    """An expression error inside a template, with the dotted location of the expression."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


def is_false(value: Any) -> bool:
    """JMESPath falsiness: empty string, list and object, null and false (a number, 0 too, is true).

    Python's `not` answers first, so a true value costs one test and no `[]`/`{}` is built for it."""
    return not value and (value is None or value is False or value == "" or value == [] or value == {})


def is_number(x: Any) -> bool:
    kind = type(x)
    return kind is int or kind is float or (kind is not bool and isinstance(x, Number))


def equals(x: Any, y: Any) -> bool:
    """JMESPath equality: unlike Python's, `true == 1` and `false == 0` are false."""
    kind_x, kind_y = type(x), type(y)
    if (kind_x is bool) is not (kind_y is bool):  # one boolean: never equal to the number 0 or 1
        other = y if kind_x is bool else x
        if is_number(other) and other in (0, 1):
            return False
    return bool(x == y)


class _Expression:
    """An expression reference (`&expr`) in the shape jmespath's builtin functions expect.

    The class name matters: jmespath type-checks arguments by `type(x).__name__` (`_Expression`).
    """

    __slots__ = ("ctx", "expression", "fn")

    def __init__(self, fn: Evaluator, ctx: EvalContext) -> None:
        self.fn = fn
        self.ctx = ctx
        self.expression = None

    def visit(self, _node: Any, value: Any) -> Any:
        return self.fn(value, self.ctx)


Expression = _Expression  # the public name; instances keep the name jmespath checks
