"""The official `anthropic` SDK against the gateway's Messages API (`POST /v1/messages`), with every
kind of upstream behind it: OpenAI, an OpenAI-compatible one (Mistral's flavour), Gemini and Bedrock
(translated: Messages -> canonical -> the provider's wire, and back), and Anthropic itself (the same
protocol: relayed). Each test runs against each upstream; every body and every stream event the SDK
receives is checked with the SDK's own models in strict mode, and the stream's grammar with it
(tests/support/anthropic_strict.py).

What an upstream was sent is read back in one shape whatever its wire (`conversation`, see
tests/support/anthropic_ingress_upstreams.py), so each test asserts the same thing everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.support.anthropic_harness import anthropic_fixtures
from tests.support.anthropic_ingress_upstreams import FAKES, STREAM_TEXT, UPSTREAMS, Upstream
from tests.support.fake_bedrock import bedrock_json
from tests.support.fake_openai_compatible import base_url
from tests.support.fake_upstreams import FakeUpstream, Recorded, Reply, json_reply
from tests.support.sdk_harness import fake_fixtures, running_gateway
from tests.support.sdk_payloads import PNG_B64

fake_openai, _fresh_fake_openai = fake_fixtures("fake_openai", FAKES["fake_openai"])
fake_compatible, _fresh_fake_compatible = fake_fixtures("fake_compatible", FAKES["fake_compatible"])
fake_gemini, _fresh_fake_gemini = fake_fixtures("fake_gemini", FAKES["fake_gemini"])
fake_bedrock, _fresh_fake_bedrock = fake_fixtures("fake_bedrock", FAKES["fake_bedrock"])
fake_anthropic, _fresh_fake_anthropic = fake_fixtures("fake_anthropic", FAKES["fake_anthropic"])

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
TIME = {"name": "get_time", "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}}}
HELLO = [{"role": "user", "content": "Hello?"}]


@pytest.fixture(scope="module")
def ingress_gateway(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    providers = {up.name: up.provider(request.getfixturevalue(up.fake).url) for up in UPSTREAMS.values()}
    models = {up.alias: [{"provider": up.name, "model": up.model}] for up in UPSTREAMS.values()}
    # vLLM says which stop sequence ended a choice (its `stop_reason`)
    vllm_url = base_url(request.getfixturevalue("fake_compatible").url, "vllm")
    providers["vllm"] = {"dialect": "vllm", "base_url": vllm_url, "api_key": "sk-vllm"}
    models["gw-vllm"] = [{"provider": "vllm", "model": "Qwen/Qwen3-8B"}]
    config = {"log": {"level": "warning", "format": "json"}, "providers": providers, "models": models}
    with running_gateway(tmp_path_factory.mktemp("anthropic-ingress") / "routes.yaml", config) as url:
        yield url


claude, async_claude = anthropic_fixtures("ingress_gateway")

each_upstream = pytest.mark.parametrize("upstream", list(UPSTREAMS.values()), ids=list(UPSTREAMS))


def fake_of(upstream: Upstream, request: pytest.FixtureRequest) -> FakeUpstream:
    fake: FakeUpstream = request.getfixturevalue(upstream.fake)
    return fake


def asked_to_stream(rec: Recorded) -> bool:
    return rec.path.endswith(("streamGenerateContent", "converse-stream")) or rec.json.get("stream") is True


# ---- plain answers: sync, async, streamed ------------------------------------------------------------------


@each_upstream
def test_create(claude: anthropic.Anthropic, upstream: Upstream, request: pytest.FixtureRequest) -> None:
    message = claude.messages.create(model=upstream.alias, max_tokens=256, messages=HELLO)
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == upstream.text  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert (message.usage.input_tokens, message.usage.output_tokens) == upstream.usage
    assert message.id.startswith("msg_")
    assert message._request_id is not None and message._request_id.startswith("req_")  # the gateway's id
    assert fake_of(upstream, request).only().json is not None


@each_upstream
async def test_create_async(async_claude: anthropic.AsyncAnthropic, upstream: Upstream) -> None:
    message = await async_claude.messages.create(model=upstream.alias, max_tokens=256, messages=HELLO)
    assert message.content[0].text == upstream.text  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"


@each_upstream
def test_stream_helper(
    claude: anthropic.Anthropic, upstream: Upstream, request: pytest.FixtureRequest
) -> None:
    with claude.messages.stream(model=upstream.alias, max_tokens=256, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == STREAM_TEXT
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].text == STREAM_TEXT  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == upstream.stream_usage
    assert asked_to_stream(fake_of(upstream, request).only())


@each_upstream
async def test_stream_helper_async(async_claude: anthropic.AsyncAnthropic, upstream: Upstream) -> None:
    async with async_claude.messages.stream(model=upstream.alias, max_tokens=256, messages=HELLO) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == STREAM_TEXT == final.content[0].text  # type: ignore[union-attr]


@each_upstream
def test_create_with_stream_true_yields_raw_events(claude: anthropic.Anthropic, upstream: Upstream) -> None:
    events = list(claude.messages.create(model=upstream.alias, max_tokens=256, messages=HELLO, stream=True))
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 1


# ---- tools -------------------------------------------------------------------------------------------------


def _turn(claude: anthropic.Anthropic, upstream: Upstream, messages: list[Any], stream: bool) -> Any:
    params: dict[str, Any] = {
        "model": upstream.alias,
        "max_tokens": 1024,
        "messages": messages,
        "tools": [WEATHER, TIME],
    }
    if not stream:
        return claude.messages.create(**params)
    with claude.messages.stream(**params) as events:
        for _ in events:
            pass
        return events.get_final_message()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@each_upstream
def test_tool_loop(
    claude: anthropic.Anthropic, upstream: Upstream, stream: bool, request: pytest.FixtureRequest
) -> None:
    """Two tool calls out (tool_use blocks with toolu_ ids), their results back (tool_result, one of
    them an error), then the answer: the upstream gets both calls and both results in its own wire."""
    fake = fake_of(upstream, request)
    fake.enqueue(upstream.calls([("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})], stream))
    messages: list[Any] = [{"role": "user", "content": "Weather and time in Paris?"}]
    first = _turn(claude, upstream, messages, stream)
    assert first.stop_reason == "tool_use"
    uses = [block for block in first.content if block.type == "tool_use"]
    assert [(use.name, use.input) for use in uses] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"tz": "CET"}),
    ]
    assert all(use.id.startswith("toolu_") for use in uses) and len({use.id for use in uses}) == 2

    messages.append({"role": "assistant", "content": first.content})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": uses[0].id, "content": "18C, sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": uses[1].id,
                    "content": [{"type": "text", "text": "no clock"}],
                    "is_error": True,
                },
            ],
        }
    )
    second = _turn(claude, upstream, messages, stream)
    assert second.stop_reason == "end_turn"
    assert second.content[-1].text == (STREAM_TEXT if stream else upstream.text)

    sent = upstream.conversation(fake.requests[1])
    assert sent == [
        ("user", "Weather and time in Paris?"),
        ("call", "get_weather", {"city": "Paris"}),
        ("call", "get_time", {"tz": "CET"}),
        ("result", "18C, sunny"),
        ("result", "no clock" if upstream.native else "Error: no clock"),
    ]


def test_tool_use_stream_after_text_has_consecutive_indices(
    claude: anthropic.Anthropic, fake_openai: FakeUpstream
) -> None:
    """text -> tool_use -> tool_use: each a block of its own, indices 0, 1, 2 (the strict check also
    verifies the grammar); the SDK assembles each input from its input_json_delta fragments."""
    from tests.support.fake_upstreams import openai_chat_chunks, openai_tool_call, sse_reply

    calls = [
        openai_tool_call("call_a", "get_weather", '{"city": "Paris"}'),
        openai_tool_call("call_b", "get_weather", '{"city": "Lyon"}'),
    ]
    text = openai_chat_chunks(pieces=("Let me", " check."), done=False)[:-1]  # without its finish chunk
    tools = openai_chat_chunks(tool_calls=calls, include_usage=True)[1:]  # without its role chunk
    fake_openai.enqueue(sse_reply([*text, *tools]))
    with claude.messages.stream(model="gw-openai", max_tokens=256, messages=HELLO, tools=[WEATHER]) as stream:
        events = list(stream)
        final = stream.get_final_message()
    starts = [e for e in events if e.type == "content_block_start"]
    assert [(e.index, e.content_block.type) for e in starts] == [
        (0, "text"),
        (1, "tool_use"),
        (2, "tool_use"),
    ]
    assert final.content[0].text == "Let me check."  # type: ignore[union-attr]
    assert [b.input for b in final.content[1:]] == [{"city": "Paris"}, {"city": "Lyon"}]  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"


@each_upstream
def test_tools_reach_the_upstream_without_what_it_rejects(
    claude: anthropic.Anthropic, upstream: Upstream, request: pytest.FixtureRequest
) -> None:
    claude.messages.create(model=upstream.alias, max_tokens=64, messages=HELLO, tools=[WEATHER])
    sent = fake_of(upstream, request).only().json
    schema = {
        "openai": lambda: sent["tools"][0]["function"]["parameters"],
        "compatible": lambda: sent["tools"][0]["function"]["parameters"],
        "gemini": lambda: sent["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"],
        "bedrock": lambda: sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"],
        "anthropic": lambda: sent["tools"][0]["input_schema"],
    }[upstream.name]()
    if upstream.native:
        assert schema == WEATHER["input_schema"]
    else:
        assert "$schema" not in schema
        assert schema == {k: v for k, v in WEATHER["input_schema"].items() if k != "$schema"}


TOOL_CHOICES = {
    "any": {"type": "any"},
    "tool": {"type": "tool", "name": "get_time"},
    "none": {"type": "none"},
    "auto_serial": {"type": "auto", "disable_parallel_tool_use": True},
}
# what each wire says for each choice
SENT_CHOICES: dict[str, dict[str, Any]] = {
    "openai": {
        "any": ("required", None),
        "tool": ({"type": "function", "function": {"name": "get_time"}}, None),
        "none": ("none", None),
        "auto_serial": ("auto", False),
    },
    "gemini": {
        "any": {"mode": "ANY"},
        "tool": {"mode": "ANY", "allowedFunctionNames": ["get_time"]},
        "none": {"mode": "NONE"},
        "auto_serial": "refused",
    },
    "bedrock": {
        "any": {"any": {}},
        "tool": {"tool": {"name": "get_time"}},
        "none": None,
        "auto_serial": "refused",
    },
}


@pytest.mark.parametrize("choice", list(TOOL_CHOICES))
@pytest.mark.parametrize("name", ["openai", "gemini", "bedrock", "anthropic"])
def test_tool_choice(
    claude: anthropic.Anthropic, name: str, choice: str, request: pytest.FixtureRequest
) -> None:
    upstream = UPSTREAMS[name]
    params: dict[str, Any] = {
        "messages": HELLO,
        "tools": [WEATHER, TIME],
        "tool_choice": TOOL_CHOICES[choice],
    }
    if SENT_CHOICES.get(name, {}).get(choice) == "refused":
        # no way to make Gemini or Converse call one tool at a time: refused, as for an OpenAI client,
        # naming the parameter as the client sent it
        with pytest.raises(anthropic.BadRequestError) as caught:
            claude.messages.create(model=upstream.alias, max_tokens=64, **params)
        assert "'tool_choice.disable_parallel_tool_use' is not supported" in caught.value.message
        assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
        assert fake_of(upstream, request).requests == []
        return
    claude.messages.create(model=upstream.alias, max_tokens=64, **params)
    sent = fake_of(upstream, request).only().json
    if name == "anthropic":
        assert sent["tool_choice"] == TOOL_CHOICES[choice]
    elif name == "openai":
        assert (sent.get("tool_choice"), sent.get("parallel_tool_calls")) == SENT_CHOICES[name][choice]
    elif name == "gemini":
        config = (sent.get("toolConfig") or {}).get("functionCallingConfig")
        assert config == SENT_CHOICES[name][choice]
    else:
        tool_config = sent.get("toolConfig") or {}
        assert tool_config.get("toolChoice") == SENT_CHOICES[name][choice]
        if choice == "none":  # Converse has no "none": no tools offered at all
            assert [t["toolSpec"]["name"] for t in tool_config.get("tools", [])] in (
                [],
                ["no_tools_available"],
            )


# ---- system, images, stop sequences ------------------------------------------------------------------------


SYSTEMS = {
    "string": "You are terse.",
    "blocks": [
        {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
    ],
}


@pytest.mark.parametrize("form", list(SYSTEMS))
@each_upstream
def test_system_as_string_or_blocks(
    claude: anthropic.Anthropic, upstream: Upstream, form: str, request: pytest.FixtureRequest
) -> None:
    claude.messages.create(model=upstream.alias, max_tokens=64, system=SYSTEMS[form], messages=HELLO)
    rec = fake_of(upstream, request).only()
    assert upstream.conversation(rec) == [("system", "You are terse."), ("user", "Hello?")]
    if upstream.native:
        assert rec.json["system"] == SYSTEMS[form]  # cache_control kept
    else:
        assert b"cache_control" not in rec.raw and b"ephemeral" not in rec.raw


@each_upstream
def test_a_system_message_inside_messages(
    claude: anthropic.Anthropic, upstream: Upstream, request: pytest.FixtureRequest
) -> None:
    """Claude Code sends `role: system` inside `messages`; a translated upstream gets it as its own
    system prompt (a native one gets it as it was sent)."""
    messages: Any = [{"role": "system", "content": "Be brief."}, *HELLO]
    claude.messages.create(model=upstream.alias, max_tokens=64, system="You are terse.", messages=messages)
    rec = fake_of(upstream, request).only()
    if upstream.native:
        assert rec.json["messages"] == messages
        return
    said = upstream.conversation(rec)
    assert said[-1] == ("user", "Hello?")
    systems = [entry[1] for entry in said if entry[0] == "system"]
    assert "You are terse." in "\n".join(systems) and "Be brief." in "\n".join(systems)


@each_upstream
def test_a_base64_image(
    claude: anthropic.Anthropic, upstream: Upstream, request: pytest.FixtureRequest
) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}
    content: Any = [{"type": "text", "text": "What is this?"}, image]
    claude.messages.create(
        model=upstream.alias, max_tokens=64, messages=[{"role": "user", "content": content}]
    )
    assert upstream.conversation(fake_of(upstream, request).only()) == [
        ("user", "What is this?"),
        ("image", "image/png", PNG_B64),
    ]


@each_upstream
def test_stop_sequences(
    claude: anthropic.Anthropic, upstream: Upstream, request: pytest.FixtureRequest
) -> None:
    message = claude.messages.create(
        model=upstream.alias, max_tokens=64, messages=HELLO, stop_sequences=["END", "##"]
    )
    sent = fake_of(upstream, request).only().json
    stops = {
        "openai": lambda: sent["stop"],
        "compatible": lambda: sent["stop"],
        "gemini": lambda: sent["generationConfig"]["stopSequences"],
        "bedrock": lambda: sent["inferenceConfig"]["stopSequences"],
        "anthropic": lambda: sent["stop_sequences"],
    }[upstream.name]()
    assert stops == ["END", "##"]
    assert message.stop_reason == "end_turn"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_the_stop_sequence_that_matched_when_the_upstream_says_it(
    claude: anthropic.Anthropic, fake_compatible: FakeUpstream, stream: bool
) -> None:
    from tests.support import anthropic_ingress_upstreams as replies

    stopped = {"index": 0, "finish_reason": "stop", "stop_reason": "##", "logprobs": None}
    if stream:
        base = {"id": "chatcmpl-v", "object": "chat.completion.chunk", "created": 1, "model": "Qwen/Qwen3-8B"}
        text = {
            **stopped,
            "delta": {"role": "assistant", "content": "Done"},
            "finish_reason": None,
            "stop_reason": None,
        }
        parts = [
            replies.openai_sse({**base, "choices": [text]}),
            replies.openai_sse({**base, "choices": [{**stopped, "delta": {}}]}),
        ]
        fake_compatible.enqueue(replies.sse_reply([*parts, b"data: [DONE]\n\n"]))
        with claude.messages.stream(
            model="gw-vllm", max_tokens=64, messages=HELLO, stop_sequences=["END", "##"]
        ) as events:
            message = events.get_final_message()
    else:
        body = replies.chat_completion("vllm", "Qwen/Qwen3-8B", "Done")
        body["choices"][0]["stop_reason"] = "##"
        fake_compatible.enqueue(replies.json_reply(body))
        message = claude.messages.create(
            model="gw-vllm", max_tokens=64, messages=HELLO, stop_sequences=["END", "##"]
        )
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "##")
    assert message.content[0].text == "Done"  # type: ignore[union-attr]


@each_upstream
def test_max_tokens_stop_reason(
    claude: anthropic.Anthropic, upstream: Upstream, request: pytest.FixtureRequest
) -> None:
    from tests.support import anthropic_ingress_upstreams as replies

    truncated = {
        "openai": lambda: replies.json_reply(
            replies.openai_chat_completion(content="Hel", finish_reason="length")
        ),
        "compatible": lambda: replies.json_reply(
            replies.chat_completion("mistral", upstream.model, "Hel", finish_reason="length")
        ),
        "gemini": lambda: replies.json_reply(
            replies.gemini_response([{"text": "Hel"}], finish_reason="MAX_TOKENS")
        ),
        "bedrock": lambda: replies.bedrock_json(
            replies.converse_response([{"text": "Hel"}], stop_reason="max_tokens")
        ),
        "anthropic": lambda: replies.json_reply(
            replies.anthropic_message(content=[{"type": "text", "text": "Hel"}], stop_reason="max_tokens")
        ),
    }[upstream.name]()
    fake_of(upstream, request).enqueue(truncated)
    message = claude.messages.create(model=upstream.alias, max_tokens=1, messages=HELLO)
    assert message.stop_reason == "max_tokens"
    assert message.content[0].text == "Hel"  # type: ignore[union-attr]


# ---- errors ------------------------------------------------------------------------------------------------

ERRORS = {
    "rate_limit": (anthropic.RateLimitError, 429, "rate_limit_error"),
    "server": (anthropic.InternalServerError, 500, "api_error"),
    "overloaded": (anthropic.OverloadedError, 529, "overloaded_error"),
}


def _ask(claude: anthropic.Anthropic, model: str, stream: bool) -> Any:
    if not stream:
        return claude.messages.create(model=model, max_tokens=64, messages=HELLO)
    with claude.messages.stream(model=model, max_tokens=64, messages=HELLO) as events:
        return events.get_final_message()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("kind", list(ERRORS))
@each_upstream
def test_upstream_errors_in_anthropics_envelope(
    claude: anthropic.Anthropic, upstream: Upstream, kind: str, stream: bool, request: pytest.FixtureRequest
) -> None:
    exception, status, error_type = ERRORS[kind]
    fake_of(upstream, request).enqueue(upstream.error(kind))
    with pytest.raises(exception) as caught:
        _ask(claude, upstream.alias, stream)
    assert caught.value.status_code == status
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert caught.value.body["error"]["type"] == error_type  # type: ignore[index]


# the text before the failure, and the error's type: an upstream that said it was overloaded or
# unavailable is `overloaded_error` (Mistral fails its last chunk, which still carries text)
MIDSTREAM = {
    "openai": ("Hel", "api_error"),
    "compatible": ("Hello", "api_error"),
    "gemini": ("Hel", "overloaded_error"),
    "bedrock": ("Hel", "overloaded_error"),
    "anthropic": ("Hel", "overloaded_error"),
}


@each_upstream
def test_an_error_mid_stream_is_an_error_event(
    claude: anthropic.Anthropic, upstream: Upstream, request: pytest.FixtureRequest
) -> None:
    fake_of(upstream, request).enqueue(upstream.broken())
    received: list[str] = []
    with (
        claude.messages.stream(model=upstream.alias, max_tokens=64, messages=HELLO) as stream,
        pytest.raises(anthropic.APIStatusError) as caught,
    ):
        received.extend(stream.text_stream)
    text, error_type = MIDSTREAM[upstream.name]
    assert "".join(received) == text
    assert caught.value.status_code == 200  # the stream had started
    assert caught.value.body["error"]["type"] == error_type  # type: ignore[index]


@pytest.mark.parametrize("name", ["openai", "gemini", "anthropic"])
def test_an_upstream_that_drops_the_stream_is_an_error_event(
    claude: anthropic.Anthropic, name: str, request: pytest.FixtureRequest
) -> None:
    """The connection cut mid-stream: the gateway's own error event, in Anthropic's form, ends it."""
    from tests.support.fake_upstreams import ABORT

    upstream = UPSTREAMS[name]
    started = upstream.broken().parts[:-1]  # the stream up to its error: "Hel", then the cut
    fake_of(upstream, request).enqueue(Reply(200, upstream.broken().headers, [*started, ABORT], stream=True))
    received: list[str] = []
    with (
        claude.messages.stream(model=upstream.alias, max_tokens=64, messages=HELLO) as stream,
        pytest.raises(anthropic.APIStatusError) as caught,
    ):
        received.extend(stream.text_stream)
    assert "".join(received) == "Hel"
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]


def test_gateway_errors_are_anthropic_shaped(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="no-such-model", max_tokens=64, messages=HELLO)
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert "no-such-model" in caught.value.body["error"]["message"]  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as invalid:
        claude.messages.create(model="gw-openai", max_tokens=64, messages="not a list")  # type: ignore[arg-type]
    assert invalid.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


# ---- what a translated upstream cannot take ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["openai", "gemini", "bedrock"])
def test_an_unknown_content_block_is_a_400_naming_it(
    claude: anthropic.Anthropic, name: str, request: pytest.FixtureRequest
) -> None:
    upstream = UPSTREAMS[name]
    content: Any = [{"type": "text", "text": "Look:"}, {"type": "hologram", "data": "..."}]
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model=upstream.alias, max_tokens=64, messages=[{"role": "user", "content": content}]
        )
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "hologram" in caught.value.body["error"]["message"]  # type: ignore[index]
    assert fake_of(upstream, request).requests == []


SERVER_TOOLS: list[Any] = [
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    {"type": "code_execution_20250825", "name": "code_execution"},
]


@each_upstream
def test_server_tools_are_dropped_and_named(
    claude: anthropic.Anthropic, upstream: Upstream, request: pytest.FixtureRequest
) -> None:
    raw = claude.messages.with_raw_response.create(
        model=upstream.alias, max_tokens=64, messages=HELLO, tools=[*SERVER_TOOLS, WEATHER]
    )
    assert raw.parse().content
    sent = fake_of(upstream, request).only()
    if upstream.native:  # Anthropic runs them itself
        assert "x-gateway-dropped-tools" not in raw.headers
        assert [t["name"] for t in sent.json["tools"]] == ["web_search", "code_execution", "get_weather"]
        return
    assert raw.headers["x-gateway-dropped-tools"] == "web_search,code_execution"
    assert b"web_search" not in sent.raw and b"code_execution" not in sent.raw
    assert b"get_weather" in sent.raw


@pytest.mark.parametrize("name", ["openai", "gemini"])
def test_parameters_a_translated_upstream_has_no_use_for_are_named(
    claude: anthropic.Anthropic, name: str, request: pytest.FixtureRequest
) -> None:
    raw = claude.messages.with_raw_response.create(
        model=UPSTREAMS[name].alias,
        max_tokens=64,
        messages=HELLO,
        service_tier="auto",
        cache_control={"type": "ephemeral"},
        inference_geo="us",
        speed="fast",
    )
    assert raw.parse().content
    dropped = raw.headers["x-gateway-dropped-params"].split(",")
    assert {"service_tier", "cache_control", "inference_geo", "speed"} <= set(dropped)
    sent = fake_of(UPSTREAMS[name], request).only().raw
    assert b"service_tier" not in sent and b"ephemeral" not in sent and b"fast" not in sent


def test_thinking_and_effort_become_reasoning_effort(
    claude: anthropic.Anthropic, fake_openai: FakeUpstream
) -> None:
    cases: list[tuple[dict[str, Any], str | None]] = [
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 8192}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 32000}}, "high"),
        ({"thinking": {"type": "adaptive"}}, "medium"),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}, "low"),
        ({"thinking": {"type": "disabled"}}, "none"),
        ({"output_config": {"effort": "high"}}, "high"),
        ({}, None),
    ]
    for params, effort in cases:
        claude.messages.create(model="gw-openai", max_tokens=40000, messages=HELLO, **params)
        assert fake_openai.requests[-1].json.get("reasoning_effort") == effort, params


def test_structured_output_becomes_response_format(
    claude: anthropic.Anthropic, fake_openai: FakeUpstream
) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    claude.messages.create(
        model="gw-openai",
        max_tokens=64,
        messages=HELLO,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    sent = fake_openai.only().json
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }


def test_metadata_user_id_becomes_user(claude: anthropic.Anthropic, fake_openai: FakeUpstream) -> None:
    claude.messages.create(model="gw-openai", max_tokens=64, messages=HELLO, metadata={"user_id": "u-123"})
    assert fake_openai.only().json["user"] == "u-123"
    assert json.loads(fake_openai.only().raw)["max_tokens"] == 64


# ---- count_tokens, Claude Code's beta endpoint, more content -----------------------------------------------

COUNTS = {  # the upstream's own count, where it has an API for it; else the gateway's estimate
    "gemini": lambda: json_reply({"totalTokens": 17}),
    "bedrock": lambda: bedrock_json({"inputTokens": 19}),
    "anthropic": lambda: json_reply({"input_tokens": 42}),
}


@each_upstream
def test_count_tokens(
    claude: anthropic.Anthropic, upstream: Upstream, request: pytest.FixtureRequest
) -> None:
    fake = fake_of(upstream, request)
    if upstream.name in COUNTS:
        fake.enqueue(COUNTS[upstream.name]())
    raw = claude.messages.with_raw_response.count_tokens(
        model=upstream.alias, system="You are terse.", messages=HELLO, tools=[WEATHER]
    )
    count = raw.parse().input_tokens
    if upstream.name in COUNTS:
        assert count == {"gemini": 17, "bedrock": 19, "anthropic": 42}[upstream.name]
        assert raw.headers.get("x-gateway-token-count") != "estimate"
        assert len(fake.requests) == 1
    else:
        assert raw.headers["x-gateway-token-count"] == "estimate"
        assert count > 0
        assert fake.requests == []


@each_upstream
def test_the_beta_endpoint_as_claude_code_calls_it(
    claude: anthropic.Anthropic, upstream: Upstream, request: pytest.FixtureRequest
) -> None:
    """`POST /v1/messages?beta=true` (client.beta.messages), with betas the upstream may not know."""
    message = claude.beta.messages.create(
        model=upstream.alias, max_tokens=64, messages=HELLO, betas=["interleaved-thinking-2025-05-14"]
    )
    assert message.content[0].text == upstream.text  # type: ignore[union-attr]
    rec = fake_of(upstream, request).only()
    assert ("anthropic-beta" in rec.headers) is upstream.native


def test_an_image_url_and_a_pdf_document(claude: anthropic.Anthropic, fake_openai: FakeUpstream) -> None:
    content: Any = [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"},
            "title": "report.pdf",
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"}},
    ]
    claude.messages.create(model="gw-openai", max_tokens=64, messages=[{"role": "user", "content": content}])
    parts = fake_openai.only().json["messages"][0]["content"]
    assert parts == [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBERi0xLjQK", "filename": "report.pdf"},
        },
        {"type": "text", "text": "plain notes"},
    ]
