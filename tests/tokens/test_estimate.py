"""The local count of an OpenAI chat request: OpenAI's published examples come out as its API counted
them, and every other part of a request is priced by the documented rule."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest

from gateway.tokens import estimate_input_tokens
from gateway.tokens.documents import pdf_pages
from gateway.tokens.tokenizer import count_texts

# openai-cookbook, "How to count tokens with tiktoken": prompt tokens as OpenAI's API reported them
JARGON = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon "
        "into plain English.",
    },
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for "
        "increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]
WEATHER_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "The city and state, e.g. San Francisco, CA",
                    },
                    "unit": {
                        "type": "string",
                        "description": "The unit of temperature to return",
                        "enum": ["celsius", "fahrenheit"],
                    },
                },
                "required": ["location"],
            },
        },
    }
]
WEATHER_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful assistant that can answer to questions about the weather.",
    },
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]


def _user(content: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}]}


BARE = 3 + 1 + 3  # a user message with empty content: 3, the role, the reply's priming


def test_openai_cookbook_messages_count_as_the_api_counted_them() -> None:
    assert estimate_input_tokens({"model": "gpt-4o", "messages": JARGON}) == 124


def test_openai_cookbook_tools_count_as_the_api_counted_them() -> None:
    request = {"model": "gpt-4o", "messages": WEATHER_MESSAGES, "tools": WEATHER_TOOLS}
    assert estimate_input_tokens(request) == 101


def test_text_parts_count_as_their_text() -> None:
    as_string = estimate_input_tokens(_user("tiktoken is great!"))
    as_parts = estimate_input_tokens(_user([{"type": "text", "text": "tiktoken is great!"}]))
    assert as_string == as_parts == BARE + 6


def _png(width: int, height: int) -> str:
    header = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">II", width, height) + b"\x08\x06\0\0\0"
    return "data:image/png;base64," + base64.b64encode(header).decode()


@pytest.mark.parametrize(
    ("image_url", "tokens"),
    [
        ({"url": _png(2048, 4096), "detail": "high"}, 1105),
        ({"url": _png(2048, 4096), "detail": "low"}, 85),
        ({"url": "https://example.com/cat.png"}, 765),
        ("https://example.com/cat.png", 765),  # a bare string, as some clients send it
    ],
)
def test_images_by_openai_rule(image_url: Any, tokens: int) -> None:
    assert estimate_input_tokens(_user([{"type": "image_url", "image_url": image_url}])) == BARE + tokens


def _file(mime: str, data: bytes) -> dict[str, Any]:
    return {
        "type": "file",
        "file": {"filename": "f", "file_data": f"data:{mime};base64,{base64.b64encode(data).decode()}"},
    }


PDF_TWO_PAGES = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >> endobj\n"
    b"3 0 obj << /Type /Page /Parent 2 0 R >> endobj\n4 0 obj << /Type/Page /Parent 2 0 R >> endobj\n%%EOF"
)


@pytest.mark.parametrize(
    ("part", "tokens"),
    [
        (_file("text/plain", b"tiktoken is great!"), 6),
        (_file("application/json", b'{"a": 1}'), count_texts(['{"a": 1}'])),
        (_file("application/pdf", PDF_TWO_PAGES), 3000),
        (_file("application/octet-stream", b"\0" * 4001), 1001),
        ({"type": "file", "file": {"file_id": "file-abc"}}, 0),  # an upload the gateway cannot see
        ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}, 0),
    ],
)
def test_documents_by_the_documented_rule(part: dict[str, Any], tokens: int) -> None:
    assert estimate_input_tokens(_user([part])) == BARE + tokens


def test_pdf_pages_hidden_in_object_streams_are_guessed_from_the_size() -> None:
    assert pdf_pages(PDF_TWO_PAGES) == 2
    assert pdf_pages(b"%PDF-1.7 " + b"\0" * 250_000) == 3
    assert pdf_pages(b"%PDF-1.7") == 1


def test_tool_calls_and_results() -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    request = {
        "model": "m",
        "messages": [
            {"role": "assistant", "content": None, "tool_calls": [call, call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
    }
    each_call = 3 + count_texts(["get_weather", '{"city":"Paris"}'])
    assistant = 3 + count_texts(["assistant"]) + 2 * each_call
    tool = 3 + count_texts(["tool", "sunny"])
    assert estimate_input_tokens(request) == assistant + tool + 3


def test_schema_keywords_the_cookbook_leaves_out_count_as_json() -> None:
    nested = {"type": "array", "description": "Paths.", "items": {"type": "string"}}
    tool = {
        "type": "function",
        "function": {"name": "read", "parameters": {"type": "object", "properties": {"paths": nested}}},
    }
    got = estimate_input_tokens({"model": "m", "messages": [], "tools": [tool]})
    expected = 3 + 7 + 3 + 3 + 12 + count_texts(["read:", "paths:array:Paths", '{"items":{"type":"string"}}'])
    assert got == expected


def test_other_tools_and_parts_count_as_their_json() -> None:
    server_tool = {"type": "web_search", "max_uses": 5}
    got = estimate_input_tokens({"model": "m", "messages": [], "tools": [server_tool]})
    assert got == 3 + count_texts(['{"type":"web_search","max_uses":5}'])  # no function: no 12 at the end
    odd_part = {"type": "thing", "thing": "x"}
    assert estimate_input_tokens(_user([odd_part])) == BARE + count_texts(['{"type":"thing","thing":"x"}'])


def test_a_json_schema_response_format_counts_as_json() -> None:
    schema = {"name": "answer", "schema": {"type": "object"}}
    request = {**_user(""), "response_format": {"type": "json_schema", "json_schema": schema}}
    assert estimate_input_tokens(request) == BARE + count_texts(
        ['{"name":"answer","schema":{"type":"object"}}']
    )
    assert estimate_input_tokens({**_user(""), "response_format": {"type": "json_object"}}) == BARE


def test_what_is_not_prompt_is_not_counted() -> None:
    reasoning = {
        "role": "assistant",
        "content": "Hi",
        "reasoning_content": "long thoughts " * 50,
        "reasoning_details": [{"type": "reasoning.text", "text": "long thoughts " * 50, "signature": "sig"}],
    }
    plain = {"role": "assistant", "content": "Hi"}
    knobs = {"max_tokens": 100, "temperature": 0.5, "tool_choice": "auto", "stop": ["x"], "stream": True}
    assert estimate_input_tokens({"model": "m", "messages": [reasoning], **knobs}) == estimate_input_tokens(
        {"model": "m", "messages": [plain]}
    )


@pytest.mark.parametrize(
    "request_body",
    [
        {},
        {"messages": None, "tools": None},
        {"messages": ["not a message", {"role": 5, "content": 7, "name": None}]},
        {"messages": [{"role": "user", "content": [None, "x", {"type": "image_url", "image_url": None}]}]},
        {"messages": [{"role": "assistant", "tool_calls": [None, {"function": None}]}]},
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "file", "file": {"file_data": "data:text/plain;base64,@@@"}}],
                }
            ]
        },
        {"tools": "nope"},
        {
            "tools": [
                {"type": "function", "function": {"name": "f", "parameters": {"properties": {"a": "string"}}}}
            ]
        },
        {
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "parameters": {"properties": {"a": {"type": ["string", "null"], "enum": [1, None]}}}
                    },
                }
            ]
        },
    ],
)
def test_odd_shapes_are_counted_not_refused(request_body: dict[str, Any]) -> None:
    """The canonical request was validated before; what is left odd is counted as far as it goes."""
    assert estimate_input_tokens(request_body) >= 3
