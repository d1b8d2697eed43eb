"""The official openai SDK against the gateway, with an `openai`-dialect provider pointed at FakeOpenAI
(and the built-in mock provider). Every client-facing body and stream chunk is checked against the spec."""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
import openai
import pytest

from tests.support.fake_upstreams import (
    ABORT,
    FakeOpenAI,
    Reply,
    json_reply,
    openai_chat_chunks,
    openai_chat_completion,
    openai_error,
    openai_tool_call,
    openai_usage,
    sse_reply,
)
from tests.support.openai_spec import (
    CHAT,
    COMPLETION,
    EMBEDDINGS,
    MODEL,
    MODELS,
    assert_error_body,
    assert_valid,
    assert_valid_stream,
)
from tests.support.routes import (
    ANTHROPIC_ALIAS,
    CLIENT_KEY,
    EMBED_ALIAS,
    EMBED_UPSTREAM_MODEL,
    INSTRUCT_ALIAS,
    INSTRUCT_UPSTREAM_MODEL,
    MOCK_ALIAS,
    OPENAI_ALIAS,
    OPENAI_KEY,
    OPENAI_UPSTREAM_MODEL,
    SLASH_ALIAS,
)

USER = {"role": "user", "content": "Say hello"}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
    },
}
TWO_CALLS = [
    openai_tool_call("call_weather01", "get_weather", '{"city": "Paris"}'),
    openai_tool_call("call_time02", "get_time", '{"tz": "Europe/Paris"}'),
]


def assert_upstream_auth(headers: dict[str, str]) -> None:
    """The provider's key is sent; the client's key is sent nowhere."""
    assert headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert all(CLIENT_KEY not in value for value in headers.values()), headers


# ---- plain chat ----------------------------------------------------------------------------------


