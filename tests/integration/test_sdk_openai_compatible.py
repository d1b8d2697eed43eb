"""The official openai SDK against the gateway, through every OpenAI-compatible dialect (azure-openai,
azure-openai-v1, mistral, groq, deepseek, xai, vllm) over real HTTP, each provider pointed at
FakeCompatible speaking that provider's own flavour of the wire (filter frames, x_groq usage,
keep-alive comments, whole tool calls, ...). What the fake receives is checked against the provider's
reference; every body and stream chunk the SDK gets is checked against the OpenAI spec."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.fake_openai_compatible import (
    ANSWER,
    AZURE,
    BASE_PATHS,
    EMBEDDINGS,
    FLAVOURS,
    NATIVE_COMPLETIONS,
    FakeCompatible,
    azure_content_filter_error,
    azure_rate_limit_error,
    base_url,
    chat_completion,
    chat_stream,
    deepseek_insufficient_balance_error,
    groq_tool_use_failed_error,
    midstream_error_parts,
    mistral_extra_forbidden_error,
    tool_call,
    vector,
    vllm_not_found_error,
    xai_error,
)
from tests.support.fake_upstreams import Recorded, Reply, json_reply, sse_reply
from tests.support.openai_spec import assert_error_body
from tests.support.routes import CLIENT_KEY
from tests.support.sdk_harness import fake_fixtures, running_gateway, sdk_fixtures

API_VERSION = "2025-01-01-preview"
UPSTREAM_MODEL = {
    "azure-openai": "gpt4o-prod",  # the deployment name
    "azure-openai-v1": "gpt4o-prod-v1",
    "mistral": "mistral-large-latest",
    "groq": "llama-3.3-70b-versatile",
    "deepseek": "deepseek-chat",
    "xai": "grok-4-1-fast-non-reasoning",  # (its reasoning models take no stop sequences)
    "vllm": "Qwen/Qwen3-8B",
}
EMBED_MODEL = {
    "azure-openai": "embed-small",
    "azure-openai-v1": "embed-small-v1",
    "mistral": "mistral-embed",
    "vllm": "BAAI/bge-m3",
}
USER = {"role": "user", "content": "Say hello"}
GET_TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}
TWO_CALLS = [
    tool_call("Ab3dE6gH9", "get_time", '{"tz": "Europe/Rome"}'),
    tool_call("Zz9yX8wV7", "get_time", '{"tz": "Europe/Paris"}'),
]

pytestmark = pytest.mark.parametrize("flavour", FLAVOURS)


def key(flavour: str) -> str:
    return f"sk-{flavour}-upstream"


def chat_alias(flavour: str) -> str:
    return f"{flavour}-chat"


def embed_alias(flavour: str) -> str:
    return f"{flavour}-embed"


# ---- fixtures ----------------------------------------------------------------------------------------------


compat, _fresh_compat = fake_fixtures("compat", FakeCompatible)


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory, compat: FakeCompatible) -> Iterator[str]:
    providers: dict[str, Any] = {}
    models: dict[str, Any] = {}
    for flavour in FLAVOURS:
        provider: dict[str, Any] = {
            "dialect": flavour,
            "base_url": base_url(compat.url, flavour),
            "api_key": key(flavour),
        }
        if flavour == "azure-openai":
            provider["vars"] = {"api_version": API_VERSION}
        providers[flavour] = provider
        models[chat_alias(flavour)] = [{"provider": flavour, "model": UPSTREAM_MODEL[flavour]}]
        if flavour in EMBED_MODEL:
            models[embed_alias(flavour)] = [{"provider": flavour, "model": EMBED_MODEL[flavour]}]
    config = {"log": {"level": "warning", "format": "json"}, "providers": providers, "models": models}
    path = tmp_path_factory.mktemp("compatible") / "routes.yaml"
    with running_gateway(path, config, name="gateway-compatible") as url:
        yield url


client, async_client, http = sdk_fixtures("gateway_url")


# ---- what the fake must have received ----------------------------------------------------------------------


def expected_path(flavour: str, operation: str, model: str) -> str:
    if flavour == "azure-openai":
        return f"/azure-openai/openai/deployments/{model}/{operation}"
    return f"/{flavour}{BASE_PATHS[flavour]}/{operation}"


def assert_sent_to(rec: Recorded, flavour: str, operation: str, model: str) -> None:
    assert (rec.method, rec.path) == ("POST", expected_path(flavour, operation, model))
    assert rec.query == (f"api-version={API_VERSION}" if flavour == "azure-openai" else "")
    if flavour in AZURE:
        assert rec.headers["api-key"] == key(flavour)
        assert "authorization" not in rec.headers
    else:
        assert rec.headers["authorization"] == f"Bearer {key(flavour)}"
    assert all(CLIENT_KEY not in value for value in rec.headers.values()), rec.headers
    assert rec.json["model"] == model


# ---- chat --------------------------------------------------------------------------------------------------


def test_chat(flavour: str, client: openai.OpenAI, compat: FakeCompatible) -> None:
    raw = client.chat.completions.with_raw_response.create(model=chat_alias(flavour), messages=[USER])
    completion = raw.parse()
    assert completion.choices[0].message.content == ANSWER.format(flavour=flavour)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == UPSTREAM_MODEL[flavour]
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 7)
    body = json.loads(raw.content)
    if flavour == "deepseek":  # cache hits as OpenAI's cached_tokens; the chain of thought passes
        assert completion.usage.prompt_tokens_details is not None
        assert completion.usage.prompt_tokens_details.cached_tokens == 8
        assert body["choices"][0]["message"]["reasoning_content"] == "The user greets me."
    if flavour in AZURE:  # Azure's annotations pass as extras
        assert body["prompt_filter_results"][0]["prompt_index"] == 0
    rec = compat.only()
    assert_sent_to(rec, flavour, "chat/completions", UPSTREAM_MODEL[flavour])
    assert rec.json["messages"] == [USER]


async def test_chat_parameters(
    flavour: str, async_client: openai.AsyncOpenAI, compat: FakeCompatible
) -> None:
    completion = await async_client.chat.completions.create(
        model=chat_alias(flavour),
        messages=[{"role": "system", "content": "Be terse."}, USER],
        max_completion_tokens=50,
        temperature=0.3,
        stop=["END"],
        user="user-1",
    )
    assert completion.choices[0].message.content == ANSWER.format(flavour=flavour)
    sent = compat.only().json
    common = {"model": UPSTREAM_MODEL[flavour], "temperature": 0.3, "stop": ["END"]}
    if flavour in ("mistral", "deepseek"):  # max_completion_tokens -> max_tokens; no user
        assert sent == {
            **common,
            "messages": [{"role": "system", "content": "Be terse."}, USER],
            "max_tokens": 50,
        }
    else:
        assert sent == {
            **common,
            "messages": [{"role": "system", "content": "Be terse."}, USER],
            "max_completion_tokens": 50,
            "user": "user-1",
        }


def test_tool_calls_multi_turn(flavour: str, client: openai.OpenAI, compat: FakeCompatible) -> None:
    model = UPSTREAM_MODEL[flavour]
    compat.enqueue(json_reply(chat_completion(flavour, model, tool_calls=TWO_CALLS)))
    history: list[Any] = [
        {"role": "user", "content": "Time in Rome and Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [tool_call("call_0fypS1hVXq", "get_time", '{"tz": "Europe/Berlin"}')],
        },
        {"role": "tool", "tool_call_id": "call_0fypS1hVXq", "content": "14:05"},
    ]
    completion = client.chat.completions.create(model=chat_alias(flavour), messages=history, tools=[GET_TIME])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.id, c.type, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("Ab3dE6gH9", "function", "get_time", {"tz": "Europe/Rome"}),
        ("Zz9yX8wV7", "function", "get_time", {"tz": "Europe/Paris"}),
    ]
    sent = compat.only().json["messages"]
    sent_call_id = sent[1]["tool_calls"][0]["id"]
    if flavour == "mistral":  # 9 alphanumerics, the same in the call and in its result
        assert len(sent_call_id) == 9 and sent_call_id.isalnum() and sent_call_id != "call_0fypS1hVXq"
    else:
        assert sent_call_id == "call_0fypS1hVXq"
    assert sent[2]["tool_call_id"] == sent_call_id
    assert sent[1]["tool_calls"][0]["function"] == {
        "name": "get_time",
        "arguments": '{"tz": "Europe/Berlin"}',
    }


# ---- streaming ---------------------------------------------------------------------------------------------


def test_stream_with_usage(flavour: str, client: openai.OpenAI, compat: FakeCompatible) -> None:
    chunks = list(
        client.chat.completions.create(
            model=chat_alias(flavour),
            messages=[USER],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake stream."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    # exactly one usage chunk, the last one, with no choices (OpenAI's layout, whatever the upstream's)
    with_usage = [c for c in chunks if c.usage is not None]
    assert with_usage == [chunks[-1]]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 19
    assert all(c.choices for c in chunks[:-1])  # filter frames and empty trailers never reach the client
    sent = compat.only().json
    if flavour == "mistral":
        assert "stream_options" not in sent  # Mistral rejects it
    else:
        assert sent["stream_options"] == {"include_usage": True}


def test_stream_usage_reported_only_the_providers_own_way(
    flavour: str, client: openai.OpenAI, compat: FakeCompatible
) -> None:
    """The upstream sends no usage chunk of its own: Groq's x_groq.usage and Mistral's usage on the
    last chunk still give the client OpenAI's usage chunk; the others have nothing to report."""
    compat.enqueue(sse_reply(chat_stream(flavour, UPSTREAM_MODEL[flavour], include_usage=False)))
    chunks = list(
        client.chat.completions.create(
            model=chat_alias(flavour), messages=[USER], stream=True, stream_options={"include_usage": True}
        )
    )
    with_usage = [c for c in chunks if c.usage is not None]
    if flavour in ("groq", "mistral"):
        assert with_usage == [chunks[-1]] and chunks[-1].choices == []
        assert chunks[-1].usage is not None
        assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.total_tokens) == (12, 19)
    else:
        assert with_usage == []
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "Hello from the fake stream."
    )


