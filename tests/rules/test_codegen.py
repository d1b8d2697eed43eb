"""The generated code's fast paths: each case here would catch a slip in one of them.

Results are compared type and all (`true` is not `1`, `0` is not `false`), which `==` would miss.
"""

from __future__ import annotations

from typing import Any

import jmespath
import pytest

from gateway.rules.builtins import FunctionSpec
from gateway.rules.compiler import Compiler, ExpressionError, is_false
from gateway.rules.context import EvalContext
from gateway.rules.functions import GENERIC_FUNCTIONS
from gateway.rules.template import RuleError, compile_rule

DATA: dict[str, Any] = {
    "zero": 0,
    "one": 1,
    "half": 0.5,
    "yes": True,
    "no": False,
    "empty": "",
    "text": "x",
    "none": None,
    "list": [],
    "obj": {},
    "items": [
        {"type": "text", "n": 1, "ok": True},
        {"type": "image", "n": 0, "ok": False},
        {"type": "text", "n": 2},
        "not an object",
        {"type": "text", "n": None},
    ],
    "table": {"a": {"v": 1}, "b": {"v": None}, "c": 3},
    "nested": [[1, [2]], 3, [], None],
}


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same JSON type all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def run(expression: str, data: Any = DATA) -> Any:
    rules: dict[str, Any] = {}
    compiler = Compiler(GENERIC_FUNCTIONS, rules=rules)
    rules["pair"] = compiler.compile("[@, @]")
    return compiler.compile(expression)(data, EvalContext())


# each agrees with jmespath's interpreter, type and all
AGREEING = [
    # falsiness: 0 is true, '' [] {} null false are false
    "zero || 'x'",
    "half || 'x'",
    "empty || 'x'",
    "list || 'x'",
    "obj || 'x'",
    "none || 'x'",
    "no || 'x'",
    "yes || 'x'",
    "list && `1`",
    "zero && `1`",
    "obj && `1`",
    "text && empty",
    "!zero",
    "!half",
    "!empty",
    "!list",
    "!obj",
    "!none",
    "!no",
    "!text",
    "!!zero",
    # equality with literals: a boolean is not a number
    "one == `true`",
    "yes == `true`",
    "yes == `1`",
    "one == `1`",
    "half == `0.5`",
    "no == `0`",
    "zero == `0`",
    "zero == `false`",
    "no == `false`",
    "no != `0`",
    "zero != `0`",
    "yes != `true`",
    "one != `true`",
    "none == `null`",
    "missing == `null`",
    "empty == `null`",
    "list == `[]`",
    "obj == `{}`",
    "list == `{}`",
    "text == 'x'",
    "one == 'x'",
    "one == zero",
    "yes == one",
    "zero == no",
    "half == yes",
    "yes == yes",
    "no == no",
    "text == text",
    "list == obj",
    "items[3] == text",
    "table.c == `3`",
    "`[1]` == `[1]`",
    "no == `[]`",
    # ordering: numbers and strings (mixed types are null, see test_compiler)
    "one > `0`",
    "half < `1`",
    "zero <= `0`",
    "one >= `2`",
    "text < 'y'",
    "one < half",
    # filters: a comparison or a truthy field as the condition
    "items[?type == 'text'].n",
    "items[?n > `0`].type",
    "items[?ok].n",
    "items[?!ok].type",
    "items[?n == `0`].type",
    "items[?n != `null`] | length(@)",
    "items[?n].type",
    # and/or/not of comparisons are true, false or null: tested as Python booleans
    "items[?type == 'text' && n > `1`].n",
    "items[?type == 'image' || n > `1`].n",
    "items[?!(type == 'text' || n < `1`)]",
    "items[?n < text || `true`].type",
    "items[?ok && `false`].n",
    "items[*].n",
    "items[].type",
    "table.*.v",
    "table.*",
    "nested[]",
    "nested[][]",
    "items[-1].type",
    "items[-9]",
    "items[4].n",
    "items[5]",
    "items[1:3].n",
    "text[0]",
    "{a: one, b: missing, c: {d: text}}",
    "[one, missing, [text]]",
    "none.{a: one}",
    "none.[one]",
    '`{"a": 1}`.a',
    "'abc' | length(@)",
    "`[1, 2]`[0]",
    "not_null(missing, none, zero)",
    "type(zero)",
    "type(yes)",
    "type(half)",
    "type(missing)",
    "length(items)",
    "join('-', items[?type == 'text'].type)",
    "contains(items[].type, 'image')",
    'merge(table, `{"c": 4}`)',
    "sort_by(items[?n != `null`], &n)[].n",
    "map(&type, items[?type == 'text'])",
    # standard functions with a native fast path: the plain case and the ones it leaves to jmespath
    "min(items[?n != `null`].n)",
    "max(items[?n != `null`].n)",
    "min(`[2, 1.5, 3]`)",
    "max(['b', 'a'])",
    "min(list)",
    "floor(half)",
    "ceil(half)",
    "floor(one)",
]


