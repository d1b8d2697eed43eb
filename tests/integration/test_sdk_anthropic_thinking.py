"""Thinking survives a tool loop through the gateway's Messages API: the official `anthropic` SDK runs a
three-turn weather loop with thinking on, as Anthropic's docs show it (the reply's content blocks go
back as they came, tool results after them), against fake thinking models that are as strict as the
real APIs (tests/support/thinking_models.py): Anthropic itself (relayed: the blocks and their
signatures go back untouched) and, translated, Claude on Bedrock (signed reasoning), Gemini 3 (thought
signatures) and DeepSeek (reasoning_content within the loop). Each refuses a turn whose reasoning did
not come back, so a completed loop proves the round trip; what each upstream got back is asserted too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.support.anthropic_harness import anthropic_fixtures, sent_bodies
from tests.support.fake_bedrock import AwsKey
from tests.support.sdk_harness import fake_fixtures, running_gateway
from tests.support.thinking_models import (
    ANSWER,
    CITIES,
    TOOL_TURNS,
    ThinkingAnthropic,
    ThinkingBedrock,
    ThinkingDeepSeek,
    ThinkingGemini,
    thought,
)

BEDROCK_KEY = "bedrock-api-key-thinking"
BEDROCK_FORMAT = "amazon-bedrock-converse-v1"  # the reasoning format the bedrock dialect gives its signatures
CLAUDE = "claude-sonnet-4-5-20250929"
MODELS = {
    "anthropic": ("thinking_anthropic", "anthropic", CLAUDE),
    "bedrock": ("thinking_bedrock", "bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    "gemini": ("thinking_gemini", "gemini", "gemini-3-pro-preview"),
    "deepseek": ("thinking_deepseek", "deepseek", "deepseek-reasoner"),
}
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}

thinking_anthropic, _fresh_anthropic = fake_fixtures("thinking_anthropic", ThinkingAnthropic)
thinking_bedrock, _fresh_bedrock = fake_fixtures(
    "thinking_bedrock", lambda: ThinkingBedrock({"AKIDUNUSED": AwsKey("unused")}, [BEDROCK_KEY])
)
thinking_gemini, _fresh_gemini = fake_fixtures("thinking_gemini", ThinkingGemini)
thinking_deepseek, _fresh_deepseek = fake_fixtures("thinking_deepseek", ThinkingDeepSeek)


@pytest.fixture(scope="module")
def thinking_gateway(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    def url(name: str) -> str:
        return str(request.getfixturevalue(MODELS[name][0]).url)

    providers = {
        "anthropic": {"dialect": "anthropic", "base_url": url("anthropic"), "api_key": "sk-ant-test"},
        "bedrock": {"dialect": "bedrock", "base_url": url("bedrock"), "api_key": BEDROCK_KEY},
        "gemini": {"dialect": "gemini", "base_url": f"{url('gemini')}/v1beta", "api_key": "AIza-test"},
        "deepseek": {"dialect": "deepseek", "base_url": url("deepseek"), "api_key": "sk-ds-test"},
    }
    models = {name: [{"provider": provider, "model": model}] for name, (_, provider, model) in MODELS.items()}
    config = {"log": {"level": "warning", "format": "json"}, "providers": providers, "models": models}
    with running_gateway(tmp_path_factory.mktemp("thinking") / "routes.yaml", config) as gateway:
        yield gateway


claude, async_claude = anthropic_fixtures("thinking_gateway")


def _fake(name: str, request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(MODELS[name][0])


def _turn(claude: anthropic.Anthropic, model: str, messages: list[Any], stream: bool) -> Any:
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": 8192,
        "messages": messages,
        "tools": [WEATHER],
        "thinking": {"type": "enabled", "budget_tokens": 2048},
    }
    if not stream:
        return claude.messages.create(**params)
    with claude.messages.stream(**params) as events:
        for _ in events:
            pass
        return events.get_final_message()


def _run_loop(claude: anthropic.Anthropic, model: str, stream: bool) -> list[Any]:
    """The loop as Anthropic's docs write it; the messages the SDK handed back, in order."""
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris and Lyon?"}]
    replies = []
    for _ in range(TOOL_TURNS + 1):
        reply = _turn(claude, model, messages, stream)
        replies.append(reply)
        messages.append({"role": "assistant", "content": reply.content})
        results = [
            {"type": "tool_result", "tool_use_id": block.id, "content": "18C, sunny"}
            for block in reply.content
            if block.type == "tool_use"
        ]
        if results:
            messages.append({"role": "user", "content": results})
    return replies


def _kinds(reply: Any) -> list[str]:
    return [block.type for block in reply.content]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model", list(MODELS))