async def test_stream_without_usage(flavour: str, async_client: openai.AsyncOpenAI) -> None:
    stream = await async_client.chat.completions.create(
        model=chat_alias(flavour), messages=[USER], stream=True
    )
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert all(c.choices for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from the fake stream."
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert {c.id for c in chunks} == {f"chatcmpl-{flavour}-s"}


def test_stream_two_tool_calls_with_the_stream_helper(
    flavour: str, client: openai.OpenAI, compat: FakeCompatible
) -> None:
    compat.enqueue(sse_reply(chat_stream(flavour, UPSTREAM_MODEL[flavour], tool_calls=TWO_CALLS)))
    with client.chat.completions.stream(
        model=chat_alias(flavour), messages=[USER], tools=[GET_TIME]
    ) as stream:
        done = [
            (e.index, e.name, json.loads(e.arguments))
            for e in stream
            if e.type == "tool_calls.function.arguments.done"
        ]
        final = stream.get_final_completion()
    assert done == [(0, "get_time", {"tz": "Europe/Rome"}), (1, "get_time", {"tz": "Europe/Paris"})]
    assert final.choices[0].finish_reason == "tool_calls"
    assert [c.id for c in final.choices[0].message.tool_calls or []] == ["Ab3dE6gH9", "Zz9yX8wV7"]


def test_midstream_error(flavour: str, client: openai.OpenAI, compat: FakeCompatible) -> None:
    compat.enqueue(sse_reply(midstream_error_parts(flavour, UPSTREAM_MODEL[flavour])))
    stream = client.chat.completions.create(model=chat_alias(flavour), messages=[USER], stream=True)
    seen: list[str] = []
    with pytest.raises(openai.APIError):
        read_text(stream, seen)
    # Mistral's failing chunk still carries text ("lo"): it is relayed before the error
    assert "".join(seen) == ("Hello" if flavour == "mistral" else "Hel")


def read_text(stream: Any, sink: list[str]) -> None:
    for chunk in stream:
        sink.extend(c.delta.content or "" for c in chunk.choices)


# ---- errors and parameters ---------------------------------------------------------------------------------

ERRORS: dict[str, tuple[Any, type[openai.APIStatusError], int, str]] = {
    "azure-openai": (azure_content_filter_error, openai.BadRequestError, 400, "content_filter"),
    "azure-openai-v1": (azure_rate_limit_error, openai.RateLimitError, 429, "429"),
    "mistral": (mistral_extra_forbidden_error, openai.BadRequestError, 400, "extra_forbidden"),
    "groq": (groq_tool_use_failed_error, openai.BadRequestError, 400, "tool_use_failed"),
    "deepseek": (deepseek_insufficient_balance_error, openai.APIStatusError, 402, "insufficient_quota"),
    "xai": (xai_error, openai.BadRequestError, 400, "invalid-argument"),
    "vllm": (lambda: vllm_not_found_error("Qwen/Qwen3-8B"), openai.NotFoundError, 404, "model_not_found"),
}


def test_upstream_error(flavour: str, client: openai.OpenAI, compat: FakeCompatible) -> None:
    make_reply, exc_type, status, code = ERRORS[flavour]
    reply: Reply = make_reply()
    compat.enqueue(reply)
    with pytest.raises(exc_type) as caught:
        client.chat.completions.create(model=chat_alias(flavour), messages=[USER])
    assert caught.value.status_code == status
    error = assert_error_body(caught.value.response.json(), code=code)
    assert isinstance(error["message"], str) and error["message"]
    if flavour == "azure-openai-v1":
        assert caught.value.response.headers["retry-after"] == "2"
        assert caught.value.response.headers["retry-after-ms"] == "1500"
    if flavour == "groq":
        assert '<function=get_weather>{"city": Paris}</function>' in error["message"]
    if flavour == "mistral":
        assert error["param"] == "stream_options" and "Extra inputs are not permitted" in error["message"]
    if flavour == "deepseek":
        assert error["type"] == "insufficient_quota"


UNSUPPORTED: dict[str, dict[str, Any]] = {
    "mistral": {"logprobs": True},
    "groq": {"logit_bias": {"1234": -100}},
    "deepseek": {"seed": 7},
    "xai": {"presence_penalty": 0.5},
}


def test_unsupported_parameter_is_400(flavour: str, client: openai.OpenAI, compat: FakeCompatible) -> None:
    if flavour not in UNSUPPORTED:
        pytest.skip(f"{flavour} declares no unsupported chat parameter")
    params = UNSUPPORTED[flavour]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=chat_alias(flavour), messages=[USER], **params)
    error = assert_error_body(caught.value.response.json(), code="unsupported_parameter")
    assert error["param"] == next(iter(params))
    assert compat.requests == []


