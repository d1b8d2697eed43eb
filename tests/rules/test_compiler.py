"""The closure compiler must agree with jmespath's own interpreter, and fail early on bad input."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest

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
