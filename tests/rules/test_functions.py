"""The generic functions, called through expressions as a dialect would call them."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.rules.compiler import Compiler
from gateway.rules.context import EvalContext
from gateway.rules.functions import GENERIC_FUNCTIONS, RuleFailure


def run(expression: str, data: Any = None, ctx: EvalContext | None = None) -> Any:
    return Compiler(GENERIC_FUNCTIONS).compile(expression)(data, ctx or EvalContext())


@pytest.mark.parametrize(
    ("expression", "data", "expected"),
    [
        ("from_json(s)", {"s": '{"city": "Paris"}'}, {"city": "Paris"}),
        ("from_json(s)", {"s": "{not json"}, None),
        ("from_json(s)", {"s": 3}, None),
        ("to_json(o)", {"o": {"a": [1, "x"]}}, '{"a":[1,"x"]}'),
        (
            "parse_data_url(u)",
            {"u": "data:image/png;base64,iVBOR"},
            {"mime_type": "image/png", "data": "iVBOR"},
        ),
        ("parse_data_url(u)", {"u": "https://example.com/a.png"}, None),
        ("parse_data_url(u)", {"u": "data:text/plain,hello"}, None),
        ("concat(a, b, c)", {"a": [1], "b": None, "c": [2, 3]}, [1, 2, 3]),
        ("concat(a, b)", {"a": [1], "b": "x"}, [1, "x"]),
        ("add(a, b, c)", {"a": 1, "b": None, "c": 2.5}, 3.5),
        ("get(o, k)", {"o": {"x": 1}, "k": "x"}, 1),
        ("get(o, k, 'd')", {"o": {"x": 1}, "k": "y"}, "d"),
        ("get(l, `1`)", {"l": ["a", "b"]}, "b"),
        ("put(o, 'b', `2`)", {"o": {"a": 1}}, {"a": 1, "b": 2}),
        ("drop_nulls(o)", {"o": {"a": None, "b": 0}}, {"b": 0}),
        ("lower(s)", {"s": "ABC"}, "abc"),
        ("floats_to_base64(v)", {"v": [1.0, -2.5]}, "AACAPwAAIMA="),
        ("omit(o, 'a', 'c')", {"o": {"a": 1, "b": None, "c": 3}}, {"b": None}),
        ("omit(o, 'x')", {"o": {"a": 1}}, {"a": 1}),
        ("omit(o, 'a')", {"o": "text"}, "text"),
        ("messages[*].omit(@, 'name')", {"messages": [{"role": "user", "name": "n"}]}, [{"role": "user"}]),
        ("matches(s, '^[A-Za-z0-9]{9}$')", {"s": "D681PevKs"}, True),
        ("matches(s, '^[A-Za-z0-9]{9}$')", {"s": "call_0fypS1hVX"}, False),
        ("matches(s, 'ab')", {"s": None}, False),
        ("hash_id(s, `9`)", {"s": "call_0fypS1hVX"}, "CRRwS8Mie"),
        ("length(hash_id(s, `40`))", {"s": ""}, 40),
        ("hash_id(s, `9`)", {"s": None}, None),
        ("upper(s)", {"s": "abc"}, "ABC"),
        ("from_items(p)", {"p": [["a", 1], ["b", None], ["a", 3]]}, {"a": 3, "b": None}),
        ("from_items(p)", {"p": [["a", 1], [2, "x"], ["only"], "s"]}, {"a": 1}),
        ("from_items(p)", {"p": None}, None),
        (
            "get(from_items(l[].[id, name]), 'c2')",
            {"l": [{"id": "c1", "name": "f"}, {"id": "c2", "name": "g"}]},
            "g",
        ),
        (
            "merge_each(l, {m: 'x'})",
            {"l": [{"a": 1}, {"a": 2, "m": "y"}, 3]},
            [{"a": 1, "m": "x"}, {"a": 2, "m": "x"}, 3],
        ),
        ("merge_each(l, `null`)", {"l": [{"a": 1}]}, [{"a": 1}]),
        ("merge_each(l, {m: 'x'})", {"l": None}, None),
        (
            "numbered(l, 'index')",
            {"l": [{"a": 1}, "s", {"index": 9}]},
            [{"a": 1, "index": 0}, "s", {"index": 2}],
        ),
        ("numbered(l, 'index')", {"l": None}, None),
        ("subtract(a, b)", {"a": 5000, "b": 1}, 4999),
        ("subtract(a, b)", {"a": None, "b": 2.5}, -2.5),
        ("split(s, ':')", {"s": "ThrottlingException:http://x"}, ["ThrottlingException", "http", "//x"]),
        ("split(s, '#')[-1]", {"s": "ValidationException"}, "ValidationException"),
        ("split(s, ':')", {"s": None}, None),
        (
            "merge_consecutive(m, 'role', 'content')",
            {
                "m": [
                    {"role": "user", "content": [1]},
                    {"role": "user", "content": [2]},
                    {"role": "assistant", "content": [3]},
                    {"role": "user", "content": [4]},
                ]
            },
            [
                {"role": "user", "content": [1, 2]},
                {"role": "assistant", "content": [3]},
                {"role": "user", "content": [4]},
            ],
        ),
    ],
)
def test_function(expression: str, data: Any, expected: Any) -> None:
    assert run(expression, data) == expected


def test_merge_consecutive_does_not_mutate_its_input() -> None:
    messages = [{"role": "user", "content": [1]}, {"role": "user", "content": [2]}]
    run("merge_consecutive(@, 'role', 'content')", messages)
    assert messages == [{"role": "user", "content": [1]}, {"role": "user", "content": [2]}]


def test_counter_counts_per_request_and_name() -> None:
    ctx = EvalContext()
    assert [run("counter('tools')", None, ctx) for _ in range(3)] == [0, 1, 2]
    assert run("counter('other')", None, ctx) == 0
    assert run("counter('tools')", None, EvalContext()) == 0


def test_random_id_has_prefix_and_is_unique() -> None:
    first, second = run("random_id('call_')"), run("random_id('call_')")
    assert first.startswith("call_") and len(first) == 5 + 24
    assert first != second


def test_fail_raises_with_the_message() -> None:
    with pytest.raises(RuleFailure, match="not supported"):
        run("fail('input_audio is not supported')")


def test_add_rejects_booleans() -> None:
    with pytest.raises(TypeError):
        run("add(`true`, `1`)")


@pytest.mark.parametrize("expression", ["subtract(`true`, `1`)", "subtract('5', `1`)"])
def test_subtract_takes_numbers_only(expression: str) -> None:
    with pytest.raises(TypeError):
        run(expression)


def test_upstream_header_reads_the_reply_headers_in_any_case() -> None:
    ctx = EvalContext(upstream_headers={"X-Amzn-RequestId": "abc-1"})
    assert run("upstream_header('x-amzn-requestid')", None, ctx) == "abc-1"
    assert run("upstream_header('X-Amzn-RequestId')", None, ctx) == "abc-1"
    assert run("upstream_header('retry-after')", None, ctx) is None
    assert run("upstream_header('x-amzn-requestid')") is None  # before the upstream replied


def test_hash_id_is_deterministic_alphanumeric_and_spread() -> None:
    ids = {run("hash_id(s, `9`)", {"s": f"call_{i}"}) for i in range(500)}
    assert len(ids) == 500
    assert all(len(i) == 9 and i.isalnum() and i.isascii() for i in ids)
    assert run("hash_id(s, `9`)", {"s": "call_7"}) == run("hash_id(s, `9`)", {"s": "call_7"})
    with pytest.raises(ValueError, match="1 to 40"):
        run("hash_id(s, `0`)", {"s": "x"})
