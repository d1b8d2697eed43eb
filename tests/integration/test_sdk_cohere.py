"""The official openai SDK against the gateway, with a `cohere`-dialect provider pointed at FakeCohere
(Cohere API v2 over real HTTP: JSON, and SSE with named events): what the fake receives is checked
against Cohere's wire format, and every body the client gets against the OpenAI spec."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import openai
import pydantic
import pytest

from tests.support.fake_cohere import (
    CHAT_ID,
    STREAM_ID,
    FakeCohere,
    cohere_chat,
    cohere_embed,
    cohere_error,
    cohere_event,
    cohere_sse_reply,
    cohere_stream,
    cohere_tool_call,
    cohere_usage,
)
from tests.support.fake_upstreams import ABORT, json_reply
from tests.support.openai_spec import COMPLETION, assert_error_body, assert_valid_stream
from tests.support.routes import CLIENT_KEY
from tests.support.sdk_harness import fake_fixtures, running_gateway, sdk_fixtures
from tests.support.sdk_payloads import PNG_B64

COHERE_KEY = "co-upstream-test-key"
ALIAS = "command-test"
UPSTREAM_MODEL = "command-a-03-2025"
EMBED_ALIAS = "cohere-embed-test"
EMBED_MODEL = "embed-v4.0"
DROP_ALIAS = "command-lenient"

USER = {"role": "user", "content": "Say hello"}
WEATHER_PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Current weather", "parameters": WEATHER_PARAMS},
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
TWO_CALLS = [
    cohere_tool_call("get_weather_k3a9", "get_weather", '{"city": "Paris"}'),
    cohere_tool_call("get_time_p2b1", "get_time", '{"tz": "Europe/Paris"}'),
]
PNG_DATA_URL = f"data:image/png;base64,{PNG_B64}"


# ---- fixtures: this module's own gateway and fake ------------------------------------------------


fake_cohere, _fresh_fake_cohere = fake_fixtures("fake_cohere", FakeCohere)


@pytest.fixture(scope="module")
def cohere_gateway(tmp_path_factory: pytest.TempPathFactory, fake_cohere: FakeCohere) -> Iterator[str]:
    provider = {"dialect": "cohere", "base_url": fake_cohere.url, "api_key": COHERE_KEY}
    config = {
        "log": {"level": "warning", "format": "json"},
        "providers": {"cohere": provider, "cohere-lenient": {**provider, "unsupported_params": "drop"}},
        "models": {
            ALIAS: [{"provider": "cohere", "model": UPSTREAM_MODEL}],
            EMBED_ALIAS: [{"provider": "cohere", "model": EMBED_MODEL}],
            DROP_ALIAS: [{"provider": "cohere-lenient", "model": UPSTREAM_MODEL}],
        },
    }
    with running_gateway(tmp_path_factory.mktemp("cohere") / "routes.yaml", config) as url:
        yield url


client, async_client, http = sdk_fixtures("cohere_gateway")


def assert_cohere_headers(headers: dict[str, str]) -> None:
    assert headers["authorization"] == f"Bearer {COHERE_KEY}"
    assert headers["content-type"].startswith("application/json")
    assert all(CLIENT_KEY not in value for value in headers.values()), headers


# ---- chat: request and response translation -----------------------------------------------------


def test_plain_chat(client: openai.OpenAI, fake_cohere: FakeCohere) -> None:
    fake_cohere.enqueue(json_reply(cohere_chat(usage=cohere_usage(40, 9, 950, 12, cached=30))))
    completion = client.chat.completions.create(model=ALIAS, messages=[USER])
    assert completion.object == "chat.completion"
    assert completion.id == CHAT_ID
    assert completion.model == ALIAS
    choice = completion.choices[0]
    assert choice.message.content == "Hello from the fake Cohere upstream."
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (40, 9)  # billed units
    assert completion.usage.total_tokens == 49
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 30

    rec = fake_cohere.only()
    assert (rec.method, rec.path) == ("POST", "/v2/chat")
    assert_cohere_headers(rec.headers)
    assert rec.json == {"model": UPSTREAM_MODEL, "messages": [USER]}


async def test_system_messages_and_sampling_controls(
    async_client: openai.AsyncOpenAI, fake_cohere: FakeCohere
) -> None:
    await async_client.chat.completions.create(
        model=ALIAS,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            USER,
        ],
        max_completion_tokens=100,
        temperature=0.3,
        top_p=0.8,
        stop="END",
        seed=7,
        frequency_penalty=0.5,
        presence_penalty=0.1,
        user="user-123",
    )
    assert fake_cohere.only().json == {
        "model": UPSTREAM_MODEL,
        "messages": [{"role": "system", "content": "You are terse.\n\nAnswer in French."}, USER],
        "max_tokens": 100,
        "stop_sequences": ["END"],
        "temperature": 0.3,
        "p": 0.8,
        "seed": 7,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.1,
    }


def test_multi_turn_with_tool_calls_and_results(client: openai.OpenAI, fake_cohere: FakeCohere) -> None:
    fake_cohere.enqueue(json_reply(cohere_chat(None, tool_plan="I will check both.", tool_calls=TWO_CALLS)))
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [{"id": c["id"], "type": "function", "function": c["function"]} for c in TWO_CALLS],
        },
        {"role": "tool", "tool_call_id": "get_weather_k3a9", "content": "18C, cloudy"},
        {"role": "tool", "tool_call_id": "get_time_p2b1", "content": [{"type": "text", "text": "14:05"}]},
        {"role": "user", "content": "And again?"},
    ]
    completion = client.chat.completions.create(
        model=ALIAS, messages=messages, tools=[WEATHER_TOOL, TIME_TOOL], tool_choice="required"
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I will check both."  # the tool plan
    calls = choice.message.tool_calls or []
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather_k3a9", "get_weather", {"city": "Paris"}),
        ("get_time_p2b1", "get_time", {"tz": "Europe/Paris"}),
    ]
    sent = fake_cohere.only().json
    assert sent["messages"] == [
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "tool_plan": "Let me look.", "tool_calls": TWO_CALLS},
        {"role": "tool", "tool_call_id": "get_weather_k3a9", "content": "18C, cloudy"},
        {"role": "tool", "tool_call_id": "get_time_p2b1", "content": [{"type": "text", "text": "14:05"}]},
        {"role": "user", "content": "And again?"},
    ]
    assert sent["tools"] == [WEATHER_TOOL, TIME_TOOL]
    assert sent["tool_choice"] == "REQUIRED"


@pytest.mark.parametrize(("tool_choice", "expected"), [("none", "NONE"), ("auto", None)])
def test_tool_choice(client: openai.OpenAI, fake_cohere: FakeCohere, tool_choice: Any, expected: Any) -> None:
    client.chat.completions.create(
        model=ALIAS, messages=[USER], tools=[WEATHER_TOOL], tool_choice=tool_choice
    )
    assert fake_cohere.only().json.get("tool_choice") == expected


def test_named_tool_choice_is_rejected(client: openai.OpenAI, fake_cohere: FakeCohere) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=ALIAS,
            messages=[USER],
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
    error = assert_error_body(caught.value.response.json(), code="unsupported_parameter")
    assert error["param"] == "tool_choice"
    assert fake_cohere.requests == []


def test_unsupported_parameters_dropped_when_the_provider_says_so(
    client: openai.OpenAI, fake_cohere: FakeCohere
) -> None:
    completion = client.chat.completions.create(model=DROP_ALIAS, messages=[USER], n=2, logit_bias={"1": 5})
    assert completion.choices[0].message.content == "Hello from the fake Cohere upstream."
    assert fake_cohere.only().json == {"model": UPSTREAM_MODEL, "messages": [USER]}


def test_images_keep_openai_shape(client: openai.OpenAI, fake_cohere: FakeCohere) -> None:
    content: list[dict[str, Any]] = [
        {"type": "text", "text": "Compare these."},
        {"type": "image_url", "image_url": {"url": PNG_DATA_URL}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
    ]
    client.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": content}])
    assert fake_cohere.only().json["messages"] == [{"role": "user", "content": content}]


class City(pydantic.BaseModel):
    city: str
    population: int


def test_structured_output_with_parse(client: openai.OpenAI, fake_cohere: FakeCohere) -> None:
    fake_cohere.enqueue(json_reply(cohere_chat('{"city": "Paris", "population": 2102650}')))
    completion = client.chat.completions.parse(model=ALIAS, messages=[USER], response_format=City)
    assert completion.choices[0].message.parsed == City(city="Paris", population=2102650)
    response_format = fake_cohere.only().json["response_format"]
    assert response_format["type"] == "json_object"
    assert response_format["json_schema"]["properties"] == {
        "city": {"title": "City", "type": "string"},
        "population": {"title": "Population", "type": "integer"},
    }
    assert set(response_format) == {"type", "json_schema"}


def test_json_object(client: openai.OpenAI, fake_cohere: FakeCohere) -> None:
    client.chat.completions.create(model=ALIAS, messages=[USER], response_format={"type": "json_object"})
    assert fake_cohere.only().json["response_format"] == {"type": "json_object"}


def test_thinking_becomes_reasoning_content(client: openai.OpenAI, fake_cohere: FakeCohere) -> None:
    fake_cohere.enqueue(json_reply(cohere_chat("42", thinking="6 times 7.")))
    raw = client.chat.completions.with_raw_response.create(
        model=ALIAS, messages=[USER], reasoning_effort="medium"
    )
    message = json.loads(raw.content)["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == ("42", "6 times 7.")
    assert fake_cohere.only().json["thinking"] == {"type": "enabled"}


@pytest.mark.parametrize(
    ("cohere_reason", "finish_reason"),
    [("COMPLETE", "stop"), ("STOP_SEQUENCE", "stop"), ("MAX_TOKENS", "length"), ("TIMEOUT", "length")],
)
def test_finish_reasons(
    client: openai.OpenAI, fake_cohere: FakeCohere, cohere_reason: str, finish_reason: str
) -> None:
    fake_cohere.enqueue(json_reply(cohere_chat(finish_reason=cohere_reason)))
    completion = client.chat.completions.create(model=ALIAS, messages=[USER])
    assert completion.choices[0].finish_reason == finish_reason


def test_finish_reason_error_is_a_502(client: openai.OpenAI, fake_cohere: FakeCohere) -> None:
    fake_cohere.enqueue(json_reply(cohere_chat("partial", finish_reason="ERROR")))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=ALIAS, messages=[USER])
    assert caught.value.status_code == 502
    assert "ERROR" in assert_error_body(caught.value.response.json(), type_="server_error")["message"]


# ---- streaming ------------------------------------------------------------------------------------


def test_stream_text_with_the_sync_sdk(client: openai.OpenAI, fake_cohere: FakeCohere) -> None:
    text, finish = "", None
    with client.chat.completions.create(model=ALIAS, messages=[USER], stream=True) as stream:
        for chunk in stream:
            assert chunk.id == STREAM_ID
            assert chunk.usage is None
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
    assert text == "Hello from the fake stream."
    assert finish == "stop"
    assert fake_cohere.only().json == {"model": UPSTREAM_MODEL, "messages": [USER], "stream": True}


async def test_stream_with_usage_and_the_async_sdk(
    async_client: openai.AsyncOpenAI, fake_cohere: FakeCohere
) -> None:
    fake_cohere.enqueue(cohere_sse_reply(cohere_stream(finish_reason="MAX_TOKENS", usage=cohere_usage(5, 7))))
    stream = await async_client.chat.completions.create(
        model=ALIAS, messages=[USER], stream=True, stream_options={"include_usage": True}
    )
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "Hello from the fake stream."
    )
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 7)
    assert "stream_options" not in fake_cohere.only().json


def test_stream_two_tool_calls_with_the_stream_helper(client: openai.OpenAI, fake_cohere: FakeCohere) -> None:
    fake_cohere.enqueue(
        cohere_sse_reply(cohere_stream([], tool_plan=["I will ", "check."], tool_calls=TWO_CALLS))
    )
    with client.chat.completions.stream(
        model=ALIAS, messages=[USER], tools=[WEATHER_TOOL, TIME_TOOL]
    ) as stream:
        done = [
            (e.index, e.name, e.arguments) for e in stream if e.type == "tool_calls.function.arguments.done"
        ]
        final = stream.get_final_completion()
    assert done == [(0, "get_weather", '{"city": "Paris"}'), (1, "get_time", '{"tz": "Europe/Paris"}')]
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I will check."
    assert [c.id for c in choice.message.tool_calls or []] == ["get_weather_k3a9", "get_time_p2b1"]


async def test_stream_chunks_and_tool_call_deltas_are_valid(
    http: aiohttp.ClientSession, fake_cohere: FakeCohere
) -> None:
    fake_cohere.enqueue(cohere_sse_reply(cohere_stream([], tool_calls=TWO_CALLS, argument_pieces=4)))
    body = {"model": ALIAS, "messages": [USER], "stream": True, "tools": [WEATHER_TOOL, TIME_TOOL]}
    async with http.post("/v1/chat/completions", json=body) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        chunks = assert_valid_stream(await response.read())
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in chunk["choices"][0]["delta"].get("tool_calls") or []:
            call = calls.setdefault(delta["index"], {"id": "", "name": "", "arguments": ""})
            if "id" in delta:
                assert not call["id"], f"id sent twice for tool call {delta['index']}"
                call["id"], call["name"] = delta["id"], delta["function"]["name"]
            call["arguments"] += delta["function"].get("arguments") or ""
    assert calls == {
        0: {"id": "get_weather_k3a9", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        1: {"id": "get_time_p2b1", "name": "get_time", "arguments": '{"tz": "Europe/Paris"}'},
    }
    assert {c["model"] for c in chunks} == {ALIAS}
    assert [c["choices"][0]["finish_reason"] for c in chunks].count("tool_calls") == 1


def test_mid_stream_error_raises_api_error(client: openai.OpenAI, fake_cohere: FakeCohere) -> None:
    fake_cohere.enqueue(
        cohere_sse_reply(
            cohere_stream(["Hel"], finish_reason="ERROR", error="internal error during generation")
        )
    )
    received = ""
    with pytest.raises(openai.APIError) as caught:  # noqa: PT012 - the error arrives while iterating
        for chunk in client.chat.completions.create(model=ALIAS, messages=[USER], stream=True):
            received += chunk.choices[0].delta.content or ""
    assert received == "Hel"
    assert not isinstance(caught.value, openai.APIStatusError)  # the status was already 200
    assert caught.value.message == "internal error during generation"
    assert caught.value.type == "server_error"


@pytest.mark.parametrize(
    ("parts", "code"),
    [
        pytest.param(cohere_stream(complete=False), "upstream_stream_truncated", id="truncated"),
        pytest.param([*cohere_stream(complete=False)[:3], ABORT], "upstream_connection_error", id="dropped"),
        pytest.param(
            [*cohere_stream(complete=False)[:3], b"event: content-delta\ndata: {not json\n\n"],
            "upstream_invalid_event",
            id="not-json",
        ),
    ],
)
async def test_broken_streams_end_with_an_error_event(
    http: aiohttp.ClientSession, fake_cohere: FakeCohere, parts: list[Any], code: str
) -> None:
    fake_cohere.enqueue(cohere_sse_reply(parts))
    body = {"model": ALIAS, "messages": [USER], "stream": True}
    async with http.post("/v1/chat/completions", json=body) as response:
        assert response.status == 200
        events = assert_valid_stream(await response.read(), allow_error=True)
    assert events[-1]["error"]["code"] == code
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}


async def test_unknown_and_debug_events_are_ignored(
    http: aiohttp.ClientSession, fake_cohere: FakeCohere
) -> None:
    parts = cohere_stream(["Hi"])
    extra = [cohere_event("debug", {"prompt": "<BOS>..."}), cohere_event("brand-new-event", {"x": [1]})]
    fake_cohere.enqueue(cohere_sse_reply([*parts[:2], *extra, *parts[2:]]))
    body = {"model": ALIAS, "messages": [USER], "stream": True}
    async with http.post("/v1/chat/completions", json=body) as response:
        events = assert_valid_stream(await response.read())
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events) == "Hi"


# ---- upstream errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upstream_status", "exc_type", "status", "type_", "code"),
    [
        pytest.param(400, openai.BadRequestError, 400, "invalid_request_error", None, id="400"),
        pytest.param(
            401, openai.AuthenticationError, 401, "authentication_error", "invalid_api_key", id="401"
        ),
        pytest.param(402, openai.APIStatusError, 402, "insufficient_quota", "insufficient_quota", id="402"),
        pytest.param(403, openai.PermissionDeniedError, 403, "permission_error", None, id="403"),
        pytest.param(404, openai.NotFoundError, 404, "invalid_request_error", "not_found", id="404"),
        pytest.param(
            422,
            openai.UnprocessableEntityError,
            422,
            "invalid_request_error",
            "unprocessable_entity",
            id="422",
        ),
        pytest.param(429, openai.RateLimitError, 429, "rate_limit_error", "rate_limit_exceeded", id="429"),
        pytest.param(
            498, openai.AuthenticationError, 401, "authentication_error", "invalid_api_key", id="498"
        ),
        pytest.param(499, openai.APIStatusError, 499, "invalid_request_error", "request_cancelled", id="499"),
        pytest.param(500, openai.InternalServerError, 500, "server_error", None, id="500"),
        pytest.param(501, openai.InternalServerError, 501, "server_error", "not_implemented", id="501"),
        pytest.param(503, openai.InternalServerError, 503, "server_error", "service_unavailable", id="503"),
        pytest.param(504, openai.InternalServerError, 504, "server_error", "timeout", id="504"),
    ],
)
def test_upstream_errors_become_sdk_exceptions(
    client: openai.OpenAI,
    fake_cohere: FakeCohere,
    upstream_status: int,
    exc_type: type[openai.APIStatusError],
    status: int,
    type_: str,
    code: str | None,
) -> None:
    message = f"cohere says {upstream_status}"
    fake_cohere.enqueue(cohere_error(upstream_status, message, {"retry-after": "11"}))
    with pytest.raises(exc_type) as caught:
        client.chat.completions.create(model=ALIAS, messages=[USER])
    assert caught.value.status_code == status
    error = assert_error_body(caught.value.response.json(), type_=type_)
    assert (error["message"], error["code"]) == (message, code)
    assert caught.value.response.headers["retry-after"] == "11"


def test_streaming_request_upstream_error_is_an_http_error(
    client: openai.OpenAI, fake_cohere: FakeCohere
) -> None:
    fake_cohere.enqueue(cohere_error(429, "trial key limit"))
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=ALIAS, messages=[USER], stream=True)
    assert_error_body(caught.value.response.json(), code="rate_limit_exceeded")


# ---- embeddings -----------------------------------------------------------------------------------


def test_embeddings_with_the_sdk_default_base64(client: openai.OpenAI, fake_cohere: FakeCohere) -> None:
    fake_cohere.enqueue(json_reply(cohere_embed(["first", "second"], dimensions=3, input_tokens=4)))
    result = client.embeddings.create(model=EMBED_ALIAS, input=["first", "second"])
    assert [d.index for d in result.data] == [0, 1]
    assert result.data[0].embedding == pytest.approx([0.1, 0.2, 0.3])
    assert result.data[1].embedding == pytest.approx([0.2, 0.4, 0.6])
    assert result.usage.prompt_tokens == result.usage.total_tokens == 4
    rec = fake_cohere.only()
    assert rec.path == "/v2/embed"
    assert_cohere_headers(rec.headers)
    assert rec.json == {
        "model": EMBED_MODEL,
        "texts": ["first", "second"],
        "input_type": "search_document",
        "embedding_types": ["float"],
    }


def test_embeddings_base64_bytes_on_the_wire(client: openai.OpenAI, fake_cohere: FakeCohere) -> None:
    fake_cohere.enqueue(json_reply(cohere_embed(["x"], dimensions=2)))
    raw = client.embeddings.with_raw_response.create(model=EMBED_ALIAS, input="x", encoding_format="base64")
    assert json.loads(raw.content)["data"][0]["embedding"] == "zczMPc3MTD4="  # float32 LE 0.1, 0.2


async def test_embeddings_float_dimensions_and_input_type(
    async_client: openai.AsyncOpenAI, fake_cohere: FakeCohere
) -> None:
    result = await async_client.embeddings.create(
        model=EMBED_ALIAS,
        input="hello",
        encoding_format="float",
        dimensions=3,
        extra_body={"input_type": "search_query"},
    )
    assert result.data[0].embedding == [0.1, 0.2, 0.3]
    assert fake_cohere.only().json == {
        "model": EMBED_MODEL,
        "texts": ["hello"],
        "input_type": "search_query",
        "embedding_types": ["float"],
        "output_dimension": 3,
    }


# ---- legacy completions (through chat) ------------------------------------------------------------


def test_legacy_completions_through_chat(client: openai.OpenAI, fake_cohere: FakeCohere) -> None:
    completion = client.completions.create(model=ALIAS, prompt="Once upon", max_tokens=5)
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "Hello from the fake Cohere upstream."
    assert completion.choices[0].finish_reason == "stop"
    assert fake_cohere.only().json == {
        "model": UPSTREAM_MODEL,
        "messages": [{"role": "user", "content": "Once upon"}],
        "max_tokens": 5,
    }


async def test_legacy_completions_stream_through_chat(
    http: aiohttp.ClientSession, fake_cohere: FakeCohere
) -> None:
    fake_cohere.enqueue(cohere_sse_reply(cohere_stream(finish_reason="MAX_TOKENS")))
    body = {"model": ALIAS, "prompt": "Once upon", "stream": True}
    async with http.post("/v1/completions", json=body) as response:
        assert response.status == 200
        chunks = assert_valid_stream(await response.read(), COMPLETION)
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Hello from the fake stream."
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert fake_cohere.only().json["stream"] is True
