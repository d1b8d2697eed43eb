"""Which parts of an expression have one value for the whole request, so they are evaluated once.

A rule applied to each of N items can look something up in the whole request: a tool result's function
name is found among every tool call of the request (`get(from_items(request().messages[]...), id)`).
Evaluated per item, that is N passes over the request: 8,000 tool results took 44 s. A sub-expression
whose value cannot depend on the item is computed on its first use and kept in the request's
`EvalContext` for the others.

Such a sub-expression starts from `request()` or `now()` (or a literal), and on its way uses only
functions whose result depends on nothing but their arguments and the request (`FunctionSpec.pure`):
never `state()`, `counter()`, `random_id()` or `upstream_header()`, and never `rule()` (a named rule
may read anything). Only sub-expressions that do real work are kept (a projection, a filter, a
flatten, a function of arguments); `request().model` costs less than a lookup in the memo.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.rules.builtins import FunctionSpec
from gateway.rules.context import EvalContext

Node = dict[str, Any]
Evaluator = Callable[[Any, EvalContext], Any]

# nodes whose first child is evaluated against the input and whose other children read only what the
# first produced
_CHAINS = frozenset(
    {"subexpression", "index_expression", "pipe", "projection", "value_projection", "filter_projection"}
)
# nodes whose value is a function of their children's values alone
_COMBINATIONS = frozenset({"comparator", "or_expression", "and_expression", "not_expression"})
_WORK = frozenset({"projection", "value_projection", "filter_projection", "flatten"})
_LAZY = frozenset({"map", "if_else", "enum"})  # compiled specially; pure when their arguments are


class RequestConstants:
    """Answers, for a node of jmespath's AST, whether to evaluate it once per request."""

    def __init__(self, functions: Mapping[str, FunctionSpec]) -> None:
        self._functions = functions

    def worth_once(self, node: Node) -> bool:
        return self._constant(node) and _does_work(node)

    def _pure(self, node: Node) -> bool:
        """Whether the node's value depends only on its input and the request."""
        if node["type"] == "function_expression":
            name = node["value"]
            if name == "rule":
                return False
            if name not in _LAZY:
                spec = self._functions.get(name)
                if spec is None or not spec.pure:
                    return False
        return all(self._pure(child) for child in _children(node))

    def _constant(self, node: Node) -> bool:
        """Whether the node's value is the same whatever its input, for one request."""
        kind = node["type"]
        children = _children(node)
        if kind == "literal":
            return True
        if kind == "expref":
            return self._pure(children[0])
        if kind == "function_expression":
            return self._pure(node) and all(self._constant(child) for child in children)
        if kind in _CHAINS:
            return self._constant(children[0]) and all(self._pure(child) for child in children[1:])
        if kind == "flatten":
            return self._constant(children[0])
        if kind in _COMBINATIONS:
            return all(self._constant(child) for child in children)
        return False  # reads its input: a field, @, an index, a slice; a multi-select is null on null


def _does_work(node: Node) -> bool:
    if node["type"] in _WORK or (node["type"] == "function_expression" and node["children"]):
        return True
    return any(_does_work(child) for child in _children(node))


def _children(node: Node) -> list[Node]:
    """The child nodes (a slice's children are its bounds: numbers or null)."""
    return [child for child in node["children"] if isinstance(child, dict)]


_MISSING: Any = object()


def once_per_request(evaluate: Evaluator) -> Evaluator:
    """`evaluate`, run on its first call for a request and answered from the request's memo after."""
    key = object()

    def once(value: Any, ctx: EvalContext) -> Any:
        memo = ctx.memo
        if memo is None:
            memo = ctx.memo = {}
        found = memo.get(key, _MISSING)
        if found is _MISSING:
            found = memo[key] = evaluate(value, ctx)
        return found

    return once
