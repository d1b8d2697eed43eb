"""Writing a Python function's source a statement at a time, for codegen.py.

Code generated from rules reads its inputs from locals and its constants from the function's globals
(`bind`); every value is held in a fresh local (`temp`), so no statement can clobber another's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gateway.rules.semantics import Evaluator


def falsy(x: str) -> str:
    """The Python condition that local `x` is false in JMESPath (null, false, '', [], {}); Python's `not`
    first, so a true value costs one test; 0 is true in JMESPath.
    """
    return f"(not {x} and ({x} is None or {x} is False or {x} == '' or {x} == [] or {x} == {{}}))"


def equality(left: str, right: str, literal: Any) -> str:
    """JMESPath's `left == right` (semantics.equals), specialized when `right` is a literal."""
    if type(literal) in (str, list, dict):  # `x == 'text'`, `x == `[]``: no number/boolean subtlety
        return f"({left} == {right})"
    if literal is None or type(literal) is bool:  # only null is null, only true is true (not 1)
        return f"({left} is {literal!r})"
    if type(literal) is int or type(literal) is float:  # a number, never a boolean (`true == 1` is false)
        return f"(type({left}) is not bool and {left} == {right})"
    return f"_equals({left}, {right})"


def number(x: str) -> str:
    """The Python condition that local `x` is a JSON number (a boolean is not)."""
    return f"(type({x}) is int or type({x}) is float or (type({x}) is not bool and isinstance({x}, _Number)))"


class SourceWriter:
    """The body of `def _rule(v, ctx)`: lines at an indentation depth, and the globals they use."""

    def __init__(self, names: dict[str, Any]) -> None:
        self._lines: list[str] = []
        self._depth = 1
        self._names = names
        self._count = 0
        # common subexpressions: an expression already held in a local, visible in its block and the
        # blocks within it (rules read `client()` and `choices[0]` over and over)
        self._held: dict[str, str] = {}
        # atoms known not to be null here (a multi-select's input in its non-null branch, a literal)
        self._present: set[str] = set()
        self._scopes: list[list[tuple[str, str]]] = [[]]

    def function(self, result: str) -> Evaluator:
        """The function written so far, returning local `result`."""
        source = "def _rule(v, ctx):\n" + "\n".join(self._lines) + f"\n    return {result}\n"
        namespace = dict(self._names)
        exec(compile(source, "<rule>", "exec"), namespace)  # source generated from a parsed tree
        function: Evaluator = namespace["_rule"]
        return function

    def _temp(self) -> str:
        self._count += 1
        return f"t{self._count}"

    def _out(self, text: str) -> None:
        self._lines.append("    " * self._depth + text)

    def _bind(self, obj: Any) -> str:
        name = f"_k{len(self._names)}"
        self._names[name] = obj
        if obj is not None:
            self._present.add(name)
        return name

    def _is_present(self, atom: str) -> bool:
        """Whether `atom` is known not to be null where the next statement runs."""
        return atom in self._present or (atom != "None" and not atom.isidentifier())

    def _know_present(self, atom: str) -> None:
        """`atom` is not null from here to the end of the current block."""
        if atom not in self._present:
            self._present.add(atom)
            self._scopes[-1].append(("present", atom))

    def _hold(self, expression: str) -> str:
        """A local holding `expression`, which must read only locals assigned once and values that
        do not change while the rule runs (a field of the input, a context attribute)."""
        held = self._held.get(expression)
        if held is None:
            held = self._held[expression] = self._temp()
            self._scopes[-1].append(("held", expression))
            self._out(f"{held} = {expression}")
        return held

    @contextmanager
    def _block(self) -> Iterator[None]:
        """Statements indented one more level: an if/else branch or a loop body."""
        self._depth += 1
        self._scopes.append([])
        try:
            yield
        finally:
            self._depth -= 1
            for kind, key in self._scopes.pop():  # what the block knew does not hold past it
                if kind == "held":
                    del self._held[key]
                else:
                    self._present.discard(key)

    @contextmanager
    def _null_if(self, test: str, result: str) -> Iterator[None]:
        """`if test: result = None`; what is written meanwhile is its else branch (JMESPath's null for
        a value of the wrong type)."""
        self._out(f"if {test}:")
        with self._block():
            self._out(f"{result} = None")
        self._out("else:")
        with self._block():
            yield

    @contextmanager
    def _captured(self, into: list[str]) -> Iterator[None]:
        """Lines written meanwhile go to `into` (compiled in jmespath's child order, placed elsewhere)."""
        saved, self._lines = self._lines, into
        try:
            yield
        finally:
            self._lines = saved

    def _local(self, atom: str) -> str:
        """`atom` as a local variable (a literal is stored first: `1.get` and `'' is None` do not parse)."""
        if atom.isidentifier() and atom not in ("None", "True", "False"):
            return atom
        name = self._temp()
        self._out(f"{name} = {atom}")
        return name