# ---- embeddings --------------------------------------------------------------------------------------------


def test_embeddings_with_the_sdk_default_base64(
    flavour: str, client: openai.OpenAI, compat: FakeCompatible
) -> None:
    if flavour not in EMBEDDINGS:
        with pytest.raises(openai.BadRequestError) as caught:
            client.embeddings.create(model=chat_alias(flavour), input="hello")
        assert_error_body(caught.value.response.json(), code="unsupported_endpoint")
        assert compat.requests == []
        return
    result = client.embeddings.create(model=embed_alias(flavour), input=["hello", "world"])  # base64
    assert [d.embedding for d in result.data] == [vector(0, 4), vector(1, 4)]
    rec = compat.only()
    assert_sent_to(rec, flavour, "embeddings", EMBED_MODEL[flavour])
    if flavour == "mistral":  # floats from Mistral, base64 made by the gateway
        assert rec.json == {"model": EMBED_MODEL[flavour], "input": ["hello", "world"]}
    else:
        assert rec.json["encoding_format"] == "base64"


async def test_embeddings_float_with_dimensions(
    flavour: str, async_client: openai.AsyncOpenAI, compat: FakeCompatible
) -> None:
    if flavour not in EMBEDDINGS:
        pytest.skip(f"{flavour} has no embeddings")
    result = await async_client.embeddings.create(
        model=embed_alias(flavour), input="hello", encoding_format="float", dimensions=3
    )
    assert result.data[0].embedding == vector(0, 3)
    sent = compat.only().json
    if flavour == "mistral":
        assert sent == {"model": EMBED_MODEL[flavour], "input": "hello", "output_dimension": 3}
    else:
        assert (sent["dimensions"], sent["encoding_format"]) == (3, "float")


