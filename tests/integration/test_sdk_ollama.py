"""The official openai SDK against the gateway, with an `ollama`-dialect provider pointed at FakeOllama
(Ollama's native API over real HTTP: JSON, and NDJSON streams): what the fake receives is checked
against the native wire format, and every body the client gets against the OpenAI spec. Ollama's
OpenAI-compatible /v1 is served by the `openai` dialect (last test, against FakeOpenAI)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import openai
import pydantic
import pytest

from tests.support.fake_ollama import (
    MODEL,
    FakeOllama,
    ndjson_reply,
    ollama_chat,
    ollama_embed,
    ollama_error,
    ollama_line,
    ollama_stream,
    ollama_stream_error,
    ollama_tool_call,
)
from tests.support.fake_upstreams import ABORT, FakeOpenAI, Reply, json_reply
from tests.support.openai_spec import COMPLETION, assert_error_body, assert_valid_stream
from tests.support.routes import CLIENT_KEY
from tests.support.sdk_harness import fake_fixtures, running_gateway, sdk_fixtures
from tests.support.sdk_payloads import PNG_B64

ALIAS = "llama-local"
CLOUD_ALIAS = "llama-cloud"
EMBED_ALIAS = "minilm-local"
EMBED_MODEL = "all-minilm"
V1_ALIAS = "llama-v1"
CLOUD_KEY = "ollama-cloud-test-key"

USER = {"role": "user", "content": "Say hello"}
WEATHER_PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Current weather", "parameters": WEATHER_PARAMS},
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


# ---- fixtures: this module's own gateway and fake ------------------------------------------------


fake_ollama, _fresh_fake_ollama = fake_fixtures("fake_ollama", FakeOllama)


@pytest.fixture(scope="module")
def ollama_gateway(
    tmp_path_factory: pytest.TempPathFactory, fake_ollama: FakeOllama, fake_openai: FakeOpenAI
) -> Iterator[str]:
    config = {
        "log": {"level": "warning", "format": "json"},
        "providers": {
            "ollama": {"dialect": "ollama", "base_url": fake_ollama.url},  # local: no key
            "ollama-cloud": {"dialect": "ollama", "base_url": fake_ollama.url, "api_key": CLOUD_KEY},
            # Ollama's OpenAI-compatible API: the openai dialect, base_url ending in /v1
            "ollama-v1": {"dialect": "openai", "base_url": f"{fake_openai.url}/v1"},
        },
        "models": {
            ALIAS: [{"provider": "ollama", "model": MODEL}],
            CLOUD_ALIAS: [{"provider": "ollama-cloud", "model": "gpt-oss:120b"}],
            EMBED_ALIAS: [{"provider": "ollama", "model": EMBED_MODEL}],
            V1_ALIAS: [{"provider": "ollama-v1", "model": MODEL}],
        },
    }
    with running_gateway(tmp_path_factory.mktemp("ollama") / "routes.yaml", config) as url:
        yield url


client, async_client, http = sdk_fixtures("ollama_gateway")


def assert_no_client_key(headers: dict[str, str]) -> None:
    assert all(CLIENT_KEY not in value for value in headers.values()), headers


# ---- chat: request and response translation -----------------------------------------------------


def test_plain_chat(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    fake_ollama.enqueue(json_reply(ollama_chat(prompt_eval_count=26, eval_count=9)))
    completion = client.chat.completions.create(model=ALIAS, messages=[USER])
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == MODEL
    choice = completion.choices[0]
    assert choice.message.content == "Hello from the fake Ollama upstream."
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (26, 9)
    assert completion.usage.total_tokens == 35

    rec = fake_ollama.only()
    assert (rec.method, rec.path) == ("POST", "/api/chat")
    assert "authorization" not in rec.headers  # a local Ollama takes no key
    assert_no_client_key(rec.headers)
    assert rec.json == {"model": MODEL, "messages": [USER], "stream": False}  # stream false sent explicitly


def test_ids_are_generated_per_response(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model=ALIAS, messages=[USER])
    second = client.chat.completions.create(model=ALIAS, messages=[USER])
    assert first.id != second.id


def test_a_provider_key_is_sent_as_a_bearer_token(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    client.chat.completions.create(model=CLOUD_ALIAS, messages=[USER])
    rec = fake_ollama.only()
    assert rec.headers["authorization"] == f"Bearer {CLOUD_KEY}"
    assert rec.json["model"] == "gpt-oss:120b"


async def test_system_messages_and_options(async_client: openai.AsyncOpenAI, fake_ollama: FakeOllama) -> None:
    await async_client.chat.completions.create(
        model=ALIAS,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            USER,
        ],
        max_tokens=50,
        temperature=0.2,
        top_p=0.9,
        stop=["END", "STOP"],
        seed=42,
        presence_penalty=0.5,
        frequency_penalty=0.25,
        reasoning_effort="high",
    )
    assert fake_ollama.only().json == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "system", "content": "Answer in French."},
            USER,
        ],
        "options": {
            "temperature": 0.2,
            "top_p": 0.9,
            "num_predict": 50,
            "stop": ["END", "STOP"],
            "seed": 42,
            "presence_penalty": 0.5,
            "frequency_penalty": 0.25,
        },
        "think": "high",
        "stream": False,
    }


def test_multi_turn_with_tool_calls_and_results(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    reply_calls = [ollama_tool_call("get_weather", {"city": "Rome"}), ollama_tool_call("get_time", {})]
    fake_ollama.enqueue(json_reply(ollama_chat("", tool_calls=reply_calls)))
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_w",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {"id": "call_t", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_t", "content": "14:05"},
        {"role": "tool", "tool_call_id": "call_w", "content": [{"type": "text", "text": "18C, cloudy"}]},
        {"role": "user", "content": "And in Rome?"},
    ]
    completion = client.chat.completions.create(
        model=ALIAS, messages=messages, tools=[WEATHER_TOOL, TIME_TOOL]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"  # done_reason stop with tool calls
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [(c.type, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("function", "get_weather", {"city": "Rome"}),
        ("function", "get_time", {}),
    ]
    assert all(c.id.startswith("call_") for c in calls)
    assert len({c.id for c in calls}) == 2

    sent = fake_ollama.only().json
    assert sent["messages"] == [
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "call_w", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"id": "call_t", "function": {"name": "get_time", "arguments": {}}},
            ],
        },
        {"role": "tool", "content": "14:05", "tool_name": "get_time", "tool_call_id": "call_t"},
        {"role": "tool", "content": "18C, cloudy", "tool_name": "get_weather", "tool_call_id": "call_w"},
        {"role": "user", "content": "And in Rome?"},
    ]
    assert sent["tools"] == [WEATHER_TOOL, TIME_TOOL]
    assert "tool_choice" not in sent


def test_tool_call_ids_from_the_upstream_are_kept(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    calls = [ollama_tool_call("get_time", {"tz": "UTC"}, call_id="call_abc")]
    fake_ollama.enqueue(json_reply(ollama_chat("", tool_calls=calls)))
    completion = client.chat.completions.create(model=ALIAS, messages=[USER], tools=[TIME_TOOL])
    assert [c.id for c in completion.choices[0].message.tool_calls or []] == ["call_abc"]


def test_tool_choice_none_sends_no_tools(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    client.chat.completions.create(model=ALIAS, messages=[USER], tools=[WEATHER_TOOL], tool_choice="none")
    assert "tools" not in fake_ollama.only().json


@pytest.mark.parametrize(
    "tool_choice",
    [
        pytest.param("required", id="required"),
        pytest.param({"type": "function", "function": {"name": "get_time"}}, id="named"),
    ],
)
def test_forcing_a_tool_is_rejected(client: openai.OpenAI, fake_ollama: FakeOllama, tool_choice: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=ALIAS, messages=[USER], tools=[TIME_TOOL], tool_choice=tool_choice
        )
    error = assert_error_body(caught.value.response.json(), code="unsupported_parameter")
    assert error["param"] == "tool_choice"
    assert fake_ollama.requests == []


def test_image_data_urls_become_images(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    client.chat.completions.create(
        model=ALIAS,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                ],
            }
        ],
    )
    assert fake_ollama.only().json["messages"] == [
        {"role": "user", "content": "What is in this picture?", "images": [PNG_B64]}
    ]


def test_image_http_urls_are_a_clear_400(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": [image]}])
    error = assert_error_body(caught.value.response.json(), code="unsupported_value")
    assert "base64 data URLs" in error["message"]
    assert fake_ollama.requests == []


class City(pydantic.BaseModel):
    city: str
    population: int


def test_structured_output_with_parse(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    fake_ollama.enqueue(json_reply(ollama_chat('{"city": "Paris", "population": 2102650}')))
    completion = client.chat.completions.parse(model=ALIAS, messages=[USER], response_format=City)
    assert completion.choices[0].message.parsed == City(city="Paris", population=2102650)
    schema = fake_ollama.only().json["format"]
    assert schema["type"] == "object"
    assert schema["required"] == ["city", "population"]


def test_json_object_is_format_json(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    client.chat.completions.create(model=ALIAS, messages=[USER], response_format={"type": "json_object"})
    assert fake_ollama.only().json["format"] == "json"


def test_thinking_becomes_reasoning_content(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    fake_ollama.enqueue(json_reply(ollama_chat("42", thinking="6 times 7.", done_reason="length")))
    raw = client.chat.completions.with_raw_response.create(model=ALIAS, messages=[USER])
    choice = json.loads(raw.content)["choices"][0]
    assert (choice["message"]["content"], choice["message"]["reasoning_content"]) == ("42", "6 times 7.")
    assert choice["finish_reason"] == "length"


# ---- streaming (NDJSON upstream) ------------------------------------------------------------------


def test_stream_text_with_the_sync_sdk(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    text, finish, ids = "", None, set()
    with client.chat.completions.create(model=ALIAS, messages=[USER], stream=True) as stream:
        for chunk in stream:
            ids.add(chunk.id)
            assert chunk.model == MODEL
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
    assert text == "Hello from the fake stream."
    assert finish == "stop"
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    assert fake_ollama.only().json == {"model": MODEL, "messages": [USER], "stream": True}


async def test_stream_with_usage_and_the_async_sdk(
    async_client: openai.AsyncOpenAI, fake_ollama: FakeOllama
) -> None:
    fake_ollama.enqueue(ndjson_reply(ollama_stream(done_reason="length", prompt_eval_count=30, eval_count=5)))
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
    assert (
        chunks[-1].usage.prompt_tokens,
        chunks[-1].usage.completion_tokens,
        chunks[-1].usage.total_tokens,
    ) == (
        30,
        5,
        35,
    )
    assert "stream_options" not in fake_ollama.only().json


def test_stream_tool_calls_with_the_stream_helper(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    groups = [
        [
            ollama_tool_call("get_weather", {"city": "Paris"}),
            ollama_tool_call("get_time", {"tz": "CET"}, "call_t"),
        ],
        [ollama_tool_call("get_weather", {"city": "Rome"})],
    ]
    fake_ollama.enqueue(ndjson_reply(ollama_stream(["Checking."], tool_calls=groups)))
    with client.chat.completions.stream(
        model=ALIAS, messages=[USER], tools=[WEATHER_TOOL, TIME_TOOL]
    ) as stream:
        done = [
            (e.index, e.name, e.arguments) for e in stream if e.type == "tool_calls.function.arguments.done"
        ]
        final = stream.get_final_completion()
    assert done == [
        (0, "get_weather", '{"city":"Paris"}'),
        (1, "get_time", '{"tz":"CET"}'),
        (2, "get_weather", '{"city":"Rome"}'),
    ]
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    ids = [c.id for c in choice.message.tool_calls or []]
    assert ids[1] == "call_t"
    assert ids[0].startswith("call_") and ids[2].startswith("call_") and len(set(ids)) == 3


async def test_stream_chunks_are_valid(http: aiohttp.ClientSession, fake_ollama: FakeOllama) -> None:
    thinking = ollama_line(
        {
            "model": MODEL,
            "created_at": "t",
            "message": {"role": "assistant", "content": "", "thinking": "Hmm."},
            "done": False,
        }
    )
    fake_ollama.enqueue(ndjson_reply([thinking, *ollama_stream(["Hi"])]))
    async with http.post(
        "/v1/chat/completions", json={"model": ALIAS, "messages": [USER], "stream": True}
    ) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        chunks = assert_valid_stream(await response.read())
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "Hmm."},
        {"content": "Hi"},
        {},
    ]
    assert all("usage" not in c for c in chunks)  # not asked for


def test_mid_stream_error_line_raises_api_error(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    parts = ollama_stream(["Hel"], complete=False)
    fake_ollama.enqueue(ndjson_reply([*parts, ollama_stream_error("llama runner process has terminated")]))
    received = ""
    with pytest.raises(openai.APIError) as caught:  # noqa: PT012 - the error arrives while iterating
        for chunk in client.chat.completions.create(model=ALIAS, messages=[USER], stream=True):
            received += chunk.choices[0].delta.content or ""
    assert received == "Hel"
    assert not isinstance(caught.value, openai.APIStatusError)  # the status was already 200
    assert caught.value.message == "llama runner process has terminated"
    assert caught.value.type == "server_error"


@pytest.mark.parametrize(
    ("parts", "code"),
    [
        pytest.param(ollama_stream(["Hel"], complete=False), "upstream_stream_truncated", id="truncated"),
        pytest.param(
            [*ollama_stream(["Hel"], complete=False), b'{"model":"llama3.2","mess'],
            "upstream_stream_truncated",
            id="cut-line",
        ),
        pytest.param(
            [*ollama_stream(["Hel"], complete=False), ABORT], "upstream_connection_error", id="dropped"
        ),
        pytest.param(
            [*ollama_stream(["Hel"], complete=False), b"{not json\n"], "upstream_invalid_event", id="not-json"
        ),
    ],
)
async def test_broken_streams_end_with_an_error_event(
    http: aiohttp.ClientSession, fake_ollama: FakeOllama, parts: list[Any], code: str
) -> None:
    fake_ollama.enqueue(ndjson_reply(parts))
    async with http.post(
        "/v1/chat/completions", json={"model": ALIAS, "messages": [USER], "stream": True}
    ) as response:
        assert response.status == 200
        events = assert_valid_stream(await response.read(), allow_error=True)
    assert events[-1]["error"]["code"] == code
    assert events[1]["choices"][0]["delta"] == {"content": "Hel"}


async def test_last_line_without_newline_completes_the_stream(
    http: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    *lines, done_line = ollama_stream(["Hi"])
    assert isinstance(done_line, bytes)
    fake_ollama.enqueue(ndjson_reply([*lines, done_line.rstrip(b"\n")]))
    async with http.post(
        "/v1/chat/completions", json={"model": ALIAS, "messages": [USER], "stream": True}
    ) as response:
        events = assert_valid_stream(await response.read())
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


# ---- upstream errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exc_type", "type_", "code"),
    [
        pytest.param(400, openai.BadRequestError, "invalid_request_error", None, id="400"),
        pytest.param(404, openai.NotFoundError, "invalid_request_error", "model_not_found", id="404"),
        pytest.param(429, openai.RateLimitError, "rate_limit_error", "rate_limit_exceeded", id="429"),
        pytest.param(500, openai.InternalServerError, "server_error", None, id="500"),
        pytest.param(502, openai.InternalServerError, "server_error", None, id="502"),
    ],
)
def test_upstream_errors_become_sdk_exceptions(
    client: openai.OpenAI,
    fake_ollama: FakeOllama,
    status: int,
    exc_type: type[openai.APIStatusError],
    type_: str,
    code: str | None,
) -> None:
    message = f"ollama says {status}"
    fake_ollama.enqueue(ollama_error(status, message, {"retry-after": "3"}))
    with pytest.raises(exc_type) as caught:
        client.chat.completions.create(model=ALIAS, messages=[USER])
    assert caught.value.status_code == status
    error = assert_error_body(caught.value.response.json(), type_=type_)
    assert (error["message"], error["code"]) == (message, code)
    assert caught.value.response.headers["retry-after"] == "3"


def test_streaming_request_upstream_error_is_an_http_error(
    client: openai.OpenAI, fake_ollama: FakeOllama
) -> None:
    fake_ollama.enqueue(ollama_error(404, 'model "nope" not found, try pulling it first'))
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model=ALIAS, messages=[USER], stream=True)
    assert_error_body(caught.value.response.json(), code="model_not_found")


def test_non_json_error_body(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    fake_ollama.enqueue(Reply(502, {"Content-Type": "text/plain"}, [b"Bad Gateway"]))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=ALIAS, messages=[USER])
    assert assert_error_body(caught.value.response.json(), type_="server_error")["message"] == "Bad Gateway"


# ---- embeddings -----------------------------------------------------------------------------------


def test_embeddings_with_the_sdk_default_base64(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    fake_ollama.enqueue(json_reply(ollama_embed(["a", "b"], EMBED_MODEL, dimensions=3)))
    result = client.embeddings.create(model=EMBED_ALIAS, input=["a", "b"])
    assert result.model == EMBED_MODEL
    assert [d.index for d in result.data] == [0, 1]
    assert result.data[0].embedding == pytest.approx([0.1, 0.2, 0.3])
    assert result.data[1].embedding == pytest.approx([0.2, 0.4, 0.6])
    assert result.usage.prompt_tokens == result.usage.total_tokens == 8
    rec = fake_ollama.only()
    assert rec.path == "/api/embed"
    assert rec.json == {"model": EMBED_MODEL, "input": ["a", "b"]}


async def test_embeddings_float_and_dimensions(
    async_client: openai.AsyncOpenAI, fake_ollama: FakeOllama
) -> None:
    result = await async_client.embeddings.create(
        model=EMBED_ALIAS, input="hello", encoding_format="float", dimensions=2
    )
    assert result.data[0].embedding == [0.1, 0.2]
    assert fake_ollama.only().json == {"model": EMBED_MODEL, "input": "hello", "dimensions": 2}


def test_embeddings_token_input_is_a_400(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=EMBED_ALIAS, input=[[1, 2, 3]], encoding_format="float")
    assert_error_body(caught.value.response.json(), code="unsupported_value")
    assert fake_ollama.requests == []


# ---- legacy completions (through chat) ------------------------------------------------------------


def test_legacy_completions_through_chat(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    completion = client.completions.create(model=ALIAS, prompt="Once upon", max_tokens=5)
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "Hello from the fake Ollama upstream."
    assert completion.choices[0].finish_reason == "stop"
    assert fake_ollama.only().json == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Once upon"}],
        "options": {"num_predict": 5},
        "stream": False,
    }


async def test_legacy_completions_stream_through_chat(
    http: aiohttp.ClientSession, fake_ollama: FakeOllama
) -> None:
    fake_ollama.enqueue(ndjson_reply(ollama_stream(done_reason="length")))
    async with http.post(
        "/v1/completions", json={"model": ALIAS, "prompt": "Once upon", "stream": True}
    ) as response:
        assert response.status == 200
        chunks = assert_valid_stream(await response.read(), COMPLETION)
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Hello from the fake stream."
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert fake_ollama.only().json["stream"] is True


# ---- Ollama's OpenAI-compatible /v1: the openai dialect -------------------------------------------


def test_openai_compatible_v1_through_the_openai_dialect(
    client: openai.OpenAI, fake_openai: FakeOpenAI, fake_ollama: FakeOllama
) -> None:
    completion = client.chat.completions.create(model=V1_ALIAS, messages=[USER], temperature=0.5)
    assert completion.choices[0].message.content == "Hello from the fake OpenAI upstream."
    with client.chat.completions.create(model=V1_ALIAS, messages=[USER], stream=True) as stream:
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello from the fake stream."
    first, second = fake_openai.requests
    assert (first.path, second.path) == ("/v1/chat/completions", "/v1/chat/completions")
    assert first.json == {"model": MODEL, "messages": [USER], "temperature": 0.5}
    stream_usage = {"include_usage": True}  # always asked: the gateway counts it
    assert second.json == {"model": MODEL, "messages": [USER], "stream": True, "stream_options": stream_usage}
    assert "authorization" not in first.headers  # no api_key on the provider: no auth header
    assert fake_ollama.requests == []
