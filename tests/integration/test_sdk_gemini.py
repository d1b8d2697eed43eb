"""The official openai SDK against the gateway, with a `gemini`-dialect provider pointed at FakeGemini
(Gemini's real wire format: generateContent JSON, streamGenerateContent SSE, batchEmbedContents,
google.rpc errors). What the fake receives is checked against the Gemini request shape; every body and
stream chunk the SDK receives is checked against the OpenAI spec (the recording transports below)."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from typing import Any

import aiohttp
import openai
import pydantic
import pytest

from tests.support.fake_gemini import (
    GEMINI_MODEL_VERSION,
    FakeGemini,
    candidate,
    function_call_part,
    gemini_error,
    gemini_response,
    gemini_stream,
    gemini_stream_error,
    retry_info,
    text_part,
    usage_metadata,
)
from tests.support.fake_upstreams import ABORT, Reply, json_reply, rechunk, sse_reply
from tests.support.openai_spec import (
    CHAT,
    COMPLETION,
    EMBEDDINGS,
    assert_error_body,
    assert_valid,
    assert_valid_stream,
)
from tests.support.routes import CLIENT_KEY
from tests.support.sdk_harness import fake_fixtures, running_gateway, sdk_fixtures
from tests.support.sdk_payloads import PNG_B64, TIME_PARAMS, TIME_TOOL, WEATHER_PARAMS, WEATHER_TOOL

GEMINI_KEY = "AIza-upstream-test-key"
GEMINI_ALIAS = "gemini-test"
GEMINI_UPSTREAM_MODEL = "gemini-2.5-flash"
GEMINI_DROP_ALIAS = "gemini-lenient"  # a provider with unsupported_params: drop
EMBED_ALIAS = "gemini-embed-test"
EMBED_UPSTREAM_MODEL = "gemini-embedding-001"
CHAT_PATH = f"/v1beta/models/{GEMINI_UPSTREAM_MODEL}:generateContent"
STREAM_PATH = f"/v1beta/models/{GEMINI_UPSTREAM_MODEL}:streamGenerateContent"
EMBED_PATH = f"/v1beta/models/{EMBED_UPSTREAM_MODEL}:batchEmbedContents"

USER = {"role": "user", "content": "Say hello"}
USER_CONTENT = {"role": "user", "parts": [{"text": "Say hello"}]}
SIGNATURE = "CiQBjz1rX+signature/with+base64=="


# ---- fixtures: a fake Gemini and a gateway routing to it -------------------------------------------


fake_gemini, _fresh_fake_gemini = fake_fixtures("fake_gemini", FakeGemini)


@pytest.fixture(scope="module")
def gemini_gateway(tmp_path_factory: pytest.TempPathFactory, fake_gemini: FakeGemini) -> Iterator[str]:
    base_url = f"{fake_gemini.url}/v1beta"
    config = {
        "log": {"level": "warning", "format": "json"},
        "providers": {
            "gemini-fake": {"dialect": "gemini", "base_url": base_url, "api_key": GEMINI_KEY},
            "gemini-lenient": {
                "dialect": "gemini",
                "base_url": base_url,
                "api_key": GEMINI_KEY,
                "unsupported_params": "drop",
            },
        },
        "models": {
            GEMINI_ALIAS: [{"provider": "gemini-fake", "model": GEMINI_UPSTREAM_MODEL}],
            GEMINI_DROP_ALIAS: [{"provider": "gemini-lenient", "model": GEMINI_UPSTREAM_MODEL}],
            EMBED_ALIAS: [{"provider": "gemini-fake", "model": EMBED_UPSTREAM_MODEL}],
        },
    }
    path = tmp_path_factory.mktemp("gemini") / "routes.yaml"
    with running_gateway(path, config, name="gateway-gemini") as url:
        yield url


client, async_client, http = sdk_fixtures("gemini_gateway")


def assert_gemini_headers(headers: dict[str, str]) -> None:
    assert headers["x-goog-api-key"] == GEMINI_KEY
    assert headers["content-type"].startswith("application/json")
    assert "authorization" not in headers
    assert all(CLIENT_KEY not in value for value in headers.values()), headers


def tool_call_deltas(chunks: list[dict[str, Any]]) -> dict[tuple[int, int], dict[str, str]]:
    """(choice index, tool-call index) -> accumulated id, name and arguments of a streamed answer."""
    calls: dict[tuple[int, int], dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for delta in choice["delta"].get("tool_calls") or []:
                call = calls.setdefault(
                    (choice["index"], delta["index"]), {"id": "", "name": "", "arguments": ""}
                )
                if "id" in delta:
                    assert not call["id"], f"id sent twice for tool call {delta['index']}"
                    call["id"] = delta["id"]
                    call["name"] = delta["function"]["name"]
                call["arguments"] += delta["function"].get("arguments") or ""
    return calls


# ---- request translation ---------------------------------------------------------------------------


def test_plain_chat(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    usage = usage_metadata(prompt=412, candidates=18, cached=256, thoughts=50)
    fake_gemini.enqueue(json_reply(gemini_response(usage=usage)))
    raw = client.chat.completions.with_raw_response.create(model=GEMINI_ALIAS, messages=[USER])
    assert raw.status_code == 200
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.id == "fake-response-0001"
    assert completion.model == GEMINI_MODEL_VERSION
    assert completion.choices[0].message.content == "Hello from the fake Gemini upstream."
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (412, 68)
    assert completion.usage.total_tokens == 480
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 256
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 50

    rec = fake_gemini.only()
    assert (rec.method, rec.path, rec.query) == ("POST", CHAT_PATH, "")
    assert_gemini_headers(rec.headers)
    assert rec.json == {"contents": [USER_CONTENT]}


async def test_system_sampling_and_reasoning_parameters(
    async_client: openai.AsyncOpenAI, fake_gemini: FakeGemini
) -> None:
    await async_client.chat.completions.create(
        model=GEMINI_ALIAS,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            USER,
            {"role": "assistant", "content": "Bonjour."},
            {"role": "user", "content": "Encore?"},
        ],
        max_completion_tokens=100,
        temperature=1.7,
        top_p=0.5,
        stop=["END", "STOP"],
        seed=7,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        reasoning_effort="high",
        user="user-123",
        metadata={"team": "a"},
    )
    assert fake_gemini.only().json == {
        "systemInstruction": {"parts": [{"text": "You are terse."}, {"text": "Answer in French."}]},
        "contents": [
            USER_CONTENT,
            {"role": "model", "parts": [{"text": "Bonjour."}]},
            {"role": "user", "parts": [{"text": "Encore?"}]},
        ],
        "generationConfig": {
            "temperature": 1.7,
            "topP": 0.5,
            "maxOutputTokens": 100,
            "stopSequences": ["END", "STOP"],
            "seed": 7,
            "presencePenalty": 0.1,
            "frequencyPenalty": 0.2,
            "thinkingConfig": {"thinkingBudget": 24576, "includeThoughts": True},
        },
    }


def test_tool_call_round_trip_keeps_the_thought_signature(
    client: openai.OpenAI, fake_gemini: FakeGemini
) -> None:
    """Turn 1: Gemini answers two function calls (no ids; a signature on the first). Turn 2: the SDK
    sends the assistant message back as it got it, plus the tool results; Gemini must see its
    functionCall parts again, the signature on the same part, and functionResponse parts named."""
    parts = [
        text_part("Checking."),
        function_call_part("get_weather", {"city": "Paris"}, signature=SIGNATURE),
        function_call_part("get_time", {"tz": "Europe/Paris"}),
    ]
    fake_gemini.enqueue(json_reply(gemini_response(parts)))
    messages: list[Any] = [{"role": "system", "content": "Use tools."}, USER]
    first = client.chat.completions.create(
        model=GEMINI_ALIAS, messages=messages, tools=[WEATHER_TOOL, TIME_TOOL]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    calls = choice.message.tool_calls or []
    assert [(c.type, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("function", "get_weather", {"city": "Paris"}),
        ("function", "get_time", {"tz": "Europe/Paris"}),
    ]
    weather_id, time_id = (c.id for c in calls)
    assert weather_id.startswith("call_") and weather_id.endswith(f"~sig~{SIGNATURE}")
    assert time_id.startswith("call_") and "~sig~" not in time_id
    assert weather_id.split("~sig~")[0] != time_id

    fake_gemini.reset()
    messages += [
        choice.message,  # the SDK's own message object, as applications append it
        {"role": "tool", "tool_call_id": weather_id, "content": '{"temp_c": 18}'},
        {"role": "tool", "tool_call_id": time_id, "content": "14:05"},
    ]
    second = client.chat.completions.create(
        model=GEMINI_ALIAS, messages=messages, tools=[WEATHER_TOOL, TIME_TOOL]
    )
    assert second.choices[0].message.content == "Hello from the fake Gemini upstream."
    sent = fake_gemini.only().json
    assert sent["systemInstruction"] == {"parts": [{"text": "Use tools."}]}
    assert sent["contents"] == [
        USER_CONTENT,
        {
            "role": "model",
            "parts": [
                {"text": "Checking."},
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": SIGNATURE,
                },
                {"functionCall": {"name": "get_time", "args": {"tz": "Europe/Paris"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}},
                {"functionResponse": {"name": "get_time", "response": {"output": "14:05"}}},
            ],
        },
    ]
    assert sent["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parametersJsonSchema": WEATHER_PARAMS,
                },
                {"name": "get_time", "parametersJsonSchema": TIME_PARAMS},
            ]
        }
    ]
    assert "toolConfig" not in sent


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        pytest.param("auto", {"mode": "AUTO"}, id="auto"),
        pytest.param("none", {"mode": "NONE"}, id="none"),
        pytest.param("required", {"mode": "ANY"}, id="required"),
        pytest.param(
            {"type": "function", "function": {"name": "get_time"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_time"]},
            id="named",
        ),
    ],
)
def test_tool_choice(client: openai.OpenAI, fake_gemini: FakeGemini, tool_choice: Any, expected: Any) -> None:
    client.chat.completions.create(
        model=GEMINI_ALIAS, messages=[USER], tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=tool_choice
    )
    assert fake_gemini.only().json["toolConfig"] == {"functionCallingConfig": expected}


def test_tool_result_for_an_unknown_call_is_400(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=GEMINI_ALIAS,
            messages=[USER, {"role": "tool", "tool_call_id": "call_nowhere", "content": "x"}],
        )
    error = assert_error_body(caught.value.response.json(), code="unsupported_value")
    assert "call_nowhere" in error["message"]
    assert fake_gemini.requests == []


def test_data_url_image_becomes_inline_data(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    client.chat.completions.create(
        model=GEMINI_ALIAS,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PNG_B64}", "detail": "low"},
                    },
                ],
            }
        ],
    )
    assert fake_gemini.only().json["contents"] == [
        {
            "role": "user",
            "parts": [{"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": PNG_B64}}],
        }
    ]


def test_http_image_url_is_400(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=GEMINI_ALIAS, messages=[{"role": "user", "content": [image]}])
    error = assert_error_body(caught.value.response.json(), code="unsupported_value")
    assert "base64 data URL" in error["message"]
    assert fake_gemini.requests == []


class Answer(pydantic.BaseModel):
    city: str
    population: int


def test_structured_output_with_the_parse_helper(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(json_reply(gemini_response([text_part('{"city": "Paris", "population": 2100000}')])))
    completion = client.chat.completions.parse(model=GEMINI_ALIAS, messages=[USER], response_format=Answer)
    assert completion.choices[0].message.parsed == Answer(city="Paris", population=2100000)
    config = fake_gemini.only().json["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = config["responseJsonSchema"]
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"city", "population"}
    assert schema["required"] == ["city", "population"]


def test_json_object_mode(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    client.chat.completions.create(
        model=GEMINI_ALIAS, messages=[USER], response_format={"type": "json_object"}
    )
    assert fake_gemini.only().json["generationConfig"] == {"responseMimeType": "application/json"}


# ---- response translation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reasons(client: openai.OpenAI, fake_gemini: FakeGemini, finish: str, expected: str) -> None:
    fake_gemini.enqueue(json_reply(gemini_response(finish_reason=finish)))
    completion = client.chat.completions.create(model=GEMINI_ALIAS, messages=[USER])
    assert completion.choices[0].finish_reason == expected


def test_n_candidates_become_choices(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    candidates = [
        candidate([text_part("first")], index=None),
        candidate([text_part("second")], "MAX_TOKENS", index=1),
    ]
    fake_gemini.enqueue(json_reply(gemini_response(candidates=candidates)))
    completion = client.chat.completions.create(model=GEMINI_ALIAS, messages=[USER], n=2)
    assert [(c.index, c.message.content, c.finish_reason) for c in completion.choices] == [
        (0, "first", "stop"),
        (1, "second", "length"),
    ]
    assert fake_gemini.only().json["generationConfig"] == {"candidateCount": 2}


def test_thought_parts_become_reasoning_content(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    parts = [text_part("Let me think.", thought=True), text_part("42")]
    fake_gemini.enqueue(json_reply(gemini_response(parts)))
    raw = client.chat.completions.with_raw_response.create(model=GEMINI_ALIAS, messages=[USER])
    message = json.loads(raw.content)["choices"][0]["message"]
    assert message["content"] == "42"
    assert message["reasoning_content"] == "Let me think."


def test_blocked_prompt_is_a_content_filter_answer(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    body = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": GEMINI_MODEL_VERSION,
    }
    fake_gemini.enqueue(json_reply(body))
    completion = client.chat.completions.create(model=GEMINI_ALIAS, messages=[USER])
    assert completion.id.startswith("chatcmpl-")
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content is None
    assert completion.usage is not None and completion.usage.prompt_tokens == 9


def test_malformed_function_call_is_a_502(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    bad = {
        "content": {},
        "finishReason": "MALFORMED_FUNCTION_CALL",
        "finishMessage": "Malformed function call: x",
    }
    fake_gemini.enqueue(json_reply(gemini_response(candidates=[bad])))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=GEMINI_ALIAS, messages=[USER], tools=[WEATHER_TOOL])
    assert caught.value.status_code == 502
    error = assert_error_body(caught.value.response.json(), type_="server_error")
    assert "MALFORMED_FUNCTION_CALL" in error["message"]
    assert "Malformed function call: x" in error["message"]


# ---- streaming -------------------------------------------------------------------------------------


def test_stream_text_with_the_sync_sdk(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    text = ""
    finishes = []
    with client.chat.completions.create(model=GEMINI_ALIAS, messages=[USER], stream=True) as stream:
        for chunk in stream:
            assert chunk.id == "fake-stream-0001"
            assert chunk.model == GEMINI_MODEL_VERSION
            for choice in chunk.choices:
                text += choice.delta.content or ""
                if choice.finish_reason:
                    finishes.append(choice.finish_reason)
    assert text == "Hello from the fake stream."
    assert finishes == ["stop"]
    rec = fake_gemini.only()
    assert (rec.path, rec.query) == (STREAM_PATH, "alt=sse")
    assert_gemini_headers(rec.headers)
    assert rec.json == {"contents": [USER_CONTENT]}


async def test_stream_with_the_async_sdk_and_usage(
    async_client: openai.AsyncOpenAI, fake_gemini: FakeGemini
) -> None:
    usage = usage_metadata(prompt=30, candidates=10, cached=8, thoughts=5)
    fake_gemini.enqueue(sse_reply(gemini_stream(usage=usage)))
    stream = await async_client.chat.completions.create(
        model=GEMINI_ALIAS, messages=[USER], stream=True, stream_options={"include_usage": True}
    )
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "Hello from the fake stream."
    )
    assert chunks[-2].choices[0].finish_reason == "stop"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (30, 15, 45)
    assert last.usage.prompt_tokens_details is not None
    assert last.usage.prompt_tokens_details.cached_tokens == 8
    assert last.usage.completion_tokens_details is not None
    assert last.usage.completion_tokens_details.reasoning_tokens == 5
    assert "stream_options" not in fake_gemini.only().json


async def test_stream_bytes_split_anywhere_with_crlf(
    http: aiohttp.ClientSession, fake_gemini: FakeGemini
) -> None:
    fake_gemini.enqueue(sse_reply(rechunk(gemini_stream(crlf=True), 7)))
    body = {"model": GEMINI_ALIAS, "messages": [USER], "stream": True}
    async with http.post("/v1/chat/completions", json=body) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        chunks = assert_valid_stream(await response.read())
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        == "Hello from the fake stream."
    )
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["finish_reason"] for c in chunks].count("stop") == 1
    assert all("usage" not in c for c in chunks)  # not asked for


def test_stream_tool_calls_with_the_stream_helper(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    calls = [
        function_call_part("get_weather", {"city": "Paris"}, signature=SIGNATURE),
        function_call_part("get_weather", {"city": "Rome"}),
        function_call_part("get_time", {"tz": "Europe/Rome"}),
    ]
    fake_gemini.enqueue(
        sse_reply(gemini_stream(pieces=["Checking."], function_calls=calls, calls_per_chunk=2))
    )
    with client.chat.completions.stream(
        model=GEMINI_ALIAS, messages=[USER], tools=[WEATHER_TOOL, TIME_TOOL]
    ) as stream:
        done = [
            (e.index, e.name, e.arguments) for e in stream if e.type == "tool_calls.function.arguments.done"
        ]
        final = stream.get_final_completion()
    assert done == [
        (0, "get_weather", '{"city":"Paris"}'),
        (1, "get_weather", '{"city":"Rome"}'),
        (2, "get_time", '{"tz":"Europe/Rome"}'),
    ]
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    ids = [c.id for c in choice.message.tool_calls or []]
    assert ids[0].endswith(f"~sig~{SIGNATURE}")
    assert all(i.startswith("call_") for i in ids)
    assert len(set(ids)) == 3


async def test_stream_tool_call_deltas_are_whole(
    http: aiohttp.ClientSession, fake_gemini: FakeGemini
) -> None:
    calls = [
        function_call_part("get_weather", {"city": "Paris"}, call_id="fc_1"),
        function_call_part("get_time", {}),
    ]
    fake_gemini.enqueue(sse_reply(gemini_stream(pieces=[], function_calls=calls)))
    body = {"model": GEMINI_ALIAS, "messages": [USER], "stream": True, "tools": [WEATHER_TOOL, TIME_TOOL]}
    async with http.post("/v1/chat/completions", json=body) as response:
        chunks = assert_valid_stream(await response.read())
    found = tool_call_deltas(chunks)
    assert found[(0, 0)] == {"id": "fc_1", "name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert found[(0, 1)]["name"] == "get_time"
    assert found[(0, 1)]["arguments"] == "{}"
    assert set(found) == {(0, 0), (0, 1)}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_mid_stream_error_raises_api_error(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    parts = gemini_stream(finish_reason=None)[:2]
    fake_gemini.enqueue(
        sse_reply([*parts, gemini_stream_error(503, "UNAVAILABLE", "The model is overloaded.")])
    )
    received = ""
    with pytest.raises(openai.APIError) as caught:  # noqa: PT012 - the error arrives while iterating
        stream = client.chat.completions.create(model=GEMINI_ALIAS, messages=[USER], stream=True)
        for chunk in stream:
            received += chunk.choices[0].delta.content or ""
    assert received == "Hello from"
    assert not isinstance(caught.value, openai.APIStatusError)  # the status was already 200
    assert caught.value.message == "The model is overloaded."
    assert caught.value.code == "service_unavailable"
    assert caught.value.type == "server_error"


@pytest.mark.parametrize(
    ("cut", "code"), [("closed", "upstream_stream_truncated"), ("aborted", "upstream_connection_error")]
)
async def test_stream_without_a_finish_is_an_error(
    http: aiohttp.ClientSession, fake_gemini: FakeGemini, cut: str, code: str
) -> None:
    """A clean close before the finishReason, or a dropped connection: never a complete-looking answer."""
    parts = gemini_stream(finish_reason=None)
    fake_gemini.enqueue(sse_reply([*parts, ABORT] if cut == "aborted" else parts))
    body = {
        "model": GEMINI_ALIAS,
        "messages": [USER],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with http.post("/v1/chat/completions", json=body) as response:
        events = assert_valid_stream(await response.read(), allow_error=True)
    assert events[-1]["error"]["code"] == code
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert text == "Hello from the fake stream."


def test_streaming_request_upstream_error_is_an_http_error(
    client: openai.OpenAI, fake_gemini: FakeGemini
) -> None:
    fake_gemini.enqueue(gemini_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=GEMINI_ALIAS, messages=[USER], stream=True)
    assert caught.value.status_code == 503
    assert_error_body(caught.value.response.json(), code="service_unavailable", type_="server_error")


# ---- upstream errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "exc_type", "status", "type_", "code"),
    [
        pytest.param(
            gemini_error(
                429, "RESOURCE_EXHAUSTED", "Resource has been exhausted", details=[retry_info("17s")]
            ),
            openai.RateLimitError,
            429,
            "rate_limit_error",
            "rate_limit_exceeded",
            id="429",
        ),
        pytest.param(
            gemini_error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
            ),
            openai.BadRequestError,
            400,
            "authentication_error",
            "invalid_api_key",
            id="400-bad-key",
        ),
        pytest.param(
            gemini_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."),
            openai.BadRequestError,
            400,
            "invalid_request_error",
            "invalid_argument",
            id="400",
        ),
        pytest.param(
            gemini_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."),
            openai.PermissionDeniedError,
            403,
            "permission_error",
            "permission_denied",
            id="403",
        ),
        pytest.param(
            gemini_error(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta"),
            openai.NotFoundError,
            404,
            "invalid_request_error",
            "model_not_found",
            id="404",
        ),
        pytest.param(
            gemini_error(500, "INTERNAL", "An internal error has occurred."),
            openai.InternalServerError,
            500,
            "server_error",
            "internal_error",
            id="500",
        ),
        pytest.param(
            gemini_error(504, "DEADLINE_EXCEEDED", "Deadline exceeded."),
            openai.InternalServerError,
            504,
            "server_error",
            "timeout",
            id="504",
        ),
    ],
)
def test_upstream_errors_become_sdk_exceptions(
    client: openai.OpenAI,
    fake_gemini: FakeGemini,
    reply: Reply,
    exc_type: type[openai.APIStatusError],
    status: int,
    type_: str,
    code: str,
) -> None:
    fake_gemini.enqueue(reply)
    with pytest.raises(exc_type) as caught:
        client.chat.completions.create(model=GEMINI_ALIAS, messages=[USER])
    assert caught.value.status_code == status
    error = assert_error_body(caught.value.response.json(), code=code, type_=type_)
    assert error["message"] == json.loads(reply.body)["error"]["message"]
    if status == 429:  # Gemini's RetryInfo delay, as the header OpenAI clients honour
        assert caught.value.response.headers["retry-after"] == "17"


def test_non_json_upstream_error(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(Reply(502, {"Content-Type": "text/html"}, [b"<html>Bad Gateway</html>"]))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=GEMINI_ALIAS, messages=[USER])
    assert caught.value.status_code == 502
    assert "Bad Gateway" in assert_error_body(caught.value.response.json(), type_="server_error")["message"]


# ---- unsupported parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        pytest.param({"logprobs": True}, "logprobs", id="logprobs"),
        pytest.param(
            {"parallel_tool_calls": False, "tools": [WEATHER_TOOL]}, "parallel_tool_calls", id="parallel"
        ),
        pytest.param({"logit_bias": {"50256": -100}}, "logit_bias", id="logit_bias"),
    ],
)
def test_unsupported_parameter_is_rejected(
    client: openai.OpenAI, fake_gemini: FakeGemini, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=GEMINI_ALIAS, messages=[USER], **extra)
    error = assert_error_body(caught.value.response.json(), code="unsupported_parameter")
    assert error["param"] == param
    assert fake_gemini.requests == []


def test_unsupported_parameter_is_dropped_when_the_provider_says_so(
    client: openai.OpenAI, fake_gemini: FakeGemini
) -> None:
    completion = client.chat.completions.create(
        model=GEMINI_DROP_ALIAS, messages=[USER], logprobs=True, top_logprobs=2, temperature=0
    )
    assert completion.choices[0].message.content == "Hello from the fake Gemini upstream."
    assert fake_gemini.only().json == {"contents": [USER_CONTENT], "generationConfig": {"temperature": 0}}


# ---- embeddings and legacy completions -------------------------------------------------------------


def test_embeddings_with_the_sdk_default_base64(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    raw = client.embeddings.with_raw_response.create(model=EMBED_ALIAS, input="Why is the sky blue?")
    body = json.loads(raw.content)
    encoded = body["data"][0]["embedding"]
    assert isinstance(encoded, str)  # the SDK asked for base64 (its default) and got it
    assert list(struct.unpack("<4f", base64.b64decode(encoded))) == [0.25, 0.5, 0.75, 1.0]
    result = raw.parse()
    assert result.data[0].embedding == [0.25, 0.5, 0.75, 1.0]  # decoded by the SDK
    assert result.usage.prompt_tokens == 0
    rec = fake_gemini.only()
    assert rec.path == EMBED_PATH
    assert_gemini_headers(rec.headers)
    assert rec.json == {
        "requests": [
            {
                "content": {"parts": [{"text": "Why is the sky blue?"}]},
                "model": f"models/{EMBED_UPSTREAM_MODEL}",
            }
        ]
    }


async def test_embeddings_float_with_dimensions(
    async_client: openai.AsyncOpenAI, fake_gemini: FakeGemini
) -> None:
    raw = await async_client.embeddings.with_raw_response.create(
        model=EMBED_ALIAS, input=["first", "second"], dimensions=3, encoding_format="float"
    )
    body = assert_valid(EMBEDDINGS, json.loads(raw.content))
    assert [(d["index"], d["embedding"]) for d in body["data"]] == [
        (0, [0.25, 0.5, 0.75]),
        (1, [0.5, 1.0, 1.5]),
    ]
    assert body["model"] == EMBED_ALIAS
    assert body["usage"] == {"prompt_tokens": 0, "total_tokens": 0}
    common = {"model": f"models/{EMBED_UPSTREAM_MODEL}", "outputDimensionality": 3}
    assert fake_gemini.only().json == {
        "requests": [
            {"content": {"parts": [{"text": "first"}]}, **common},
            {"content": {"parts": [{"text": "second"}]}, **common},
        ]
    }


def test_legacy_completions(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    raw = client.completions.with_raw_response.create(model=GEMINI_ALIAS, prompt="Say hello", max_tokens=20)
    assert_valid(COMPLETION, json.loads(raw.content))
    completion = raw.parse()
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "Hello from the fake Gemini upstream."
    assert completion.choices[0].finish_reason == "stop"
    assert fake_gemini.only().json == {
        "contents": [USER_CONTENT],
        "generationConfig": {"maxOutputTokens": 20},
    }


def test_legacy_completions_stream(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    with client.completions.create(
        model=GEMINI_ALIAS, prompt="Say hello", stream=True, stream_options={"include_usage": True}
    ) as stream:
        chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Hello from the fake stream."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 19
    assert fake_gemini.only().path == STREAM_PATH


async def test_legacy_completions_stream_chunks_are_valid(
    http: aiohttp.ClientSession, fake_gemini: FakeGemini
) -> None:
    body = {"model": GEMINI_ALIAS, "prompt": "Say hello", "stream": True}
    async with http.post("/v1/completions", json=body) as response:
        chunks = assert_valid_stream(await response.read(), COMPLETION)
    assert {c["object"] for c in chunks} == {"text_completion"}
    assert fake_gemini.only().json == {"contents": [USER_CONTENT]}


def test_chat_body_is_valid(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model=GEMINI_ALIAS, messages=[USER])
    assert_valid(CHAT, json.loads(raw.content))


def test_client_key_reaches_no_upstream(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    client.chat.completions.create(model=GEMINI_ALIAS, messages=[USER])
    client.embeddings.create(model=EMBED_ALIAS, input="x", encoding_format="float")
    for rec in fake_gemini.requests:
        assert_gemini_headers(rec.headers)
        assert CLIENT_KEY.encode() not in rec.raw