# ---- legacy completions ------------------------------------------------------------------------------------


def test_legacy_completions(flavour: str, client: openai.OpenAI, compat: FakeCompatible) -> None:
    completion = client.completions.create(model=chat_alias(flavour), prompt="Once upon", max_tokens=5)
    assert completion.object == "text_completion"
    assert completion.choices[0].finish_reason == "stop"
    rec = compat.only()
    if flavour in NATIVE_COMPLETIONS:
        assert completion.choices[0].text == " and so on."
        assert_sent_to(rec, flavour, "completions", UPSTREAM_MODEL[flavour])
        assert rec.json["prompt"] == "Once upon"
    else:  # through chat
        assert completion.choices[0].text == ANSWER.format(flavour=flavour)
        assert_sent_to(rec, flavour, "chat/completions", UPSTREAM_MODEL[flavour])
        assert rec.json["messages"] == [{"role": "user", "content": "Once upon"}]


def test_legacy_completions_stream(flavour: str, client: openai.OpenAI, compat: FakeCompatible) -> None:
    chunks = list(client.completions.create(model=chat_alias(flavour), prompt="Once upon", stream=True))
    assert all(c.object == "text_completion" and c.choices for c in chunks)
    text = "".join(c.choices[0].text for c in chunks)
    assert text == (" and so on." if flavour in NATIVE_COMPLETIONS else "Hello from the fake stream.")
    assert chunks[-1].choices[0].finish_reason == "stop"
    rec = compat.only()
    operation = "completions" if flavour in NATIVE_COMPLETIONS else "chat/completions"
    assert_sent_to(rec, flavour, operation, UPSTREAM_MODEL[flavour])
    assert rec.json["stream"] is True


