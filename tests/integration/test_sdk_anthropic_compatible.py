"""The official `anthropic` SDK through the gateway's Messages API to every OpenAI-compatible dialect
(azure-openai, azure-openai-v1, mistral, groq, deepseek, xai, vllm), each pointed at FakeCompatible
speaking its own flavour of the wire: filter frames with no choices and an empty model, keep-alive
comments, reasoning_content, whole tool calls several to a chunk, usage on the finish chunk, a first
tool-call delta without arguments. Whatever the flavour, the client gets a Messages stream whose every
event the SDK's models accept strictly, blocks at consecutive indices (tests/support/anthropic_strict.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.support.anthropic_harness import anthropic_fixtures
from tests.support.fake_openai_compatible import (
    ANSWER,
    FLAVOURS,
    FakeCompatible,
    base_url,
    chat_stream,
    midstream_error_parts,
    tool_call,
)
from tests.support.fake_upstreams import sse_reply
from tests.support.sdk_harness import fake_fixtures, running_gateway

UPSTREAM_MODEL = {
    "azure-openai": "gpt4o-prod",  # the deployment name
    "azure-openai-v1": "gpt4o-prod-v1",
    "mistral": "mistral-large-latest",
    "groq": "llama-3.3-70b-versatile",
    "deepseek": "deepseek-chat",
    "xai": "grok-4-1-fast-non-reasoning",
    "vllm": "Qwen/Qwen3-8B",
}
HELLO = [{"role": "user", "content": "Say hello"}]
GET_TIME = {"name": "get_time", "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}}}
TWO_CALLS = [
    tool_call("Ab3dE6gH9", "get_time", '{"tz": "Europe/Rome"}'),
    tool_call("Zz9yX8wV7", "get_time", '{"tz": "Europe/Paris"}'),
]

compat, _fresh_compat = fake_fixtures("compat", FakeCompatible)


@pytest.fixture(scope="module")
def compatible_gateway(tmp_path_factory: pytest.TempPathFactory, compat: FakeCompatible) -> Iterator[str]:
    providers: dict[str, Any] = {}
    for flavour in FLAVOURS:
        providers[flavour] = {
            "dialect": flavour,
            "base_url": base_url(compat.url, flavour),
            "api_key": "sk-up",
        }
        if flavour == "azure-openai":
            providers[flavour]["vars"] = {"api_version": "2025-01-01-preview"}
    models = {flavour: [{"provider": flavour, "model": UPSTREAM_MODEL[flavour]}] for flavour in FLAVOURS}
    config = {"log": {"level": "warning", "format": "json"}, "providers": providers, "models": models}
    with running_gateway(tmp_path_factory.mktemp("compatible") / "routes.yaml", config) as url:
        yield url


claude, async_claude = anthropic_fixtures("compatible_gateway")

pytestmark = pytest.mark.parametrize("flavour", FLAVOURS)


def test_create(claude: anthropic.Anthropic, flavour: str) -> None:
    message = claude.messages.create(model=flavour, max_tokens=64, messages=HELLO)
    kinds = [block.type for block in message.content]
    assert kinds == (["thinking", "text"] if flavour == "deepseek" else ["text"])  # DeepSeek reasons
    assert message.content[-1].text == ANSWER.format(flavour=flavour)  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 7


async def test_stream(async_claude: anthropic.AsyncAnthropic, flavour: str) -> None:
    async with async_claude.messages.stream(model=flavour, max_tokens=64, messages=HELLO) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Hello from the fake stream."
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 7  # the usage the gateway asked for, whatever the flavour
    assert final.model  # an Azure filter frame's empty model is not the message's


def test_stream_with_two_tool_calls(
    claude: anthropic.Anthropic, compat: FakeCompatible, flavour: str
) -> None:
    compat.enqueue(sse_reply(chat_stream(flavour, UPSTREAM_MODEL[flavour], tool_calls=TWO_CALLS)))
    with claude.messages.stream(model=flavour, max_tokens=64, messages=HELLO, tools=[GET_TIME]) as stream:
        events = list(stream)
        final = stream.get_final_message()
    starts = [(e.index, e.content_block.type) for e in events if e.type == "content_block_start"]
    assert starts == [(0, "tool_use"), (1, "tool_use")]
    assert [(b.name, b.input) for b in final.content] == [  # type: ignore[union-attr]
        ("get_time", {"tz": "Europe/Rome"}),
        ("get_time", {"tz": "Europe/Paris"}),
    ]
    assert final.stop_reason == "tool_use"


def test_an_error_mid_stream(claude: anthropic.Anthropic, compat: FakeCompatible, flavour: str) -> None:
    compat.enqueue(sse_reply(midstream_error_parts(flavour, UPSTREAM_MODEL[flavour])))
    received: list[str] = []
    with (
        claude.messages.stream(model=flavour, max_tokens=64, messages=HELLO) as stream,
        pytest.raises(anthropic.APIStatusError) as caught,
    ):
        received.extend(stream.text_stream)
    assert "".join(received).startswith("Hel")
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    expected = "overloaded_error" if flavour == "groq" else "api_error"  # Groq: "over capacity"
    assert caught.value.body["error"]["type"] == expected  # type: ignore[index]
