"""Compile JMESPath source into Python functions, once, when configuration is loaded.

jmespath's own parser produces the AST; codegen.py turns it into one Python function
`(value, ctx) -> result` with the exact semantics of jmespath's TreeInterpreter. Compiling buys three
things: unknown functions and wrong arity are reported at load time rather than on the first request,
functions can see the per-request `EvalContext`, and evaluation skips the interpreter's dispatch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jmespath
from jmespath import exceptions as jmespath_errors

from gateway.rules.builtins import BUILTIN_FUNCTIONS, FunctionSpec
from gateway.rules.codegen import compile_tree
from gateway.rules.request_constants import RequestConstants
from gateway.rules.semantics import Evaluator, ExpressionError, is_false

__all__ = ["Compiler", "Evaluator", "ExpressionError", "is_false"]

Node = dict[str, Any]


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
        self.rules: Mapping[str, Evaluator] = rules if rules is not None else {}
        self._enums: Mapping[str, Mapping[str, Any]] = enums if enums is not None else {}
        self._rule_references: set[str] = set()
        self.constants = RequestConstants(self._functions)

    def missing_references(self) -> list[str]:
        return sorted(name for name in self._rule_references if name not in self.rules)

    def parse(self, source: str) -> Node:
        try:
            parsed: Node = jmespath.compile(source).parsed
        except jmespath_errors.JMESPathError as exc:
            raise ExpressionError(f"invalid JMESPath expression {source!r}: {exc}") from None
        return parsed

    def compile(self, source: str) -> Evaluator:
        return self.compile_tree(self.parse(source))

    def compile_tree(self, node: Node) -> Evaluator:
        """A parsed expression (or a template of them, see template.py) as one function."""
        return compile_tree(self, node)

    # -- what the code generator asks at load time -------------------------------------------------

    def function(self, name: str, count: int) -> FunctionSpec:
        """The function `name()` called with `count` arguments; ExpressionError if there is none."""
        spec = self._functions.get(name)
        if spec is None:
            raise ExpressionError(f"unknown function {name}()")
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            expected = (
                str(spec.min_args)
                if spec.max_args == spec.min_args
                else f"{spec.min_args} or more"
                if spec.max_args is None
                else f"{spec.min_args} to {spec.max_args}"
            )
            raise ExpressionError(f"{name}() takes {expected} arguments, got {count}")
        return spec

    def _literal_name(self, function: str, children: list[Node]) -> str:
        first = children[0] if children else None
        if first is None or first["type"] != "literal" or not isinstance(first["value"], str):
            raise ExpressionError(f"{function}() takes a quoted name first, e.g. {function}('name', @)")
        name: str = first["value"]
        return name

    def rule_reference(self, children: list[Node]) -> str:
        """The name a `rule('name'[, value])` call refers to, recorded for `missing_references()`."""
        if len(children) not in (1, 2):
            raise ExpressionError(f"rule() takes 1 or 2 arguments, got {len(children)}")
        name = self._literal_name("rule", children)
        self._rule_references.add(name)
        return name

    def enum_table(self, children: list[Node]) -> tuple[Mapping[str, Any], Any]:
        """The table an `enum('table', key)` call looks up, and its `*` fallback."""
        if len(children) != 2:
            raise ExpressionError(f"enum() takes 2 arguments, got {len(children)}")
        name = self._literal_name("enum", children)
        table = self._enums.get(name)
        if table is None:
            raise ExpressionError(f"enum() names an undefined table {name!r}")
        return table, table.get("*")
