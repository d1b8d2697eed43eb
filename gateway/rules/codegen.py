"""Compile a JMESPath syntax tree (and a template around it) into one Python function.

A translated request spends most of its gateway CPU in its rules. Evaluated as a tree of closures,
every node of a rule is a Python call (`a.b || c` is four); compiled to source, a rule is one call
whose field lookups, comparisons, and/or/not, multi-selects and projections are plain statements,
and only functions (and named rules) are calls. Each node's statements keep the exact semantics of
jmespath's TreeInterpreter (falsiness, null propagation, `type(x) is dict` checks), node by node.

`_Emitter.emit(node, subject)` writes the statements that compute `node` over the local variable (or
literal) `subject` and returns the local that holds the result. Besides jmespath's nodes it knows a
rule file's templates (`_object`, `_list`, `_expr`: see template.py), so a whole template is one
function too. What the writer knows at a statement saves work without changing a result: a field
read twice is read once (pysource.SourceWriter._hold), and a value known not to be null (a
multi-select's input past its null check, the true left side of `&&`) is not checked again.
Sub-expressions with one value per request are their own functions, called once per request
(request_constants.py), and so is a node nested deeper than Python's parser allows (`_MAX_DEPTH`).
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Number
from typing import TYPE_CHECKING, Any

from jmespath import exceptions as jmespath_errors

from gateway.rules import functions
from gateway.rules.builtins import SLOW
from gateway.rules.pysource import SourceWriter, equality, falsy, number
from gateway.rules.request_constants import once_per_request
from gateway.rules.semantics import Evaluator, Expression, ExpressionError, LocatedError, equals

if TYPE_CHECKING:
    from gateway.rules.compiler import Compiler

Node = dict[str, Any]

_INLINE_LITERALS = (type(None), bool, int, str)
_ORDERING = {"lt": "<", "gt": ">", "lte": "<=", "gte": ">="}
_BOOLEAN_NODES = frozenset({"comparator", "not_expression"})  # true, false or null: Python truthiness holds
# the context functions, read in place (the YAML calls them ~200 times); a function table that names
# another function `request` is called as usual
_CONTEXT_READS: dict[Any, str] = {
    functions.GENERIC_FUNCTIONS["request"].impl: "ctx.request",
    functions.GENERIC_FUNCTIONS["client"].impl: (
        "(ctx.request if ctx.client_request is None else ctx.client_request)"
    ),
    functions.GENERIC_FUNCTIONS["state"].impl: "ctx.state",
    functions.GENERIC_FUNCTIONS["now"].impl: "ctx.created",
}
_ADD = functions.GENERIC_FUNCTIONS["add"].impl
_NOT_LITERAL: Any = object()
_MAX_DEPTH = 24  # deeper nodes become functions of their own (Python caps indentation and nested loops)


def _map_type_error(items: Any) -> Any:
    raise jmespath_errors.JMESPathTypeError("map", items, type(items).__name__, ["array"])


def compile_tree(compiler: Compiler, node: Node, *, in_constant: bool = False) -> Evaluator:
    """One function computing `node`; a sub-expression with one value per request is kept once."""
    if not in_constant and _worth_once(compiler, node):
        return once_per_request(compile_tree(compiler, node, in_constant=True))
    emitter = _Emitter(compiler, in_constant)
    result = emitter.emit(node, "v")
    return emitter.function(result)


def _boolean(node: Node) -> bool:
    """Whether the node's value is true, false or null, so Python's truthiness is JMESPath's."""
    kind = node["type"]
    if kind in ("or_expression", "and_expression"):
        return all(_boolean(child) for child in node["children"])
    return kind in _BOOLEAN_NODES or (kind == "literal" and type(node["value"]) is bool)


def _worth_once(compiler: Compiler, node: Node) -> bool:
    return not node["type"].startswith("_") and compiler.constants.worth_once(node)