def test_tool_loop_with_thinking_completes(
    claude: anthropic.Anthropic, model: str, stream: bool, request: pytest.FixtureRequest
) -> None:
    replies = _run_loop(claude, model, stream)
    assert [r.stop_reason for r in replies] == ["tool_use", "tool_use", "end_turn"]
    assert replies[-1].content[-1].text == ANSWER
    for turn, reply in enumerate(replies):
        thinking = [block for block in reply.content if block.type == "thinking"]
        assert thinking and thought(turn) in thinking[0].thinking, _kinds(reply)
        uses = [block for block in reply.content if block.type == "tool_use"]
        assert [u.input for u in uses] == ([{"city": CITIES[turn]}] if turn < TOOL_TURNS else [])
    assert len(_fake(model, request).requests) == TOOL_TURNS + 1


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_anthropic_gets_its_blocks_back_byte_for_byte(
    claude: anthropic.Anthropic, thinking_anthropic: ThinkingAnthropic, stream: bool
) -> None:
    replies = _run_loop(claude, "anthropic", stream)
    signer = thinking_anthropic.signer
    assert _kinds(replies[0]) == ["thinking", "redacted_thinking", "tool_use"]
    assert replies[0].content[0].signature == signer.sign(thought(0))
    assert replies[0].content[1].data == signer.redacted(0)
    for sent, rec in zip(sent_bodies(claude), thinking_anthropic.requests, strict=True):
        assert rec.raw == sent.replace(b'"model":"anthropic"', f'"model":"{CLAUDE}"'.encode(), 1)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_bedrock_gets_its_signed_reasoning_back(
    claude: anthropic.Anthropic, thinking_bedrock: ThinkingBedrock, stream: bool
) -> None:
    replies = _run_loop(claude, "bedrock", stream)
    signer = thinking_bedrock.signer
    # Anthropic's blocks, the signature and data tagged with where they are valid (a client that takes
    # the conversation to another upstream sends them back there, where they mean nothing)
    assert _kinds(replies[0]) == ["thinking", "redacted_thinking", "tool_use"]
    assert replies[0].content[0].signature == f"{BEDROCK_FORMAT}#{signer.sign(thought(0))}"
    assert replies[0].content[1].data == f"{BEDROCK_FORMAT}#{signer.redacted(0)}"
    first = thinking_bedrock.requests[0].json
    assert first["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    for turn in (1, 2):
        assistants = [m for m in thinking_bedrock.requests[turn].json["messages"] if m["role"] == "assistant"]
        for earlier, message in enumerate(assistants):
            text = {"text": thought(earlier), "signature": signer.sign(thought(earlier))}
            assert message["content"][0] == {"reasoningContent": {"reasoningText": text}}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_gemini_gets_each_thought_signature_back(
    claude: anthropic.Anthropic, thinking_gemini: ThinkingGemini, stream: bool
) -> None:
    replies = _run_loop(claude, "gemini", stream)
    signer = thinking_gemini.signer
    for turn in (1, 2):
        models = [c for c in thinking_gemini.requests[turn].json["contents"] if c["role"] == "model"]
        for earlier, content in enumerate(models):
            call = {"name": "get_weather", "args": {"city": CITIES[earlier]}}
            assert content["parts"] == [
                {"functionCall": call, "thoughtSignature": signer.sign(json.dumps(call))}
            ]
    # the answer's text-part signature reaches the client, and goes back on the text part
    history: list[Any] = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": replies[-1].content},
        {"role": "user", "content": "Thanks."},
    ]
    claude.messages.create(model="gemini", max_tokens=1024, messages=history)
    model_turn = thinking_gemini.requests[-1].json["contents"][1]
    assert model_turn["parts"] == [{"text": ANSWER, "thoughtSignature": signer.sign(ANSWER)}]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_deepseek_gets_reasoning_content_back_within_the_loop(
    claude: anthropic.Anthropic, thinking_deepseek: ThinkingDeepSeek, stream: bool
) -> None:
    replies = _run_loop(claude, "deepseek", stream)
    # reasoning without proof: a thinking block with an empty signature
    assert [(b.type, b.signature) for b in replies[0].content if b.type == "thinking"] == [("thinking", "")]
    for turn in (1, 2):
        assistants = [
            m for m in thinking_deepseek.requests[turn].json["messages"] if m["role"] == "assistant"
        ]
        assert [m["reasoning_content"] for m in assistants] == [thought(t) for t in range(turn)]


@pytest.mark.parametrize("model", list(MODELS))
def test_a_client_that_drops_the_thinking_gets_the_upstreams_400(
    claude: anthropic.Anthropic, model: str, request: pytest.FixtureRequest
) -> None:
    """The fakes are strict: without the thinking the upstream refuses turn 2 (so the tests above
    would fail if the gateway lost it), and its 400 reaches the client in Anthropic's envelope."""
    first = _turn(claude, model, [{"role": "user", "content": "Weather in Paris?"}], stream=False)
    use = next(block for block in first.content if block.type == "tool_use")
    bare_id = use.id.split("~sig~")[
        0
    ]  # Gemini's signature rides in the id: a client that rewrites it loses it
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": bare_id, "name": use.name, "input": use.input}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": bare_id, "content": "18C"}]},
    ]
    with pytest.raises(anthropic.BadRequestError) as caught:
        _turn(claude, model, messages, stream=False)
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert _fake(model, request).requests[-1].json is not None
