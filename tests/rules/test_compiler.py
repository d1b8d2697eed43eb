"""The closure compiler must agree with jmespath's own interpreter, and fail early on bad input."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest

from gateway.rules.builtins import FunctionSpec
from gateway.rules.compiler import Compiler, ExpressionError
from gateway.rules.context import EvalContext
from gateway.rules.functions import GENERIC_FUNCTIONS

DATA: dict[str, Any] = {
    "a": {"b": [{"c": 1, "d": "x"}, {"c": 2, "d": "y"}, {"c": 3}]},
    "n": 0,
    "t": True,
    "s": "",
    "list": [1, [2, 3], [[4]], None],
    "obj": {"k1": {"v": 1}, "k2": {"v": 2}},
    "people": [{"name": "b", "age": 30}, {"name": "a", "age": 25}],
}

# Every expression here is evaluated by both engines; results must be identical.
EXPRESSIONS = [
    "a.b[0].c",
    "a.b[-1].c",
    "a.b[5]",
    "a.b[*].c",
    "a.b[].d",
    "a.b[?c > `1`].c",
    "a.b[?d == 'x']",
    "a.b[?d != 'x'].c",
    "a.b[1:].c",
    "a.b[::-1].c",
    "list[]",
    "list[][]",
    "obj.*.v",
    "a.missing || 'fallback'",
    "n || 'zero is truthy'",
    "s || 'empty is falsy'",
    "t && 'yes'",
    "!n",
    "!s",
    "!t",
    "{first: a.b[0].c, count: length(a.b)}",
    "[a.b[0].c, n]",
    "a.b | length(@)",
    "sort_by(people, &age)[].name",
    "max_by(people, &age).name",
    "map(&age, people)",
    "join(',', people[].name)",
    "contains(people[].name, 'a')",
    "to_string(n)",
    "type(a)",
    'merge(obj, `{"k3": 3}`)',
    "n < `1`",
    "n >= `1`",
    "t == `1`",
    "n == `false`",
    "@",
    "`[1, 2]`",
    "'raw'",
    "a.b[?c > `1`] | [0].c",
    "people[?age > `26`] | [0]",
    "keys(obj)",
    "not_null(a.missing, n)",
    # functions with a native fast path, on the plain case and on the odd one
    "type(n)",
    "type(t)",
    "type(s)",
    "type(list)",
    "type(a.missing)",
    "type(`1.5`)",
    "join('-', a.b[*].d)",
    "starts_with(a.b[0].d, 'x')",
    "ends_with('abc', 'c')",
    "length(s)",
    "length(obj)",
    "to_string(a.b[0].d)",
    "to_string(obj)",
    "not_null(a.missing, `null`)",
    "contains('abc', 'b')",
    "contains(list, `1`)",
    "contains(`[true]`, `1`)",
    # comparison with a string literal
    "n == 'x'",
    "a.b[0].d != 'x'",
    "a.missing == 'x'",
    "a.missing != 'x'",
]


@pytest.mark.parametrize(
    "expression",
    ["join(',', list)", "starts_with(n, 'x')", "length(n)", "contains(n, 'x')", "contains('abc', `1`)"],
)
def test_type_errors_match_the_interpreter(expression: str) -> None:
    errors = (jmespath.exceptions.JMESPathTypeError, TypeError)  # jmespath raises either
    with pytest.raises(errors) as expected:
        jmespath.search(expression, DATA)
    with pytest.raises(errors) as got:
        Compiler(GENERIC_FUNCTIONS).compile(expression)(DATA, EvalContext())
    assert (type(got.value), str(got.value)) == (type(expected.value), str(expected.value))


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_compiled_matches_interpreter(expression: str) -> None:
    compiled = Compiler(GENERIC_FUNCTIONS).compile(expression)
    assert compiled(DATA, EvalContext()) == jmespath.search(expression, DATA)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("a.[", "invalid JMESPath expression"),
        ("nope(a)", "unknown function nope()"),
        ("to_json(a, b)", "to_json() takes 1 arguments, got 2"),
        ("length()", "length() takes 1 arguments, got 0"),
        ("rule(x)", "rule() takes a quoted name first"),
        ("enum('missing', a)", "undefined table 'missing'"),
        ("if_else(a, b)", "if_else() takes 3 arguments"),
    ],
)
def test_bad_expressions_fail_at_compile_time(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=None) as info:
        Compiler(GENERIC_FUNCTIONS).compile(expression)
    assert message in str(info.value)


def test_rule_references_are_late_bound_and_checked() -> None:
    rules: dict[str, Any] = {}
    compiler = Compiler(GENERIC_FUNCTIONS, rules=rules)
    call = compiler.compile("rule('double', n)")
    compiler.compile("rule('undefined', n)")
    rules["double"] = compiler.compile("[@, @]")
    assert call({"n": 2}, EvalContext()) == [2, 2]
    assert call({"n": None}, EvalContext()) is None  # a rule of nothing is nothing
    assert compiler.missing_references() == ["undefined"]


def test_enum_lookup_with_fallback() -> None:
    compiler = Compiler(
        GENERIC_FUNCTIONS, enums={"finish": {"end_turn": "stop", "*": "stop2"}, "plain": {"a": 1}}
    )
    assert compiler.compile("enum('finish', v)")({"v": "end_turn"}, EvalContext()) == "stop"
    assert compiler.compile("enum('finish', v)")({"v": "other"}, EvalContext()) == "stop2"
    assert compiler.compile("enum('plain', v)")({"v": "other"}, EvalContext()) is None
    assert compiler.compile("enum('finish', v)")({}, EvalContext()) is None


def test_if_else_is_lazy() -> None:
    compiler = Compiler(GENERIC_FUNCTIONS)
    expression = compiler.compile("if_else(type(@) == 'string', @, join('', [?type == 'text'].text))")
    assert expression("plain", EvalContext()) == "plain"
    assert expression([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], EvalContext()) == "ab"


def test_context_functions_see_the_request_state_and_clock() -> None:
    compiler = Compiler(GENERIC_FUNCTIONS)
    ctx = EvalContext(request={"stream": True}, state={"id": "msg_1"}, created=1700000000)
    assert compiler.compile("[request().stream, state().id, now()]")({}, ctx) == [True, "msg_1", 1700000000]


def test_ordering_of_mixed_types_is_null_not_an_error() -> None:
    compiler = Compiler(GENERIC_FUNCTIONS)
    assert compiler.compile("s < `1`")({"s": ""}, EvalContext()) is None
    assert compiler.compile("s < 'b'")({"s": "a"}, EvalContext()) is True


def _tallied(pure: bool) -> tuple[Compiler, list[Any]]:
    """A compiler with `tally(x)`: returns x and records the call."""
    calls: list[Any] = []

    def tally(_ctx: EvalContext, value: Any) -> Any:
        calls.append(value)
        return value

    return Compiler({**GENERIC_FUNCTIONS, "tally": FunctionSpec(tally, 1, 1, pure=pure)}), calls


def test_a_lookup_over_the_whole_request_is_made_once_per_request() -> None:
    # per item, a table built from the whole request: N items must not build it N times
    compiler, calls = _tallied(pure=True)
    lookup = compiler.compile("[*].get(from_items(tally(request().pairs)), @)")
    request = {"pairs": [["a", 1], ["b", 2]]}
    ctx = EvalContext(request=request)
    assert lookup(["a", "b", "a", "c"], ctx) == [1, 2, 1]
    assert lookup(["b"], ctx) == [2]
    assert len(calls) == 1
    assert lookup(["a"], EvalContext(request={"pairs": [["a", 9]]})) == [9]  # a new request, a new table
    assert len(calls) == 2


def test_a_named_rule_over_the_request_is_made_once_per_request() -> None:
    calls: list[Any] = []
    rules: dict[str, Any] = {}

    def tally(_ctx: EvalContext, value: Any) -> Any:
        calls.append(value)
        return value

    compiler = Compiler({**GENERIC_FUNCTIONS, "tally": FunctionSpec(tally, 1, 1)}, rules=rules)
    rules["table"] = compiler.compile("from_items(tally(request().pairs))")
    lookup = compiler.compile("[*].get(rule('table', @), @)")
    assert lookup(["a", "a", "a"], EvalContext(request={"pairs": [["a", 1]]})) == [1, 1, 1]
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("expression", "items", "expected"),
    [
        ("[*].counter('n')", [1, 1, 1], [0, 1, 2]),  # a counter moves on every call
        ("[*].rule('next', request())", [1, 1, 1], [0, 1, 2]),  # a rule may read anything
        ("[*].[state().n, request().k]", [1, 1], [[7, "v"], [7, "v"]]),
        ("map(&{k: length(request().k)}, @)", [1, None], [{"k": 1}, None]),  # a multi-select of null is null
        ("[*].join('', [request().k, to_string(@)])", [1, 2], ["v1", "v2"]),
    ],
)
def test_what_can_change_within_a_request_is_evaluated_every_time(
    expression: str, items: list[Any], expected: Any
) -> None:
    rules: dict[str, Any] = {}
    compiler = Compiler(GENERIC_FUNCTIONS, rules=rules)
    rules["next"] = compiler.compile("counter('next')")
    ctx = EvalContext(request={"k": "v"}, state={"n": 7})
    assert compiler.compile(expression)(items, ctx) == expected


def test_an_impure_function_over_the_request_is_called_every_time() -> None:
    compiler, calls = _tallied(pure=False)
    assert compiler.compile("[*].tally(request().k)")([1, 2, 3], EvalContext(request={"k": "v"})) == ["v"] * 3
    assert len(calls) == 3