# ---- per-provider quirks -----------------------------------------------------------------------------------


def test_provider_specific_request_fixes(flavour: str, client: openai.OpenAI, compat: FakeCompatible) -> None:
    """reasoning_content echoed back on a turn without tool calls is stripped, except for vLLM (chat
    templates read it); Groq and Mistral: message names are left out; vLLM: its extras pass,
    stream_options without stream is left out; the others pass extras."""
    messages: list[Any] = [
        {"role": "user", "content": "9.11 or 9.8?", "name": "alice"},
        {"role": "assistant", "content": "9.8", "reasoning_content": "compare tenths"},
        {"role": "user", "content": "Why?"},
    ]
    client.chat.completions.create(
        model=chat_alias(flavour),
        messages=messages,
        stream_options={"include_usage": True},
        # (Mistral has no top_k: a 400 naming it, see the parameter matrix)
        extra_body={"top_k": 20} if flavour != "mistral" else {},
    )
    sent = compat.only().json
    user, assistant = sent["messages"][0], sent["messages"][1]
    assert ("name" in user) is (flavour not in ("groq", "mistral"))
    assert ("reasoning_content" in assistant) is (flavour == "vllm")
    assert ("stream_options" in sent) is (flavour not in ("vllm", "mistral"))
    assert ("top_k" in sent) is (flavour != "mistral")