def test_chat_forwards_body_unchanged_except_model(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    messages = [{"role": "system", "content": "You are terse."}, USER]
    extra = {"custom_vendor_field": {"nested": [1, 2, {"deep": True}]}, "top_k": 5}
    raw = client.chat.completions.with_raw_response.create(
        model=OPENAI_ALIAS,
        messages=messages,
        temperature=0.3,
        seed=7,
        max_completion_tokens=50,
        extra_body=extra,
    )
    completion = raw.parse()
    assert raw.status_code == 200
    assert_valid(CHAT, json.loads(raw.content))
    assert completion.choices[0].message.content == "Hello from the fake OpenAI upstream."
    assert completion.choices[0].finish_reason == "stop"
    assert raw.headers["x-request-id"]

    rec = fake_openai.only()
    assert (rec.method, rec.path) == ("POST", "/v1/chat/completions")
    assert rec.json == {
        "model": OPENAI_UPSTREAM_MODEL,
        "messages": messages,
        "temperature": 0.3,
        "seed": 7,
        "max_completion_tokens": 50,
        **extra,
    }
    assert_upstream_auth(rec.headers)


async def test_chat_async_client_with_system_message(
    async_client: openai.AsyncOpenAI, fake_openai: FakeOpenAI
) -> None:
    messages = [
        {"role": "system", "content": "Answer in French."},
        {"role": "developer", "content": "Be brief."},
        USER,
    ]
    completion = await async_client.chat.completions.create(model=OPENAI_ALIAS, messages=messages)
    assert completion.choices[0].message.content == "Hello from the fake OpenAI upstream."
    assert completion.usage is not None and completion.usage.total_tokens == 19
    rec = fake_openai.only()
    assert rec.json == {"model": OPENAI_UPSTREAM_MODEL, "messages": messages}
    assert_upstream_auth(rec.headers)


def test_multi_turn_tool_results_pass_through(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    messages: list[dict[str, Any]] = [
        USER,
        {"role": "assistant", "content": None, "tool_calls": TWO_CALLS},
        {"role": "tool", "tool_call_id": "call_weather01", "content": "18C, cloudy"},
        {"role": "tool", "tool_call_id": "call_time02", "content": [{"type": "text", "text": "14:05"}]},
    ]
    completion = client.chat.completions.create(
        model=OPENAI_ALIAS,
        messages=messages,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice="auto",
        parallel_tool_calls=True,
    )
    assert completion.choices[0].message.content
    assert fake_openai.only().json == {
        "model": OPENAI_UPSTREAM_MODEL,
        "messages": messages,
        "tools": [WEATHER_TOOL, TIME_TOOL],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
    }


def test_tool_call_response_reaches_the_sdk(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(json_reply(openai_chat_completion(OPENAI_UPSTREAM_MODEL, None, tool_calls=TWO_CALLS)))
    raw = client.chat.completions.with_raw_response.create(
        model=OPENAI_ALIAS, messages=[USER], tools=[WEATHER_TOOL, TIME_TOOL]
    )
    assert_valid(CHAT, json.loads(raw.content))
    choice = raw.parse().choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("call_weather01", "get_weather", {"city": "Paris"}),
        ("call_time02", "get_time", {"tz": "Europe/Paris"}),
    ]


# ---- streaming -----------------------------------------------------------------------------------


def test_stream_text_with_the_sync_sdk(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    text = ""
    finish = None
    with client.chat.completions.create(model=OPENAI_ALIAS, messages=[USER], stream=True) as stream:
        for chunk in stream:
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
    assert text == "Hello from the fake stream."
    assert finish == "stop"
    # the upstream is always asked for the usage (the gateway counts it; this client is not shown it)
    assert fake_openai.only().json == {
        "model": OPENAI_UPSTREAM_MODEL,
        "messages": [USER],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_stream_bytes_are_relayed_unchanged_and_valid(
    http: aiohttp.ClientSession, fake_openai: FakeOpenAI
) -> None:
    parts = openai_chat_chunks(OPENAI_UPSTREAM_MODEL)
    fake_openai.enqueue(sse_reply(parts))
    async with http.post(
        "/v1/chat/completions", json={"model": OPENAI_ALIAS, "messages": [USER], "stream": True}
    ) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        raw = await r.read()
    assert raw == b"".join(p for p in parts if isinstance(p, bytes))
    chunks = assert_valid_stream(raw)
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        == "Hello from the fake stream."
    )


async def test_stream_tool_calls_accumulate_with_the_stream_helper(
    async_client: openai.AsyncOpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(sse_reply(openai_chat_chunks(OPENAI_UPSTREAM_MODEL, tool_calls=TWO_CALLS)))
    async with async_client.chat.completions.stream(
        model=OPENAI_ALIAS, messages=[USER], tools=[WEATHER_TOOL, TIME_TOOL]
    ) as stream:
        done_events = [
            (event.index, event.name, event.arguments)
            async for event in stream
            if event.type == "tool_calls.function.arguments.done"
        ]
        final = await stream.get_final_completion()
    assert done_events == [(0, "get_weather", '{"city": "Paris"}'), (1, "get_time", '{"tz": "Europe/Paris"}')]
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or []] == [
        ("call_weather01", "get_weather", '{"city": "Paris"}'),
        ("call_time02", "get_time", '{"tz": "Europe/Paris"}'),
    ]


async def test_stream_include_usage_ends_with_a_usage_chunk(
    http: aiohttp.ClientSession, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(
        sse_reply(
            openai_chat_chunks(
                OPENAI_UPSTREAM_MODEL, include_usage=True, usage=openai_usage(30, 5, cached=12)
            )
        )
    )
    body = {
        "model": OPENAI_ALIAS,
        "messages": [USER],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with http.post("/v1/chat/completions", json=body) as response:
        chunks = assert_valid_stream(await response.read())
    assert fake_openai.only().json["stream_options"] == {"include_usage": True}
    last = chunks[-1]
    assert last["choices"] == []
    assert last["usage"]["prompt_tokens"] == 30
    assert last["usage"]["prompt_tokens_details"]["cached_tokens"] == 12
    assert all(c.get("usage") is None for c in chunks[:-1])


# ---- upstream errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "exc_type", "status", "code"),
    [
        pytest.param(
            openai_error(
                429,
                "Rate limit reached for gpt-4o",
                "requests",
                code="rate_limit_exceeded",
                headers={"Retry-After": "7", "x-should-retry": "true"},
            ),
            openai.RateLimitError,
            429,
            "rate_limit_exceeded",
            id="429",
        ),
        pytest.param(
            openai_error(401, "Incorrect API key provided", "invalid_request_error", code="invalid_api_key"),
            openai.AuthenticationError,
            401,
            "invalid_api_key",
            id="401",
        ),
        pytest.param(
            openai_error(
                400, "Invalid value for 'n'", "invalid_request_error", param="n", code="invalid_value"
            ),
            openai.BadRequestError,
            400,
            "invalid_value",
            id="400",
        ),
        pytest.param(
            openai_error(500, "The server had an error while processing your request.", "server_error"),
            openai.InternalServerError,
            500,
            None,
            id="500",
        ),
    ],
)
def test_upstream_errors_become_sdk_exceptions(
    client: openai.OpenAI,
    fake_openai: FakeOpenAI,
    reply: Any,
    exc_type: type[openai.APIStatusError],
    status: int,
    code: str | None,
) -> None:
    fake_openai.enqueue(reply)
    with pytest.raises(exc_type) as caught:
        client.chat.completions.create(model=OPENAI_ALIAS, messages=[USER])
    exc = caught.value
    assert exc.status_code == status
    upstream_error = json.loads(reply.body)["error"]
    error = assert_error_body(exc.response.json(), code=code)
    assert error == upstream_error  # an OpenAI envelope is kept as it is
    assert exc.code == code
    for name, value in reply.headers.items():
        if name.lower() in ("retry-after", "x-should-retry"):
            assert exc.response.headers[name] == value


def test_non_json_upstream_error_is_wrapped_in_the_envelope(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(Reply(502, {"Content-Type": "text/html"}, [b"<html>Bad Gateway</html>"]))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=OPENAI_ALIAS, messages=[USER])
    assert caught.value.status_code == 502
    error = assert_error_body(caught.value.response.json(), type_="server_error")
    assert "Bad Gateway" in error["message"]


# ---- embeddings and legacy completions -----------------------------------------------------------


def test_embeddings_pass_through(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    raw = client.embeddings.with_raw_response.create(
        model=EMBED_ALIAS, input=["first", "second"], encoding_format="float", dimensions=4
    )
    assert_valid(EMBEDDINGS, json.loads(raw.content))
    result = raw.parse()
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 4
    rec = fake_openai.only()
    assert rec.path == "/v1/embeddings"
    assert rec.json == {
        "model": EMBED_UPSTREAM_MODEL,
        "input": ["first", "second"],
        "encoding_format": "float",
        "dimensions": 4,
    }
    assert_upstream_auth(rec.headers)


def test_legacy_completions_pass_through(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    raw = client.completions.with_raw_response.create(
        model=INSTRUCT_ALIAS, prompt="Once upon", max_tokens=5, echo=False
    )
    assert_valid(COMPLETION, json.loads(raw.content))
    assert raw.parse().choices[0].text == " and so on."
    rec = fake_openai.only()
    assert rec.path == "/v1/completions"
    assert rec.json == {
        "model": INSTRUCT_UPSTREAM_MODEL,
        "prompt": "Once upon",
        "max_tokens": 5,
        "echo": False,
    }


async def test_legacy_completions_stream(http: aiohttp.ClientSession, fake_openai: FakeOpenAI) -> None:
    body = {"model": INSTRUCT_ALIAS, "prompt": "Once upon", "stream": True}
    async with http.post("/v1/completions", json=body) as response:
        assert response.status == 200
        chunks = assert_valid_stream(await response.read(), COMPLETION)
    assert "".join(c["choices"][0]["text"] for c in chunks) == " and so on."
    assert fake_openai.only().json == {
        **body,
        "model": INSTRUCT_UPSTREAM_MODEL,
        "stream_options": {"include_usage": True},  # always asked: the gateway counts it
    }


# ---- the gateway's own answers ---------------------------------------------------------------------


def test_unknown_model_is_404_model_not_found(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=[USER])
    assert caught.value.code == "model_not_found"
    error = assert_error_body(
        caught.value.response.json(), code="model_not_found", type_="invalid_request_error"
    )
    assert error["param"] == "model"
    assert "no-such-model" in error["message"]
    assert fake_openai.requests == []


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    raw = client.models.with_raw_response.list()
    assert_valid(MODELS, json.loads(raw.content))
    ids = {model.id for model in raw.parse()}
    assert {OPENAI_ALIAS, ANTHROPIC_ALIAS, EMBED_ALIAS, MOCK_ALIAS} <= ids

    raw_model = client.models.with_raw_response.retrieve(ANTHROPIC_ALIAS)
    assert_valid(MODEL, json.loads(raw_model.content))
    model = raw_model.parse()
    assert (model.id, model.object, model.owned_by) == (ANTHROPIC_ALIAS, "model", "anthropic-fake")


def test_retrieve_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model")
    assert_error_body(caught.value.response.json(), code="model_not_found")


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        pytest.param({"temperature": "hot"}, "temperature", id="temperature-string"),
        pytest.param({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role", id="bad-role"),
        pytest.param({"n": 0}, "n", id="n-zero"),
    ],
)
def test_invalid_request_is_400_with_param(
    client: openai.OpenAI, fake_openai: FakeOpenAI, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=OPENAI_ALIAS, messages=[USER], extra_body=extra)
    error = assert_error_body(caught.value.response.json(), type_="invalid_request_error")
    assert error["param"] == param
    assert caught.value.param == param
    assert fake_openai.requests == []


async def test_unparseable_json_body_is_400(http: aiohttp.ClientSession) -> None:
    async with http.post(
        "/v1/chat/completions", data=b"{not json", headers={"Content-Type": "application/json"}
    ) as r:
        assert r.status == 400
        assert_error_body(await r.json(), type_="invalid_request_error")


async def test_unknown_url_is_404_in_the_envelope(http: aiohttp.ClientSession) -> None:
    async with http.post("/v1/nope", json={}) as response:
        assert response.status == 404
        assert_error_body(await response.json(), code="unknown_url")


# ---- the built-in mock provider --------------------------------------------------------------------


def test_mock_provider_chat(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=MOCK_ALIAS, messages=[{"role": "user", "content": "ping pong"}]
    )
    assert_valid(CHAT, json.loads(raw.content))
    assert raw.parse().choices[0].message.content == "You said: ping pong"


def test_mock_provider_stream(client: openai.OpenAI) -> None:
    with client.chat.completions.create(
        model=MOCK_ALIAS,
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: one two three"
    assert chunks[-1].usage is not None and chunks[-1].choices == []


async def test_mock_provider_stream_is_valid(http: aiohttp.ClientSession) -> None:
    body = {"model": MOCK_ALIAS, "messages": [USER], "stream": True, "tools": [WEATHER_TOOL]}
    async with http.post("/v1/chat/completions", json=body) as response:
        chunks = assert_valid_stream(await response.read())
    calls = [call for c in chunks for call in c["choices"][0]["delta"].get("tool_calls") or []]
    assert calls[0]["function"]["name"] == "get_weather"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_mock_provider_tool_call(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MOCK_ALIAS,
        messages=[USER],
        tools=[TIME_TOOL, WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [c.function.name for c in choice.message.tool_calls or []] == ["get_weather"]


def test_mock_provider_embeddings(client: openai.OpenAI) -> None:
    raw = client.embeddings.with_raw_response.create(model=MOCK_ALIAS, input="hello", encoding_format="float")
    assert_valid(EMBEDDINGS, json.loads(raw.content))
    assert len(raw.parse().data[0].embedding) == 8


async def test_stream_upstream_connection_drops(http: aiohttp.ClientSession, fake_openai: FakeOpenAI) -> None:
    parts = openai_chat_chunks(OPENAI_UPSTREAM_MODEL)
    fake_openai.enqueue(sse_reply([*parts[:2], ABORT]))
    body = {"model": OPENAI_ALIAS, "messages": [USER], "stream": True}
    async with http.post("/v1/chat/completions", json=body) as response:
        assert response.status == 200
        events = assert_valid_stream(await response.read(), allow_error=True)
    assert events[-1]["error"]["code"] == "upstream_connection_error"
    assert events[1]["choices"][0]["delta"]["content"] == "Hello"


def test_alias_with_a_slash(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    model = client.models.retrieve(SLASH_ALIAS)
    assert model.id == SLASH_ALIAS
    completion = client.chat.completions.create(model=SLASH_ALIAS, messages=[USER])
    assert completion.choices[0].message.content
    assert fake_openai.only().json["model"] == OPENAI_UPSTREAM_MODEL


async def test_wrong_method_is_405_in_the_envelope(http: aiohttp.ClientSession) -> None:
    async with http.get("/v1/chat/completions") as response:
        assert response.status == 405
        assert "POST" in response.headers["Allow"]
        assert_error_body(await response.json(), code="method_not_allowed")


def test_the_request_id_is_always_ours(client: openai.OpenAI) -> None:
    """A client's X-Request-Id is logged as client_request_id, not echoed: the SDK's request_id is
    always the gateway's own, success or error."""
    raw = client.chat.completions.with_raw_response.create(
        model=MOCK_ALIAS, messages=[USER], extra_headers={"X-Request-Id": "req-from-client-42"}
    )
    assert re.fullmatch(r"req_[0-9a-f]{24}", raw.headers["x-request-id"])
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model="no-such-model", messages=[USER], extra_headers={"X-Request-Id": "req-from-client-43"}
        )
    assert caught.value.request_id is not None
    assert re.fullmatch(r"req_[0-9a-f]{24}", caught.value.request_id)


async def test_pass_through_stream_without_done_is_reported(
    http: aiohttp.ClientSession, fake_openai: FakeOpenAI
) -> None:
    parts = openai_chat_chunks(OPENAI_UPSTREAM_MODEL, done=False)
    fake_openai.enqueue(sse_reply(parts[:3]))  # role chunk, "Hello", " from"; then the upstream ends
    body = {"model": OPENAI_ALIAS, "messages": [USER], "stream": True}
    async with http.post("/v1/chat/completions", json=body) as response:
        raw = await response.read()
    events = assert_valid_stream(raw, allow_error=True)
    assert "error" in events[-1]
