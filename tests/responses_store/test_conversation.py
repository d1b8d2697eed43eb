"""A request's input as stored input items (each valid as the spec's ItemResource, with an id), and the
conversation a stored response continues into."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.responses_store.conversation import continued_items, stored_items
from gateway.responses_store.stored import StoredResponse
from tests.support.openai_spec import assert_valid, spec_available

INPUTS: list[Any] = [
    "Hello",
    [{"role": "user", "content": "Hi"}],
    [
        {"role": "developer", "content": "Be brief."},
        {"role": "system", "content": [{"type": "input_text", "text": "x"}]},
    ],
    [{"role": "assistant", "content": "Hello!"}],
    [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello!"}]}],
    [{"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}],
    [{"type": "function_call_output", "call_id": "call_1", "output": "42"}],
    [{"type": "reasoning", "summary": [], "encrypted_content": "gw:[]"}],
]


@pytest.mark.parametrize("value", INPUTS)
def test_each_stored_item_is_an_item_resource_with_an_id(value: Any) -> None:
    items = stored_items(value)
    assert items and all(isinstance(item["id"], str) and len(item["id"]) > 20 for item in items)
    if spec_available():
        for item in items:
            assert_valid("ItemResource", item)


def test_ids_the_client_gave_are_kept_and_items_are_copies() -> None:
    given = {"type": "function_call", "id": "fc_mine", "call_id": "c", "name": "f", "arguments": "{}"}
    [item] = stored_items([given])
    assert item["id"] == "fc_mine" and item["status"] == "completed"
    assert "status" not in given


def test_a_string_is_one_user_message() -> None:
    [item] = stored_items("Hello")
    assert (item["type"], item["role"], item["content"]) == (
        "message",
        "user",
        [{"type": "input_text", "text": "Hello"}],
    )


def test_the_conversation_is_the_input_the_output_then_the_new_input() -> None:
    first_input = stored_items("Weather?")
    call = {"id": "fc_1", "type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}
    entry = StoredResponse("team-a", "m", {"id": "resp_1", "output": [call]}, first_input)
    items = continued_items(entry, [{"type": "function_call_output", "call_id": "c", "output": "Sunny"}])
    assert [item["type"] for item in items] == ["message", "function_call", "function_call_output"]
    assert items[0] == first_input[0] and items[1] == call
