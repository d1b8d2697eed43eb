"""The cache key: stable whatever the order of the body's keys, blind to the fields that do not change
the answer, and different for anything that does."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.response_cache.key import IGNORED_FIELDS, cache_key

BODY: dict[str, Any] = {
    "model": "gpt",
    "messages": [{"role": "user", "content": "hi", "name": "x"}],
    "temperature": 0.2,
    "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"b": 1, "a": 2}}},
}


def key(body: dict[str, Any], scope: str = "s", alias: str = "gpt", operation: str = "chat") -> str:
    return cache_key(scope, alias, operation, body)


def test_the_key_is_a_sha256_in_hex() -> None:
    assert len(key(BODY)) == 64
    int(key(BODY), 16)


def test_key_order_at_any_level_does_not_matter() -> None:
    reordered = {
        "response_format": {"json_schema": {"schema": {"a": 2, "b": 1}, "name": "a"}, "type": "json_schema"},
        "temperature": 0.2,
        "messages": [{"name": "x", "content": "hi", "role": "user"}],
        "model": "gpt",
    }
    assert key(reordered) == key(BODY)


@pytest.mark.parametrize("field", sorted(IGNORED_FIELDS))
def test_fields_that_do_not_change_the_answer_are_left_out(field: str) -> None:
    assert key({**BODY, field: {"someone": "else"}}) == key(BODY)


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.3},
        {"messages": [{"role": "user", "content": "hi!"}]},
        {"stream": True},  # a stream and a JSON answer are different bytes
        {"stream_options": {"include_usage": True}},  # and so is a stream with its usage chunk
        {"store": True},
        {"n": 2},
        {"seed": 1},
    ],
)
def test_what_changes_the_answer_changes_the_key(change: dict[str, Any]) -> None:
    assert key({**BODY, **change}) != key(BODY)


def test_the_alias_the_operation_and_the_scope_are_part_of_the_key() -> None:
    assert key(BODY, alias="other") != key(BODY)
    assert key(BODY, operation="messages") != key(BODY)
    assert key(BODY, scope="other-targets") != key(BODY)


def test_the_ignored_fields_are_the_documented_ones() -> None:
    assert {
        "model",
        "user",
        "metadata",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
    } == IGNORED_FIELDS


def test_the_relayed_client_headers_are_part_of_the_key() -> None:
    plain = cache_key("s", "a", "messages", BODY, ["2023-06-01", None])
    assert cache_key("s", "a", "messages", BODY, ["2023-06-01", None]) == plain
    assert cache_key("s", "a", "messages", BODY, ["2023-06-01", "some-beta"]) != plain


def test_an_owner_makes_the_entry_its_own() -> None:
    shared = cache_key("s", "a", "responses", BODY)
    assert cache_key("s", "a", "responses", BODY, owner=None) == shared
    assert cache_key("s", "a", "responses", BODY, owner="team-a") != shared
    assert cache_key("s", "a", "responses", BODY, owner="team-a") != cache_key(
        "s", "a", "responses", BODY, owner="team-b"
    )