class _Emitter(SourceWriter):
    """Writes one function: a node's statements, inline, down to the calls of functions and rules."""

    def __init__(self, compiler: Compiler, in_constant: bool) -> None:
        super().__init__(
            {
                "_Number": Number,
                "_equals": equals,
                "_Expression": Expression,
                "_map_type_error": _map_type_error,
                "_rules": compiler.rules,
                "_SLOW": SLOW,
            }
        )
        self._compiler = compiler
        self._in_constant = in_constant

    # -- nodes -----------------------------------------------------------------------------------

    def emit(self, node: Node, subject: str) -> str:
        kind: str = node["type"]
        if self._depth > _MAX_DEPTH or (not self._in_constant and _worth_once(self._compiler, node)):
            function = compile_tree(self._compiler, node, in_constant=self._in_constant)
            return self._call(function, subject)
        method: Callable[[Node, str], str] | None = getattr(self, "_n_" + kind.lstrip("_"), None)
        if method is None:  # pragma: no cover - jmespath grammar is closed
            raise ExpressionError(f"unsupported expression node {kind!r}")
        return method(node, subject)

    def _call(self, function: Evaluator, subject: str) -> str:
        result = self._temp()
        self._out(f"{result} = {self._bind(function)}({subject}, ctx)")
        return result

    def _n_field(self, node: Node, subject: str) -> str:
        subject = self._local(subject)
        return self._hold(f"{subject}.get({node['value']!r}) if type({subject}) is dict else None")

    def _n_subexpression(self, node: Node, subject: str) -> str:
        for child in node["children"]:
            subject = self.emit(child, subject)
        return subject

    _n_index_expression = _n_subexpression
    _n_pipe = _n_subexpression

    def _n_current(self, _node: Node, subject: str) -> str:
        return subject

    _n_identity = _n_current

    def _n_literal(self, node: Node, _subject: str) -> str:
        constant = node["value"]
        return repr(constant) if type(constant) in _INLINE_LITERALS else self._bind(constant)

    def _n_index(self, node: Node, subject: str) -> str:
        subject = self._local(subject)
        position: int = node["value"]
        inside = f"len({subject}) > {position}" if position >= 0 else f"len({subject}) >= {-position}"
        return self._hold(f"{subject}[{position}] if type({subject}) is list and {inside} else None")

    def _n_slice(self, node: Node, subject: str) -> str:
        subject = self._local(subject)
        bounds = self._bind(slice(*node["children"]))
        result = self._temp()
        self._out(f"{result} = {subject}[{bounds}] if type({subject}) is list else None")
        return result

    def _n_comparator(self, node: Node, subject: str) -> str:
        left_node, right_node = node["children"]
        left = self._local(self.emit(left_node, subject))
        right = self.emit(right_node, subject)
        op: str = node["value"]
        result = self._temp()
        literal = right_node["value"] if right_node["type"] == "literal" else _NOT_LITERAL
        if op in ("eq", "ne"):
            self._out(f"{result} = {'' if op == 'eq' else 'not '}{equality(left, right, literal)}")
            return result
        # ordering is defined for two numbers or two strings; anything else is null (no crash)
        if type(literal) is int or type(literal) is float:
            both = number(left)  # `x < `1``: the literal is a number, and a string is not
        else:
            right = self._local(right)
            strings = f"(isinstance({left}, str) and isinstance({right}, str))"
            both = f"{strings} or ({number(left)} and {number(right)})"
        with self._null_if(f"not ({both})", result):
            self._out(f"{result} = {left} {_ORDERING[op]} {right}")
        return result

    def _test_false(self, node: Node, value: str) -> str:
        """The Python condition that `value`, computed by `node`, is false in JMESPath."""
        return f"not {value}" if _boolean(node) else falsy(value)

    def _n_or_expression(self, node: Node, subject: str) -> str:
        return self._short_circuit(node, subject, or_=True)

    def _n_and_expression(self, node: Node, subject: str) -> str:
        return self._short_circuit(node, subject, or_=False)

    def _short_circuit(self, node: Node, subject: str, *, or_: bool) -> str:
        left_node, right_node = node["children"]
        left = self._local(self.emit(left_node, subject))
        result = self._temp()
        test = self._test_false(left_node, left)
        self._out(f"if {test}:" if or_ else f"if not {test}:")
        with self._block():
            if not or_:
                self._know_present(left)  # true, so not null: `x && rule('r', x)` calls the rule directly
            right = self.emit(right_node, subject)
            self._out(f"{result} = {right}")
        self._out("else:")
        with self._block():
            self._out(f"{result} = {left}")
        return result

    def _n_not_expression(self, node: Node, subject: str) -> str:
        # jmespath's not: a number 0 is false-negated like any number; everything else by falsiness
        child = node["children"][0]
        inner = self._local(self.emit(child, subject))
        result = self._temp()
        self._out(f"{result} = {self._test_false(child, inner)}")
        return result

    def _n_multi_select_dict(self, node: Node, subject: str) -> str:
        def build() -> str:
            items = [f"{c['value']!r}: {self.emit(c['children'][0], subject)}" for c in node["children"]]
            return f"{{{', '.join(items)}}}"

        return self._unless_null(subject, build)

    def _n_multi_select_list(self, node: Node, subject: str) -> str:
        def build() -> str:
            return f"[{', '.join(self.emit(child, subject) for child in node['children'])}]"

        return self._unless_null(subject, build)

    def _unless_null(self, subject: str, build: Callable[[], str]) -> str:
        """A multi-select: null over null, else what `build` writes (told that `subject` is not null)."""
        subject = self._local(subject)
        result = self._temp()
        if self._is_present(subject):
            self._out(f"{result} = {build()}")
            self._know_present(result)
            return result
        with self._null_if(f"{subject} is None", result):
            self._know_present(subject)
            self._out(f"{result} = {build()}")
        return result

    def _collect(self, items: str, each: Node, kind: str, *, over: str = "") -> str:
        """`[each(item) for item in items]`, nulls left out; null when `items` is not of `kind`."""
        items = self._local(items)
        result, item = self._temp(), self._temp()
        with self._null_if(f"type({items}) is not {kind}", result):
            if each["type"] == "identity":
                self._out(f"{result} = [{item} for {item} in {items}{over} if {item} is not None]")
                return result
            self._out(f"{result} = []")
            self._out(f"for {item} in {items}{over}:")
            with self._block():
                value = self._local(self.emit(each, item))
                self._out(f"if {value} is not None:")
                with self._block():
                    self._out(f"{result}.append({value})")
        return result

    def _n_projection(self, node: Node, subject: str) -> str:
        base, each = node["children"]
        return self._collect(self.emit(base, subject), each, "list")

    def _n_value_projection(self, node: Node, subject: str) -> str:
        base, each = node["children"]
        return self._collect(self.emit(base, subject), each, "dict", over=".values()")

    def _n_filter_projection(self, node: Node, subject: str) -> str:
        base, each, condition = node["children"]
        items = self._local(self.emit(base, subject))
        result, item = self._temp(), self._temp()
        with self._null_if(f"type({items}) is not list", result):
            self._out(f"{result} = []")
            self._out(f"for {item} in {items}:")
            with self._block():
                body: list[str] = []
                with self._block(), self._captured(body):
                    value = self._local(self.emit(each, item))  # compiled before the condition, as jmespath
                    self._out(f"if {value} is not None:")
                    with self._block():
                        self._out(f"{result}.append({value})")
                kept = self._local(self.emit(condition, item))
                self._out(f"if not ({self._test_false(condition, kept)}):")
                self._lines.extend(body)
        return result

    def _n_flatten(self, node: Node, subject: str) -> str:
        items = self._local(self.emit(node["children"][0], subject))
        result, item = self._temp(), self._temp()
        with self._null_if(f"type({items}) is not list", result):
            self._out(f"{result} = []")
            self._out(f"for {item} in {items}:")
            with self._block():
                self._out(f"if type({item}) is list:")
                with self._block():
                    self._out(f"{result}.extend({item})")
                self._out("else:")
                with self._block():
                    self._out(f"{result}.append({item})")
        return result

    def _n_expref(self, node: Node, _subject: str) -> str:
        inner = compile_tree(self._compiler, node["children"][0], in_constant=self._in_constant)
        result = self._temp()
        self._out(f"{result} = _Expression({self._bind(inner)}, ctx)")
        return result

    # -- functions -------------------------------------------------------------------------------

    def _n_function_expression(self, node: Node, subject: str) -> str:
        name: str = node["value"]
        children: list[Node] = node["children"]
        if name == "rule":
            return self._rule_call(children, subject)
        if name == "enum":
            return self._enum_call(children, subject)
        if name == "map" and len(children) == 2 and children[0]["type"] == "expref":
            return self._map_call(children, subject)
        if name == "if_else":
            return self._if_else_call(children, subject)
        spec = self._compiler.function(name, len(children))
        context_read = _CONTEXT_READS.get(spec.impl)
        if context_read is not None:  # request(), client(), state(), now(): an attribute, not a call
            return self._hold(context_read)
        args = [self.emit(child, subject) for child in children]
        result = self._temp()
        if spec.impl is _ADD:  # usage arithmetic on every reply: two whole numbers are added in place
            args = [self._local(arg) for arg in args]
            self._out(f"if {' and '.join(f'type({arg}) is int' for arg in args)}:")
            with self._block():
                self._out(f"{result} = {' + '.join(args)}")
            self._out("else:")
            with self._block():
                self._out(f"{result} = {self._bind(spec.impl)}({', '.join(['ctx', *args])})")
        elif spec.fast is not None:
            self._out(f"{result} = {self._bind(spec.fast)}({', '.join(args)})")
            self._out(f"if {result} is _SLOW:")
            with self._block():
                self._out(f"{result} = {self._bind(spec.impl)}({', '.join(['ctx', *args])})")
        else:
            self._out(f"{result} = {self._bind(spec.impl)}({', '.join(['ctx', *args])})")
        return result

    def _rule_call(self, children: list[Node], subject: str) -> str:
        name = self._compiler.rule_reference(children)
        argument = self._local(self.emit(children[1], subject) if len(children) == 2 else subject)
        result = self._temp()
        call = f"_rules[{name!r}]({argument}, ctx)"
        self._out(
            f"{result} = {call}"
            if self._is_present(argument)
            else f"{result} = None if {argument} is None else {call}"
        )
        return result

    def _enum_call(self, children: list[Node], subject: str) -> str:
        table, fallback = self._compiler.enum_table(children)
        key = self._local(self.emit(children[1], subject))
        result = self._temp()
        text = f"{key} if isinstance({key}, str) else str({key})"
        lookup = f"{self._bind(table)}.get({text}, {self._bind(fallback)})"
        self._out(f"{result} = None if {key} is None else {lookup}")
        return result

    def _if_else_call(self, children: list[Node], subject: str) -> str:
        """`if_else(cond, then, else)`: lazy, so the branch not taken is never evaluated."""
        if len(children) != 3:
            raise ExpressionError(f"if_else() takes 3 arguments, got {len(children)}")
        condition, then, otherwise = children
        test = self._local(self.emit(condition, subject))
        result = self._temp()
        self._out(f"if not ({self._test_false(condition, test)}):")
        with self._block():
            self._know_present(test)
            self._out(f"{result} = {self.emit(then, subject)}")
        self._out("else:")
        with self._block():
            self._out(f"{result} = {self.emit(otherwise, subject)}")
        return result

    def _map_call(self, children: list[Node], subject: str) -> str:
        body: list[str] = []
        item, result = self._temp(), self._temp()
        with self._block(), self._captured(body):
            value = self.emit(children[0]["children"][0], item)  # compiled before the array, as jmespath
            self._out(f"{result}.append({value})")
        items = self._local(self.emit(children[1], subject))
        self._out(f"if type({items}) is not list:")
        with self._block():
            self._out(f"_map_type_error({items})")
        self._out(f"{result} = []")
        self._out(f"for {item} in {items}:")
        self._lines.extend(body)
        return result

    # -- templates (template.py) -----------------------------------------------------------------

    def _n_expr(self, node: Node, subject: str) -> str:
        if "error" in node:
            raise LocatedError(node["where"], node["error"])
        try:
            return self.emit(node["node"], subject)
        except ExpressionError as exc:
            raise LocatedError(node["where"], str(exc)) from None

    def _n_object(self, node: Node, subject: str) -> str:
        values = [(name, keep_null, self.emit(sub, subject)) for name, keep_null, sub in node["fields"]]
        result = self._temp()
        self._out(f"{result} = {{}}")
        for name, keep_null, value in values:
            if keep_null or self._is_present(value):
                self._out(f"{result}[{name!r}] = {value}")
            else:
                self._out(f"if {value} is not None:")
                with self._block():
                    self._out(f"{result}[{name!r}] = {value}")
        self._know_present(result)
        return result

    def _n_list(self, node: Node, subject: str) -> str:
        values = [self.emit(sub, subject) for sub in node["items"]]
        result, item = self._temp(), self._temp()
        if all(self._is_present(value) for value in values):
            self._out(f"{result} = [{', '.join(values)}]")
        else:
            self._out(f"{result} = [{item} for {item} in ({', '.join([*values, ''])}) if {item} is not None]")
        self._know_present(result)
        return result
