"""The official openai SDK against the gateway, with an `anthropic`-dialect provider pointed at
FakeAnthropic: what the fake receives is checked against the Messages API shape, and what the client
gets (bodies and every stream chunk) against the OpenAI spec."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import openai
import pytest

from tests.support.fake_upstreams import (
    ABORT,
    ANTHROPIC_MODEL,
    FakeAnthropic,
    Part,
    Reply,
    anthropic_error,
    anthropic_event,
    anthropic_message,
    anthropic_stream,
    anthropic_stream_error,
    anthropic_usage,
    json_reply,
    rechunk,
    sse_reply,
    text_block,
    tool_use_block,
)
from tests.support.gates import Gate
from tests.support.openai_spec import CHAT, COMPLETION, assert_error_body, assert_valid, assert_valid_stream
from tests.support.routes import ANTHROPIC_ALIAS, ANTHROPIC_KEY, ANTHROPIC_UPSTREAM_MODEL, CLIENT_KEY
from tests.support.sdk_payloads import PNG_B64, TIME_PARAMS, TIME_TOOL, WEATHER_PARAMS, WEATHER_TOOL

USER = {"role": "user", "content": "Say hello"}
USER_BLOCKS = {"role": "user", "content": [{"type": "text", "text": "Say hello"}]}
TWO_TOOL_USES = [
    tool_use_block("toolu_01A", "get_weather", {"city": "Paris"}),
    tool_use_block("toolu_01B", "get_time", {"tz": "Europe/Paris"}),
]


def assert_anthropic_headers(headers: dict[str, str]) -> None:
    assert headers["x-api-key"] == ANTHROPIC_KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"].startswith("application/json")
    assert "authorization" not in headers
    assert all(CLIENT_KEY not in value for value in headers.values()), headers


# ---- request translation ---------------------------------------------------------------------------


def test_plain_chat(client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    usage = anthropic_usage(input_tokens=25, output_tokens=9, cache_creation=3, cache_read=100)
    fake_anthropic.enqueue(json_reply(anthropic_message(usage=usage)))
    raw = client.chat.completions.with_raw_response.create(model=ANTHROPIC_ALIAS, messages=[USER])
    assert raw.status_code == 200
    assert_valid(CHAT, json.loads(raw.content))
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.id == "msg_01FAKE"
    assert completion.model == ANTHROPIC_MODEL
    assert completion.choices[0].message.content == "Hello from the fake Anthropic upstream."
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
        completion.usage.total_tokens,
    ) == (
        128,
        9,
        137,
    )
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 100

    rec = fake_anthropic.only()
    assert (rec.method, rec.path) == ("POST", "/v1/messages")
    assert_anthropic_headers(rec.headers)
    assert rec.json == {"model": ANTHROPIC_UPSTREAM_MODEL, "messages": [USER_BLOCKS], "max_tokens": 4096}


async def test_system_and_sampling_parameters(
    async_client: openai.AsyncOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    await async_client.chat.completions.create(
        model=ANTHROPIC_ALIAS,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            USER,
        ],
        max_completion_tokens=100,
        temperature=1.7,
        stop="END",
        user="user-123",
    )
    sent = fake_anthropic.only().json
    assert sent == {
        "model": ANTHROPIC_UPSTREAM_MODEL,
        "system": "You are terse.\n\nAnswer in French.",
        "messages": [USER_BLOCKS],
        "max_tokens": 100,
        "stop_sequences": ["END"],
        "temperature": 1,
        "metadata": {"user_id": "user-123"},
    }


def test_multi_turn_with_tool_calls_and_tool_results(
    client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "toolu_01A",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "toolu_01B",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"tz": "Europe/Paris"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01A", "content": "18C, cloudy"},
        {"role": "tool", "tool_call_id": "toolu_01B", "content": [{"type": "text", "text": "14:05"}]},
    ]
    completion = client.chat.completions.create(
        model=ANTHROPIC_ALIAS,
        messages=messages,
        tools=[WEATHER_TOOL, TIME_TOOL],
        max_tokens=300,
    )
    assert completion.choices[0].message.content == "Hello from the fake Anthropic upstream."
    sent = fake_anthropic.only().json
    assert sent["system"] == "Use tools."
    assert sent["max_tokens"] == 300
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather and time in Paris?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Let me check."}, *TWO_TOOL_USES]},
        {
            "role": "user",  # both tool messages merged into one user turn
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18C, cloudy"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01B",
                    "content": [{"type": "text", "text": "14:05"}],
                },
            ],
        },
    ]
    assert sent["tools"] == [
        {"name": "get_weather", "description": "Current weather for a city", "input_schema": WEATHER_PARAMS},
        {"name": "get_time", "input_schema": TIME_PARAMS},
    ]
    assert sent["tool_choice"] == {"type": "auto"}


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        pytest.param("required", None, {"type": "any"}, id="required"),
        pytest.param("none", None, {"type": "none"}, id="none"),
        pytest.param(
            {"type": "function", "function": {"name": "get_time"}},
            None,
            {"type": "tool", "name": "get_time"},
            id="named",
        ),
        pytest.param("auto", False, {"type": "auto", "disable_parallel_tool_use": True}, id="no-parallel"),
    ],
)
def test_tool_choice(
    client: openai.OpenAI,
    fake_anthropic: FakeAnthropic,
    tool_choice: Any,
    parallel: bool | None,
    expected: Any,
) -> None:
    extra = {} if parallel is None else {"parallel_tool_calls": parallel}
    client.chat.completions.create(
        model=ANTHROPIC_ALIAS,
        messages=[USER],
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice=tool_choice,
        **extra,
    )
    assert fake_anthropic.only().json["tool_choice"] == expected


def test_images_become_base64_and_url_sources(client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    client.chat.completions.create(
        model=ANTHROPIC_ALIAS,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these."},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"},
                    },
                ],
            }
        ],
    )
    assert fake_anthropic.only().json["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare these."},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ],
        }
    ]


def test_response_format_json_schema_becomes_output_config(
    client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    client.chat.completions.create(
        model=ANTHROPIC_ALIAS,
        messages=[USER],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": True},
        },
    )
    assert fake_anthropic.only().json["output_config"] == {
        "format": {"type": "json_schema", "schema": schema}
    }


def test_unsupported_content_part_is_400(client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=ANTHROPIC_ALIAS, messages=[{"role": "user", "content": [audio]}])
    error = assert_error_body(caught.value.response.json(), code="unsupported_value")
    assert "input_audio" in error["message"]
    assert fake_anthropic.requests == []


def test_embeddings_are_not_supported(client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=ANTHROPIC_ALIAS, input="hello", encoding_format="float")
    assert_error_body(caught.value.response.json(), code="unsupported_endpoint")
    assert fake_anthropic.requests == []


# ---- response translation --------------------------------------------------------------------------


def test_tool_use_response_with_two_tool_calls(client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(json_reply(anthropic_message(content=[text_block("Checking."), *TWO_TOOL_USES])))
    raw = client.chat.completions.with_raw_response.create(
        model=ANTHROPIC_ALIAS, messages=[USER], tools=[WEATHER_TOOL, TIME_TOOL]
    )
    assert_valid(CHAT, json.loads(raw.content))
    choice = raw.parse().choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    calls = choice.message.tool_calls or []
    assert [(c.id, c.type, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("toolu_01A", "function", "get_weather", {"city": "Paris"}),
        ("toolu_01B", "function", "get_time", {"tz": "Europe/Paris"}),
    ]


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons(
    client: openai.OpenAI, fake_anthropic: FakeAnthropic, stop_reason: str, finish_reason: str
) -> None:
    fake_anthropic.enqueue(json_reply(anthropic_message(stop_reason=stop_reason)))
    raw = client.chat.completions.with_raw_response.create(model=ANTHROPIC_ALIAS, messages=[USER])
    assert_valid(CHAT, json.loads(raw.content))
    assert raw.parse().choices[0].finish_reason == finish_reason


# ---- streaming -------------------------------------------------------------------------------------


def test_stream_text_with_the_sync_sdk(client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    text = ""
    finish = None
    with client.chat.completions.create(model=ANTHROPIC_ALIAS, messages=[USER], stream=True) as stream:
        for chunk in stream:
            assert chunk.id == "msg_01FAKESTREAM"
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
    assert text == "Hello from the fake stream."
    assert finish == "stop"
    assert fake_anthropic.only().json == {
        "model": ANTHROPIC_UPSTREAM_MODEL,
        "messages": [USER_BLOCKS],
        "max_tokens": 4096,
        "stream": True,
    }


async def test_stream_text_with_the_async_sdk(async_client: openai.AsyncOpenAI) -> None:
    stream = await async_client.chat.completions.create(model=ANTHROPIC_ALIAS, messages=[USER], stream=True)
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from the fake stream."
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_stream_chunks_are_valid(http: aiohttp.ClientSession) -> None:
    body = {"model": ANTHROPIC_ALIAS, "messages": [USER], "stream": True}
    async with http.post("/v1/chat/completions", json=body) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        chunks = assert_valid_stream(await response.read())
    assert {c["id"] for c in chunks} == {"msg_01FAKESTREAM"}
    assert {c["model"] for c in chunks} == {ANTHROPIC_MODEL}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["finish_reason"] for c in chunks].count("stop") == 1
    assert all("usage" not in c or c["usage"] is None for c in chunks)  # not asked for


def test_stream_two_tool_calls_with_the_stream_helper(
    client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(sse_reply(anthropic_stream(pieces=["Checking."], tool_calls=TWO_TOOL_USES)))
    with client.chat.completions.stream(
        model=ANTHROPIC_ALIAS, messages=[USER], tools=[WEATHER_TOOL, TIME_TOOL]
    ) as stream:
        done = [
            (e.index, e.name, e.arguments) for e in stream if e.type == "tool_calls.function.arguments.done"
        ]
        final = stream.get_final_completion()
    assert done == [(0, "get_weather", '{"city": "Paris"}'), (1, "get_time", '{"tz": "Europe/Paris"}')]
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    assert [
        (c.id, c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls or []
    ] == [
        ("toolu_01A", "get_weather", {"city": "Paris"}),
        ("toolu_01B", "get_time", {"tz": "Europe/Paris"}),
    ]


async def test_stream_tool_call_deltas(http: aiohttp.ClientSession, fake_anthropic: FakeAnthropic) -> None:
    no_args = tool_use_block("toolu_01C", "get_nothing", {})
    fake_anthropic.enqueue(sse_reply(anthropic_stream(pieces=[], tool_calls=[*TWO_TOOL_USES, no_args])))
    body = {"model": ANTHROPIC_ALIAS, "messages": [USER], "stream": True, "tools": [WEATHER_TOOL, TIME_TOOL]}
    async with http.post("/v1/chat/completions", json=body) as response:
        chunks = assert_valid_stream(await response.read())
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk["choices"][0]["delta"].get("tool_calls") or []:
            call = calls.setdefault(delta["index"], {"id": "", "name": "", "arguments": ""})
            if "id" in delta:
                assert not call["id"], f"id sent twice for tool call {delta['index']}"
                call["id"] = delta["id"]
                call["name"] = delta["function"]["name"]
            call["arguments"] += delta["function"].get("arguments") or ""
    assert calls == {
        0: {"id": "toolu_01A", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        1: {"id": "toolu_01B", "name": "get_time", "arguments": '{"tz": "Europe/Paris"}'},
        2: {"id": "toolu_01C", "name": "get_nothing", "arguments": "{}"},
    }
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_stream_include_usage_counts_cache_tokens(
    http: aiohttp.ClientSession, fake_anthropic: FakeAnthropic
) -> None:
    usage = anthropic_usage(input_tokens=40, output_tokens=15, cache_creation=10, cache_read=200)
    fake_anthropic.enqueue(sse_reply(anthropic_stream(usage=usage)))
    body = {
        "model": ANTHROPIC_ALIAS,
        "messages": [USER],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with http.post("/v1/chat/completions", json=body) as response:
        chunks = assert_valid_stream(await response.read())
    assert "stream_options" not in fake_anthropic.only().json
    last = chunks[-1]
    assert last["choices"] == []
    assert last["id"] == "msg_01FAKESTREAM"
    assert last["usage"]["prompt_tokens"] == 250  # input + cache creation + cache read
    assert last["usage"]["completion_tokens"] == 15  # the last cumulative output_tokens, not 1 + 15
    assert last["usage"]["total_tokens"] == 265
    assert last["usage"]["prompt_tokens_details"]["cached_tokens"] == 200
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_stream_include_usage_with_the_sdk(client: openai.OpenAI) -> None:
    with client.chat.completions.create(
        model=ANTHROPIC_ALIAS,
        messages=[USER],
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 25
    assert chunks[-1].usage.completion_tokens == 9


def test_mid_stream_error_raises_api_error(client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    parts = anthropic_stream(complete=False)[:4]  # message_start, ping, content_block_start, one delta
    fake_anthropic.enqueue(sse_reply([*parts, anthropic_stream_error("overloaded_error", "Overloaded")]))
    received = ""
    with pytest.raises(openai.APIError) as caught:  # noqa: PT012 - the error arrives while iterating
        stream = client.chat.completions.create(model=ANTHROPIC_ALIAS, messages=[USER], stream=True)
        for chunk in stream:
            received += chunk.choices[0].delta.content or ""
    assert received == "Hello"
    assert not isinstance(caught.value, openai.APIStatusError)  # the status was already 200
    assert caught.value.message == "Overloaded"
    assert caught.value.code == "overloaded"
    assert caught.value.type == "server_error"


async def test_mid_stream_error_chunk_is_valid(
    http: aiohttp.ClientSession, fake_anthropic: FakeAnthropic
) -> None:
    parts = anthropic_stream(complete=False)[:4]
    fake_anthropic.enqueue(sse_reply([*parts, anthropic_stream_error("api_error", "Internal server error")]))
    async with http.post(
        "/v1/chat/completions", json={"model": ANTHROPIC_ALIAS, "messages": [USER], "stream": True}
    ) as response:
        assert response.status == 200
        events = assert_valid_stream(await response.read(), allow_error=True)
    assert events[-1]["error"]["message"] == "Internal server error"
    assert events[-1]["error"]["type"] == "server_error"


async def test_truncated_stream_ends_with_an_error(
    http: aiohttp.ClientSession, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(sse_reply(anthropic_stream(complete=False)))
    async with http.post(
        "/v1/chat/completions", json={"model": ANTHROPIC_ALIAS, "messages": [USER], "stream": True}
    ) as response:
        events = assert_valid_stream(await response.read(), allow_error=True)
    assert events[-1]["error"]["code"] == "upstream_stream_truncated"
    assert (
        "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1])
        == "Hello from the fake stream."
    )


# ---- upstream errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upstream_status", "error_type", "exc_type", "status", "openai_type", "code"),
    [
        pytest.param(
            529, "overloaded_error", openai.InternalServerError, 503, "server_error", "overloaded", id="529"
        ),
        pytest.param(
            429,
            "rate_limit_error",
            openai.RateLimitError,
            429,
            "rate_limit_error",
            "rate_limit_exceeded",
            id="429",
        ),
        pytest.param(
            401,
            "authentication_error",
            openai.AuthenticationError,
            401,
            "authentication_error",
            "invalid_api_key",
            id="401",
        ),
        pytest.param(
            400, "invalid_request_error", openai.BadRequestError, 400, "invalid_request_error", None, id="400"
        ),
        pytest.param(500, "api_error", openai.InternalServerError, 500, "server_error", None, id="500"),
    ],
)
def test_upstream_errors_become_sdk_exceptions(
    client: openai.OpenAI,
    fake_anthropic: FakeAnthropic,
    upstream_status: int,
    error_type: str,
    exc_type: type[openai.APIStatusError],
    status: int,
    openai_type: str,
    code: str | None,
) -> None:
    message = f"upstream says {error_type}"
    headers = {"retry-after": "13"} if upstream_status == 429 else {}
    fake_anthropic.enqueue(anthropic_error(upstream_status, error_type, message, headers))
    with pytest.raises(exc_type) as caught:
        client.chat.completions.create(model=ANTHROPIC_ALIAS, messages=[USER])
    exc = caught.value
    assert exc.status_code == status
    error = assert_error_body(exc.response.json(), code=code, type_=openai_type)
    assert error["message"] == message
    if headers:
        assert exc.response.headers["retry-after"] == "13"


def test_streaming_request_upstream_error_is_an_http_error(
    client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(anthropic_error(529, "overloaded_error", "Overloaded"))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=ANTHROPIC_ALIAS, messages=[USER], stream=True)
    assert caught.value.status_code == 503
    assert_error_body(caught.value.response.json(), code="overloaded")


# ---- edge cases ------------------------------------------------------------------------------------


def test_assistant_tool_calls_with_null_content(client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    """What the SDK sends back after a tool call: the assistant turn has `content: null`."""
    messages: list[dict[str, Any]] = [
        USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_01A",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01A", "content": "18C"},
        {"role": "user", "content": "And tomorrow?"},
    ]
    client.chat.completions.create(
        model=ANTHROPIC_ALIAS, messages=messages, tools=[WEATHER_TOOL], temperature=0
    )
    sent = fake_anthropic.only().json
    assert sent["temperature"] == 0
    assert sent["messages"] == [
        USER_BLOCKS,
        {"role": "assistant", "content": [TWO_TOOL_USES[0]]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18C"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]


def test_tool_use_only_response_has_null_content(
    client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(json_reply(anthropic_message(content=TWO_TOOL_USES[:1])))
    raw = client.chat.completions.with_raw_response.create(
        model=ANTHROPIC_ALIAS, messages=[USER], tools=[WEATHER_TOOL]
    )
    body = assert_valid(CHAT, json.loads(raw.content))
    assert body["choices"][0]["message"]["content"] is None
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == '{"city":"Paris"}'


def test_usage_without_cache_fields(client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(json_reply(anthropic_message(usage={"input_tokens": 10, "output_tokens": 5})))
    raw = client.chat.completions.with_raw_response.create(model=ANTHROPIC_ALIAS, messages=[USER])
    usage = assert_valid(CHAT, json.loads(raw.content))["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (10, 5, 15)


def test_thinking_blocks_become_reasoning_content(
    client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    thinking = {"type": "thinking", "thinking": "Let me think.", "signature": "sig"}
    fake_anthropic.enqueue(json_reply(anthropic_message(content=[thinking, text_block("42")])))
    raw = client.chat.completions.with_raw_response.create(model=ANTHROPIC_ALIAS, messages=[USER])
    message = assert_valid(CHAT, json.loads(raw.content))["choices"][0]["message"]
    assert message["content"] == "42"
    assert message["reasoning_content"] == "Let me think."


@pytest.mark.parametrize(
    ("reply", "status", "exc_type", "code"),
    [
        pytest.param(
            anthropic_error(404, "not_found_error", "model: claude-nope"),
            404,
            openai.NotFoundError,
            "not_found",
            id="404",
        ),
        pytest.param(
            anthropic_error(413, "request_too_large", "Request exceeds the maximum size"),
            413,
            openai.APIStatusError,
            "request_too_large",
            id="413",
        ),
    ],
)
def test_more_upstream_errors(
    client: openai.OpenAI,
    fake_anthropic: FakeAnthropic,
    reply: Any,
    status: int,
    exc_type: type[openai.APIStatusError],
    code: str,
) -> None:
    fake_anthropic.enqueue(reply)
    with pytest.raises(exc_type) as caught:
        client.chat.completions.create(model=ANTHROPIC_ALIAS, messages=[USER])
    assert caught.value.status_code == status
    assert_error_body(caught.value.response.json(), code=code, type_="invalid_request_error")


def test_non_json_upstream_error(client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(
        Reply(502, {"Content-Type": "text/html"}, [b"<html>cloudflare: bad gateway</html>"])
    )
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=ANTHROPIC_ALIAS, messages=[USER])
    assert caught.value.status_code == 502
    error = assert_error_body(caught.value.response.json(), type_="server_error")
    assert "bad gateway" in error["message"]


async def test_concurrent_streams_keep_their_own_state(
    async_client: openai.AsyncOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    """Two tool-call streams interleaved: each numbers its own tool calls from 0 and keeps its own id."""
    gate_a, gate_b = fake_anthropic.gate("stream a"), fake_anthropic.gate("stream b")

    def held(parts: list[Part], gate: Gate) -> Reply:
        return sse_reply([*parts[:3], gate, *parts[3:]])  # held inside the first tool_use block

    stream_a = anthropic_stream(pieces=[], tool_calls=TWO_TOOL_USES, message_id="msg_A")
    stream_b = anthropic_stream(pieces=[], tool_calls=TWO_TOOL_USES[::-1], message_id="msg_B")
    fake_anthropic.enqueue(held(stream_a, gate_a), held(stream_b, gate_b))

    async def run(expected_id: str) -> list[tuple[int, str]]:
        stream = await async_client.chat.completions.create(
            model=ANTHROPIC_ALIAS, messages=[USER], tools=[WEATHER_TOOL, TIME_TOOL], stream=True
        )
        seen = []
        async with stream:
            async for chunk in stream:
                assert chunk.id == expected_id
                calls = (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []
                for call in calls:
                    if call.id:
                        seen.append((call.index, call.id))
        return seen

    task_a = asyncio.create_task(run("msg_A"))
    await fake_anthropic.arrived(1).expect_async()
    task_b = asyncio.create_task(run("msg_B"))
    await fake_anthropic.arrived(2).expect_async()
    gate_b.set()
    seen_b = await asyncio.wait_for(task_b, 10)
    gate_a.set()
    seen_a = await asyncio.wait_for(task_a, 10)
    assert seen_a == [(0, "toolu_01A"), (1, "toolu_01B")]
    assert seen_b == [(0, "toolu_01B"), (1, "toolu_01A")]


async def _stream_events(http: aiohttp.ClientSession, **extra: Any) -> list[dict[str, Any]]:
    body = {"model": ANTHROPIC_ALIAS, "messages": [USER], "stream": True, **extra}
    async with http.post("/v1/chat/completions", json=body) as response:
        assert response.status == 200
        return assert_valid_stream(await response.read(), allow_error=True)


def _text(events: list[dict[str, Any]]) -> str:
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))


async def test_stream_split_anywhere_with_crlf_and_multibyte_text(
    http: aiohttp.ClientSession, fake_anthropic: FakeAnthropic
) -> None:
    pieces = ["Grüße 👋🏽", " — ", "日本語のテキスト", " ✓"]
    fake_anthropic.enqueue(sse_reply(rechunk(anthropic_stream(pieces=pieces), 5, crlf=True)))
    events = await _stream_events(http)
    assert "error" not in events[-1]
    assert _text(events) == "".join(pieces)
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


async def test_stream_thinking_and_unknown_events(
    http: aiohttp.ClientSession, fake_anthropic: FakeAnthropic
) -> None:
    parts = anthropic_stream(pieces=["42"])
    thinking = [
        anthropic_event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 5,
                "content_block": {"type": "thinking", "thinking": ""},
            },
        ),
        anthropic_event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 5,
                "delta": {"type": "thinking_delta", "thinking": "Hmm."},
            },
        ),
        anthropic_event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 5,
                "delta": {"type": "signature_delta", "signature": "c2ln"},
            },
        ),
        anthropic_event("content_block_stop", {"type": "content_block_stop", "index": 5}),
        anthropic_event("brand_new_event", {"type": "brand_new_event", "whatever": [1, 2]}),
    ]
    fake_anthropic.enqueue(sse_reply([*parts[:2], *thinking, *parts[2:]]))
    events = await _stream_events(http)
    assert "error" not in events[-1]
    reasoning = [
        e["choices"][0]["delta"]["reasoning_content"]
        for e in events
        if "reasoning_content" in e["choices"][0]["delta"]
    ]
    assert reasoning == ["Hmm."]
    assert _text(events) == "42"


async def test_stream_event_that_is_not_json(
    http: aiohttp.ClientSession, fake_anthropic: FakeAnthropic
) -> None:
    parts = anthropic_stream()
    fake_anthropic.enqueue(
        sse_reply([*parts[:4], b"event: content_block_delta\ndata: {not json\n\n", *parts[4:]])
    )
    events = await _stream_events(http)
    assert events[-1]["error"]["code"] == "upstream_invalid_event"
    assert _text(events[:-1]) == "Hello"


async def test_stream_upstream_connection_drops(
    http: aiohttp.ClientSession, fake_anthropic: FakeAnthropic
) -> None:
    parts = anthropic_stream()
    fake_anthropic.enqueue(sse_reply([*parts[:4], ABORT]))
    events = await _stream_events(http)
    assert events[-1]["error"]["type"] == "server_error"
    assert events[-1]["error"]["code"] == "upstream_connection_error"
    assert _text(events[:-1]) == "Hello"


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        pytest.param(
            Reply(200, {"Content-Type": "application/json"}, [b"{not json"]),
            "upstream_invalid_response",
            id="not-json",
        ),
        pytest.param(json_reply({"unexpected": "shape"}), "translation_failed", id="wrong-shape"),
    ],
)
def test_unusable_success_body_is_502(
    client: openai.OpenAI, fake_anthropic: FakeAnthropic, reply: Reply, code: str
) -> None:
    fake_anthropic.enqueue(reply)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=ANTHROPIC_ALIAS, messages=[USER])
    assert caught.value.status_code == 502
    assert_error_body(caught.value.response.json(), code=code, type_="server_error")


async def test_stream_translation_failure_ends_the_response_and_closes_the_upstream(
    http: aiohttp.ClientSession, fake_anthropic: FakeAnthropic
) -> None:
    """Once the gateway has sent the error event and [DONE], nothing more can reach the client: the
    response must end, and the upstream (still generating) must be closed rather than read to its end."""
    parts = anthropic_stream()
    still_generating = fake_anthropic.gate("upstream still generating")
    bad_event = b"event: content_block_delta\ndata: {not json\n\n"
    fake_anthropic.enqueue(sse_reply([*parts[:4], bad_event, still_generating, *parts[4:]]))
    body = {"model": ANTHROPIC_ALIAS, "messages": [USER], "stream": True}
    async with http.post("/v1/chat/completions", json=body) as response:
        async with asyncio.timeout(3):
            raw = await response.read()
    events = assert_valid_stream(raw, allow_error=True)
    assert events[-1]["error"]["code"] == "upstream_invalid_event"
    await fake_anthropic.only().closed.expect_async(3)


def test_legacy_completions_through_chat(client: openai.OpenAI, fake_anthropic: FakeAnthropic) -> None:
    completion = client.completions.create(model=ANTHROPIC_ALIAS, prompt="Once upon", max_tokens=5)
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "Hello from the fake Anthropic upstream."
    assert completion.choices[0].finish_reason == "stop"
    assert fake_anthropic.only().json == {
        "model": ANTHROPIC_UPSTREAM_MODEL,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Once upon"}]}],
        "max_tokens": 5,
    }


async def test_legacy_completions_stream_through_chat(
    http: aiohttp.ClientSession, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.enqueue(sse_reply(anthropic_stream(stop_reason="max_tokens")))
    body = {"model": ANTHROPIC_ALIAS, "prompt": ["Once upon"], "stream": True}
    async with http.post("/v1/completions", json=body) as response:
        assert response.status == 200
        chunks = assert_valid_stream(await response.read(), COMPLETION)
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Hello from the fake stream."
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "length"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def test_legacy_completions_unsupported_parameter(
    client: openai.OpenAI, fake_anthropic: FakeAnthropic
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=ANTHROPIC_ALIAS, prompt="Once upon", echo=True)
    error = assert_error_body(caught.value.response.json(), code="unsupported_parameter")
    assert error["param"] == "echo"
    assert fake_anthropic.requests == []