@pytest.mark.parametrize("expression", AGREEING)
def test_agrees_with_the_interpreter_type_and_all(expression: str) -> None:
    expected = jmespath.search(expression, DATA)
    got = run(expression)
    assert same(got, expected), (got, expected)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("zero || 'x'", 0),
        ("empty || 'x'", "x"),
        ("list && `1`", []),
        ("one < text", None),  # mixed types: null, where jmespath raises
        ("text > `1`", None),
        ("yes < `2`", None),  # a boolean is not a number
        ("list < `1`", None),
        ("if_else(zero, 'then', 'else')", "then"),
        ("if_else(list, 'then', 'else')", "else"),
        ("if_else(one > `0`, 'then', 'else')", "then"),
        ("if_else(text < `1`, 'then', 'else')", "else"),
        ("client()", None),
        ("text && rule('pair', text)", ["x", "x"]),
        ("empty && rule('pair', empty)", ""),
        ("if_else(text, rule('pair', text), 'no')", ["x", "x"]),
        ("if_else(none, rule('pair', none), 'no')", "no"),
        (
            "{a: rule('pair', @), b: missing.{c: @}, c: missing.[@]}",
            {"a": [DATA, DATA], "b": None, "c": None},
        ),
        ("add(one, `2`)", 3),
        ("add(one)", 1),
        ("add(one, half)", 1.5),
        ("add(one, none)", 1),
        ("add(zero, `2`, one)", 3),
        (
            "[one < text && `true`, !(one < text), !(one > `0`), one < text || `false`]",
            [None, True, False, False],
        ),
        ("if_else(one < text || zero < `1`, 'then', 'else')", "then"),
        ("if_else(one < text && `true`, 'then', 'else')", "else"),
    ],
)
def test_fast_paths_keep_jmespath_values(expression: str, expected: Any) -> None:
    assert same(run(expression), expected)


@pytest.mark.parametrize(
    "expression",
    ['min(`[1, "a"]`)', "max(`[true]`)", 'min(`["a", 1]`)', "floor(yes)", "ceil(text)", "min(text)"],
)
def test_fast_paths_leave_type_errors_to_jmespath(expression: str) -> None:
    errors = (jmespath.exceptions.JMESPathTypeError, TypeError)
    with pytest.raises(errors) as expected:
        jmespath.search(expression, DATA)
    with pytest.raises(errors) as got:
        run(expression)
    assert (type(got.value), str(got.value)) == (type(expected.value), str(expected.value))


def test_add_of_a_boolean_is_still_an_error() -> None:
    with pytest.raises(TypeError, match="add\\(\\) takes numbers, got a boolean"):
        run("add(one, yes)")


def test_is_false_is_jmespath_falsiness() -> None:
    assert [is_false(x) for x in (None, False, "", [], {})] == [True] * 5
    assert [is_false(x) for x in (0, 0.0, True, "0", [0], {"a": None})] == [False] * 6


def test_a_deep_expression_is_split_into_functions() -> None:
    # Python caps nesting; deeper than the generator inlines, a node becomes a function of its own
    depth = 60
    expression = "{a: " * depth + "one || zero" + "}" * depth
    expected = jmespath.search(expression, DATA)
    assert same(run(expression), expected)
    filters = "items" + "[?type == 'text' && (n || `1`)]" * depth + ".n"
    assert same(run(filters), jmespath.search(filters, DATA))


def test_the_context_functions_are_read_in_place_unless_redefined() -> None:
    ctx = EvalContext(request={"r": 1}, client_request={"c": 2}, state={"s": 3}, created=4)
    expression = "[request().r, client().c, state().s, now()]"
    assert Compiler(GENERIC_FUNCTIONS).compile(expression)({}, ctx) == [1, 2, 3, 4]
    assert Compiler(GENERIC_FUNCTIONS).compile("client().r")(None, EvalContext(request={"r": 1})) == 1
    mine = FunctionSpec(lambda _ctx: {"r": "mine"}, 0, 0)
    assert Compiler({**GENERIC_FUNCTIONS, "request": mine}).compile("request().r")(None, ctx) == "mine"


def test_errors_are_found_in_the_interpreter_order() -> None:
    # a filter's projected expression is compiled before its condition, map's expression before its array
    with pytest.raises(ExpressionError, match=r"unknown function second\(\)"):
        Compiler(GENERIC_FUNCTIONS).compile("items[?first(@)].second(@)")
    with pytest.raises(ExpressionError, match=r"unknown function first\(\)"):
        Compiler(GENERIC_FUNCTIONS).compile("map(&first(@), second(@))")


def test_an_error_inside_a_template_names_its_location() -> None:
    with pytest.raises(RuleError) as info:
        compile_rule({"a": "one", "b": [{"c": "length(one, zero)"}]}, Compiler(GENERIC_FUNCTIONS), "r")
    assert info.value.where == "r.b[0].c"
    assert info.value.reason == "length() takes 1 arguments, got 2"


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ({"a": "nope(x)", "b": "a.["}, "r.a"),
        ({"a": "a.[", "b": "nope(x)"}, "r.a"),
        ({"a": ["one", {"b": "length()"}], "c": "a.["}, "r.a[1].b"),
        ({"a": "one", "b": {"c": {1, 2}}, "d": "nope(x)"}, "r.b.c"),
    ],
)
def test_the_first_error_of_a_template_is_reported(spec: Any, where: str) -> None:
    with pytest.raises(RuleError) as info:
        compile_rule(spec, Compiler(GENERIC_FUNCTIONS), "r")
    assert info.value.where == where


def test_a_template_evaluates_its_fields_in_order() -> None:
    rule = compile_rule(
        {"a": "counter('n')", "b": "missing", "c!": "missing", "d": ["counter('n')", "missing", 1.5]},
        Compiler(GENERIC_FUNCTIONS),
        "r",
    )
    out = rule(DATA, EvalContext())
    assert same(out, {"a": 0, "c": None, "d": [1, 1.5]})
    assert list(out) == ["a", "c", "d"]
