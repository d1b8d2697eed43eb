"""Compile JMESPath source into Python closures, once, when configuration is loaded.

jmespath's own parser produces the AST; this module turns each node into a closure
`(value, ctx) -> result` with the exact semantics of jmespath's TreeInterpreter. Compiling buys three
things: unknown functions and wrong arity are reported at load time rather than on the first request,
functions can see the per-request `EvalContext`, and evaluation skips the interpreter's dispatch.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from numbers import Number
from typing import Any

import jmespath
from jmespath import exceptions as jmespath_errors

from gateway.rules.builtins import BUILTIN_FUNCTIONS, FunctionSpec
from gateway.rules.context import EvalContext
from gateway.rules.request_constants import RequestConstants, once_per_request

Evaluator = Callable[[Any, EvalContext], Any]


class ExpressionError(ValueError):
    """An expression that does not parse or calls something that does not exist."""


def is_false(value: Any) -> bool:
    """JMESPath falsiness: empty string, list and object, null and false."""
    return value is None or value is False or value == "" or value == [] or value == {}


def _is_number(x: Any) -> bool:
    kind = type(x)
    return kind is int or kind is float or (kind is not bool and isinstance(x, Number))


def _equals(x: Any, y: Any) -> bool:
    if type(x) is str or type(y) is str:  # the usual case: no number/boolean subtlety
        return bool(x == y)
    if (_is_number(x) and x in (0, 1) and isinstance(y, bool)) or (
        _is_number(y) and y in (0, 1) and isinstance(x, bool)
    ):
        return False
    return bool(x == y)


_ORDERING = {"lt": operator.lt, "gt": operator.gt, "lte": operator.le, "gte": operator.ge}


class _Expression:
    """An expression reference (`&expr`) in the shape jmespath's builtin functions expect.

    The class name matters: jmespath type-checks arguments by `type(x).__name__`.
    """

    __slots__ = ("ctx", "expression", "fn")

    def __init__(self, fn: Evaluator, ctx: EvalContext) -> None:
        self.fn = fn
        self.ctx = ctx
        self.expression = None

    def visit(self, _node: Any, value: Any) -> Any:
        return self.fn(value, self.ctx)


class Compiler:
    """Compiles expressions against one function table and one dialect's named rules and enums.

    `rules` may be filled after expressions that call `rule('name', ...)` were compiled (rules can
    refer to each other); `missing_references()` reports names that were used but never defined.
    """

    def __init__(
        self,
        functions: Mapping[str, FunctionSpec],
        rules: Mapping[str, Evaluator] | None = None,
        enums: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._functions = {**BUILTIN_FUNCTIONS, **functions}
        self._rules: Mapping[str, Evaluator] = rules if rules is not None else {}
        self._enums: Mapping[str, Mapping[str, Any]] = enums if enums is not None else {}
        self._rule_references: set[str] = set()
        self._constants = RequestConstants(self._functions)
        self._in_constant = False  # compiling inside a sub-expression already evaluated once per request

    def missing_references(self) -> list[str]:
        return sorted(name for name in self._rule_references if name not in self._rules)

    def compile(self, source: str) -> Evaluator:
        try:
            parsed = jmespath.compile(source).parsed
        except jmespath_errors.JMESPathError as exc:
            raise ExpressionError(f"invalid JMESPath expression {source!r}: {exc}") from None
        return self._node(parsed)

    # -- nodes -----------------------------------------------------------------------------------

    def _node(self, node: dict[str, Any]) -> Evaluator:
        method: Callable[[dict[str, Any]], Evaluator] | None = getattr(self, "_n_" + node["type"], None)
        if method is None:  # pragma: no cover - jmespath grammar is closed
            raise ExpressionError(f"unsupported expression node {node['type']!r}")
        if self._in_constant or not self._constants.worth_once(node):
            return method(node)
        self._in_constant = True  # the largest such sub-expression is kept, not its parts too
        try:
            return once_per_request(method(node))
        finally:
            self._in_constant = False

    def _n_field(self, node: dict[str, Any]) -> Evaluator:
        key = node["value"]

        def field(value: Any, _ctx: EvalContext) -> Any:
            return value.get(key) if type(value) is dict else None

        return field

    def _chain(self, children: list[dict[str, Any]]) -> Evaluator:
        steps = [self._node(child) for child in children]
        if all(child["type"] == "field" for child in children):
            keys = [child["value"] for child in children]

            def fields(value: Any, _ctx: EvalContext) -> Any:
                for key in keys:
                    if type(value) is not dict:
                        return None
                    value = value.get(key)
                return value

            return fields

        def chain(value: Any, ctx: EvalContext) -> Any:
            for step in steps:
                value = step(value, ctx)
            return value

        return chain

    def _n_subexpression(self, node: dict[str, Any]) -> Evaluator:
        return self._chain(node["children"])

    _n_index_expression = _n_subexpression
    _n_pipe = _n_subexpression

    def _n_current(self, _node: dict[str, Any]) -> Evaluator:
        return lambda value, _ctx: value

    _n_identity = _n_current

    def _n_literal(self, node: dict[str, Any]) -> Evaluator:
        constant = node["value"]
        return lambda _value, _ctx: constant

    def _n_index(self, node: dict[str, Any]) -> Evaluator:
        position = node["value"]

        def index(value: Any, _ctx: EvalContext) -> Any:
            if type(value) is not list:
                return None
            try:
                return value[position]
            except IndexError:
                return None

        return index

    def _n_slice(self, node: dict[str, Any]) -> Evaluator:
        bounds = slice(*node["children"])
        return lambda value, _ctx: value[bounds] if type(value) is list else None

    def _n_comparator(self, node: dict[str, Any]) -> Evaluator:
        left, right = (self._node(child) for child in node["children"])
        op = node["value"]
        if op in ("eq", "ne"):
            negate = op == "ne"
            literal = node["children"][1]
            if literal["type"] == "literal" and type(literal["value"]) is str:
                constant = literal["value"]  # `x == 'text'`: plain string equality, nothing else to check
                if negate:
                    return lambda value, ctx: left(value, ctx) != constant
                return lambda value, ctx: left(value, ctx) == constant
            return lambda value, ctx: _equals(left(value, ctx), right(value, ctx)) is not negate
        ordering = _ORDERING[op]

        def compare(value: Any, ctx: EvalContext) -> Any:
            a, b = left(value, ctx), right(value, ctx)
            # ordering is defined for two numbers or two strings; anything else is null (no crash)
            if isinstance(a, str) and isinstance(b, str):
                return ordering(a, b)
            if _is_number(a) and _is_number(b):
                return ordering(a, b)
            return None

        return compare

    def _n_or_expression(self, node: dict[str, Any]) -> Evaluator:
        left, right = (self._node(child) for child in node["children"])

        def either(value: Any, ctx: EvalContext) -> Any:
            matched = left(value, ctx)
            return right(value, ctx) if is_false(matched) else matched

        return either

    def _n_and_expression(self, node: dict[str, Any]) -> Evaluator:
        left, right = (self._node(child) for child in node["children"])

        def both(value: Any, ctx: EvalContext) -> Any:
            matched = left(value, ctx)
            return matched if is_false(matched) else right(value, ctx)

        return both

    def _n_not_expression(self, node: dict[str, Any]) -> Evaluator:
        inner = self._node(node["children"][0])

        def negate(value: Any, ctx: EvalContext) -> Any:
            result = inner(value, ctx)
            if _is_number(result) and result == 0:
                return False
            return is_false(result)

        return negate

    def _n_multi_select_dict(self, node: dict[str, Any]) -> Evaluator:
        pairs = [(child["value"], self._node(child["children"][0])) for child in node["children"]]

        def build(value: Any, ctx: EvalContext) -> Any:
            if value is None:
                return None
            return {key: fn(value, ctx) for key, fn in pairs}

        return build

    def _n_multi_select_list(self, node: dict[str, Any]) -> Evaluator:
        items = [self._node(child) for child in node["children"]]

        def build(value: Any, ctx: EvalContext) -> Any:
            if value is None:
                return None
            return [fn(value, ctx) for fn in items]

        return build

    def _n_projection(self, node: dict[str, Any]) -> Evaluator:
        base, each = (self._node(child) for child in node["children"])
        identity = node["children"][1]["type"] == "identity"

        def project(value: Any, ctx: EvalContext) -> Any:
            items = base(value, ctx)
            if type(items) is not list:
                return None
            if identity:
                return [item for item in items if item is not None]
            collected = []
            for item in items:
                result = each(item, ctx)
                if result is not None:
                    collected.append(result)
            return collected

        return project

    def _n_value_projection(self, node: dict[str, Any]) -> Evaluator:
        base, each = (self._node(child) for child in node["children"])

        def project(value: Any, ctx: EvalContext) -> Any:
            obj = base(value, ctx)
            if type(obj) is not dict:
                return None
            collected = []
            for item in obj.values():
                result = each(item, ctx)
                if result is not None:
                    collected.append(result)
            return collected

        return project

    def _n_filter_projection(self, node: dict[str, Any]) -> Evaluator:
        base, each, condition = (self._node(child) for child in node["children"])

        def select(value: Any, ctx: EvalContext) -> Any:
            items = base(value, ctx)
            if type(items) is not list:
                return None
            collected = []
            for item in items:
                if not is_false(condition(item, ctx)):
                    result = each(item, ctx)
                    if result is not None:
                        collected.append(result)
            return collected

        return select

    def _n_flatten(self, node: dict[str, Any]) -> Evaluator:
        inner = self._node(node["children"][0])

        def flatten(value: Any, ctx: EvalContext) -> Any:
            items = inner(value, ctx)
            if type(items) is not list:
                return None
            merged: list[Any] = []
            for item in items:
                if type(item) is list:
                    merged.extend(item)
                else:
                    merged.append(item)
            return merged

        return flatten

    def _n_expref(self, node: dict[str, Any]) -> Evaluator:
        inner = self._node(node["children"][0])
        return lambda _value, ctx: _Expression(inner, ctx)

    def _n_function_expression(self, node: dict[str, Any]) -> Evaluator:
        name: str = node["value"]
        children: list[dict[str, Any]] = node["children"]
        if name == "rule":
            return self._rule_call(children)
        if name == "enum":
            return self._enum_call(children)
        if name == "map" and len(children) == 2 and children[0]["type"] == "expref":
            return self._map_call(children)
        if name == "if_else":
            return self._if_else_call(children)
        spec = self._functions.get(name)
        if spec is None:
            raise ExpressionError(f"unknown function {name}()")
        count = len(children)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            expected = (
                str(spec.min_args)
                if spec.max_args == spec.min_args
                else f"{spec.min_args} or more"
                if spec.max_args is None
                else f"{spec.min_args} to {spec.max_args}"
            )
            raise ExpressionError(f"{name}() takes {expected} arguments, got {count}")
        args = [self._node(child) for child in children]
        impl = spec.impl
        if not args:
            return lambda _value, ctx: impl(ctx)
        if len(args) == 1:
            (only,) = args
            return lambda value, ctx: impl(ctx, only(value, ctx))
        if len(args) == 2:
            first, second = args
            return lambda value, ctx: impl(ctx, first(value, ctx), second(value, ctx))

        def call(value: Any, ctx: EvalContext) -> Any:
            return impl(ctx, *[arg(value, ctx) for arg in args])

        return call

    def _literal_name(self, function: str, children: list[dict[str, Any]]) -> str:
        first = children[0] if children else None
        if first is None or first["type"] != "literal" or not isinstance(first["value"], str):
            raise ExpressionError(f"{function}() takes a quoted name first, e.g. {function}('name', @)")
        name: str = first["value"]
        return name

    def _rule_call(self, children: list[dict[str, Any]]) -> Evaluator:
        if len(children) not in (1, 2):
            raise ExpressionError(f"rule() takes 1 or 2 arguments, got {len(children)}")
        name = self._literal_name("rule", children)
        self._rule_references.add(name)
        rules = self._rules
        argument = self._node(children[1]) if len(children) == 2 else (lambda value, _ctx: value)

        def call_rule(value: Any, ctx: EvalContext) -> Any:
            subject = argument(value, ctx)
            return None if subject is None else rules[name](subject, ctx)

        return call_rule

    def _enum_call(self, children: list[dict[str, Any]]) -> Evaluator:
        if len(children) != 2:
            raise ExpressionError(f"enum() takes 2 arguments, got {len(children)}")
        name = self._literal_name("enum", children)
        table = self._enums.get(name)
        if table is None:
            raise ExpressionError(f"enum() names an undefined table {name!r}")
        fallback = table.get("*")
        key_of = self._node(children[1])

        def lookup(value: Any, ctx: EvalContext) -> Any:
            key = key_of(value, ctx)
            if key is None:
                return None
            return table.get(key if isinstance(key, str) else str(key), fallback)

        return lookup

    def _if_else_call(self, children: list[dict[str, Any]]) -> Evaluator:
        """`if_else(cond, then, else)`: lazy, so the branch not taken is never evaluated."""
        if len(children) != 3:
            raise ExpressionError(f"if_else() takes 3 arguments, got {len(children)}")
        condition, then, otherwise = (self._node(child) for child in children)

        def choose(value: Any, ctx: EvalContext) -> Any:
            return otherwise(value, ctx) if is_false(condition(value, ctx)) else then(value, ctx)

        return choose

    def _map_call(self, children: list[dict[str, Any]]) -> Evaluator:
        each = self._node(children[0]["children"][0])
        items_of = self._node(children[1])

        def mapped(value: Any, ctx: EvalContext) -> Any:
            items = items_of(value, ctx)
            if type(items) is not list:
                raise jmespath_errors.JMESPathTypeError("map", items, type(items).__name__, ["array"])
            return [each(item, ctx) for item in items]

        return mapped
