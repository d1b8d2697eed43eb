"""Reasoning survives a tool loop: the official openai SDK runs a three-turn weather loop with
reasoning on, against fake thinking models that are as strict as the real APIs (tests/support/
thinking_models.py): Anthropic and Claude on Bedrock refuse a tool-use turn without its signed
thinking blocks, Gemini 3 a function call without its thoughtSignature, DeepSeek a tool-call turn
without its reasoning_content.

The client does what the openai docs show: it appends the SDK's own message object (non-stream) or
the stream helper's final message to the history, and answers each tool call. What the upstream
receives on turns 2 and 3 is asserted byte for byte against what it sent on turns 1 and 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.fake_bedrock import AwsKey
from tests.support.sdk_harness import fake_fixtures, running_gateway, sdk_fixtures
from tests.support.sdk_payloads import WEATHER_TOOL
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

BEDROCK_KEY = "bedrock-api-key-test"
CLAUDE_ON_BEDROCK = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
MODELS = ("claude-thinking", "bedrock-thinking", "gemini-thinking", "deepseek-thinking")

thinking_anthropic, _fresh_anthropic = fake_fixtures("thinking_anthropic", ThinkingAnthropic)
thinking_bedrock, _fresh_bedrock = fake_fixtures(
    "thinking_bedrock", lambda: ThinkingBedrock({"AKIDUNUSED": AwsKey("unused")}, [BEDROCK_KEY])
)
thinking_gemini, _fresh_gemini = fake_fixtures("thinking_gemini", ThinkingGemini)
thinking_deepseek, _fresh_deepseek = fake_fixtures("thinking_deepseek", ThinkingDeepSeek)


@pytest.fixture(scope="module")
def reasoning_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    thinking_anthropic: ThinkingAnthropic,
    thinking_bedrock: ThinkingBedrock,
    thinking_gemini: ThinkingGemini,
    thinking_deepseek: ThinkingDeepSeek,
) -> Iterator[str]:
    providers = {
        "anthropic": {"dialect": "anthropic", "base_url": thinking_anthropic.url, "api_key": "sk-ant-test"},
        "bedrock": {"dialect": "bedrock", "base_url": thinking_bedrock.url, "api_key": BEDROCK_KEY},
        "gemini": {"dialect": "gemini", "base_url": f"{thinking_gemini.url}/v1beta", "api_key": "AIza-test"},
        "deepseek": {"dialect": "deepseek", "base_url": thinking_deepseek.url, "api_key": "sk-ds-test"},
    }
    models = {
        "claude-thinking": [{"provider": "anthropic", "model": "claude-sonnet-4-5-20250929"}],
        "bedrock-thinking": [{"provider": "bedrock", "model": CLAUDE_ON_BEDROCK}],
        "gemini-thinking": [{"provider": "gemini", "model": "gemini-3-pro-preview"}],
        "deepseek-thinking": [{"provider": "deepseek", "model": "deepseek-reasoner"}],
    }
    config = {"log": {"level": "warning", "format": "json"}, "providers": providers, "models": models}
    with running_gateway(tmp_path_factory.mktemp("reasoning") / "routes.yaml", config) as url:
        yield url


client, async_client, http = sdk_fixtures("reasoning_gateway")


def _fake(model: str, request: pytest.FixtureRequest) -> Any:
    name = {
        "claude-thinking": "thinking_anthropic",
        "bedrock-thinking": "thinking_bedrock",
        "gemini-thinking": "thinking_gemini",
        "deepseek-thinking": "thinking_deepseek",
    }[model]
    return request.getfixturevalue(name)


def _turn(client: openai.OpenAI, model: str, messages: list[Any], stream: bool) -> Any:
    params: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "tools": [WEATHER_TOOL],
        "reasoning_effort": "low",
        "max_completion_tokens": 8192,
    }
    if not stream:
        return client.chat.completions.create(**params)
    with client.chat.completions.stream(**params) as events:
        for _ in events:
            pass
        return events.get_final_completion()


def _run_loop(client: openai.OpenAI, model: str, stream: bool) -> list[Any]:
    """The tool loop as a client writes it; the assistant messages the SDK handed back, in order."""
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris and Lyon?"}]
    replies = []
    for _ in range(TOOL_TURNS + 1):
        message = _turn(client, model, messages, stream).choices[0].message
        replies.append(message)
        messages.append(message)
        for call in message.tool_calls or []:
            messages.append({"role": "tool", "tool_call_id": call.id, "content": "18C, sunny"})
    return replies


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model", MODELS)
def test_tool_loop_with_reasoning_completes(
    client: openai.OpenAI, model: str, stream: bool, request: pytest.FixtureRequest
) -> None:
    fake = _fake(model, request)
    replies = _run_loop(client, model, stream)
    assert [len(r.tool_calls or []) for r in replies] == [1, 1, 0]
    assert replies[-1].content == ANSWER
    for turn, reply in enumerate(replies):
        extra = reply.model_extra or {}
        assert thought(turn) in extra["reasoning_content"]  # Gemini: the thought summary
    assert len(fake.requests) == TOOL_TURNS + 1
    assert all(rec.json is not None for rec in fake.requests)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_anthropic_gets_its_thinking_blocks_back_unchanged(
    client: openai.OpenAI, thinking_anthropic: ThinkingAnthropic, stream: bool
) -> None:
    replies = _run_loop(client, "claude-thinking", stream)
    signer = thinking_anthropic.signer
    first = thinking_anthropic.requests[0].json
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert first["max_tokens"] == 8192
    # turn 1's reply as the client got it: the text, its signature and the redacted block
    details = replies[0].model_extra["reasoning_details"]
    assert details == [
        {
            "type": "reasoning.text",
            "text": thought(0),
            "signature": signer.sign(thought(0)),
            "format": "anthropic-claude-v1",
            "index": 0,
        },
        {
            "type": "reasoning.encrypted",
            "data": signer.redacted(0),
            "format": "anthropic-claude-v1",
            "index": 1,
        },
    ]
    # turns 2 and 3: every earlier assistant turn opens with its own blocks, exactly
    for turn in (1, 2):
        sent = thinking_anthropic.requests[turn].json["messages"]
        assistants = [m for m in sent if m["role"] == "assistant"]
        assert len(assistants) == turn
        for earlier, message in enumerate(assistants):
            blocks = message["content"]
            assert blocks[0] == {
                "type": "thinking",
                "thinking": thought(earlier),
                "signature": signer.sign(thought(earlier)),
            }
            if earlier == 0:
                assert blocks[1] == {"type": "redacted_thinking", "data": signer.redacted(0)}
            assert blocks[-1]["type"] == "tool_use"
            assert blocks[-1]["input"] == {"city": CITIES[earlier]}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_bedrock_gets_its_reasoning_blocks_back_unchanged(
    client: openai.OpenAI, thinking_bedrock: ThinkingBedrock, stream: bool
) -> None:
    _run_loop(client, "bedrock-thinking", stream)
    signer = thinking_bedrock.signer
    first = thinking_bedrock.requests[0].json
    assert first["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert first["inferenceConfig"]["maxTokens"] == 8192
    assert "outputConfig" not in first  # effort is Claude's thinking budget here, not outputConfig.effort
    for turn in (1, 2):
        assistants = [m for m in thinking_bedrock.requests[turn].json["messages"] if m["role"] == "assistant"]
        for earlier, message in enumerate(assistants):
            text = {"text": thought(earlier), "signature": signer.sign(thought(earlier))}
            assert message["content"][0] == {"reasoningContent": {"reasoningText": text}}
            if earlier == 0:
                assert message["content"][1] == {"reasoningContent": {"redactedContent": signer.redacted(0)}}
            assert "toolUse" in message["content"][-1]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_gemini_gets_each_thought_signature_back_on_its_part(
    client: openai.OpenAI, thinking_gemini: ThinkingGemini, stream: bool
) -> None:
    replies = _run_loop(client, "gemini-thinking", stream)
    signer = thinking_gemini.signer
    config = thinking_gemini.requests[0].json["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingLevel": "low", "includeThoughts": True}
    for turn in (1, 2):
        models = [c for c in thinking_gemini.requests[turn].json["contents"] if c["role"] == "model"]
        assert len(models) == turn
        for earlier, content in enumerate(models):
            call = {"name": "get_weather", "args": {"city": CITIES[earlier]}}
            assert content["parts"] == [
                {"functionCall": call, "thoughtSignature": signer.sign(json.dumps(call))}
            ]
    # the answer's text-part signature reaches the client, and goes back on the text part
    details = replies[-1].model_extra["reasoning_details"]
    assert details == [
        {"type": "reasoning.encrypted", "data": signer.sign(ANSWER), "format": "google-gemini-v1", "index": 0}
    ]
    history = [{"role": "user", "content": "Weather?"}, replies[-1], {"role": "user", "content": "Thanks."}]
    client.chat.completions.create(model="gemini-thinking", messages=history)
    model_turn = thinking_gemini.requests[-1].json["contents"][1]
    assert model_turn["parts"] == [{"text": ANSWER, "thoughtSignature": signer.sign(ANSWER)}]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_deepseek_gets_reasoning_content_back_within_the_tool_loop(
    client: openai.OpenAI, thinking_deepseek: ThinkingDeepSeek, stream: bool
) -> None:
    replies = _run_loop(client, "deepseek-thinking", stream)
    for turn in (1, 2):
        assistants = [
            m for m in thinking_deepseek.requests[turn].json["messages"] if m["role"] == "assistant"
        ]
        assert [m["reasoning_content"] for m in assistants] == [thought(t) for t in range(turn)]
    # a new question: the finished turn's reasoning stays behind (older models refuse it)
    history = [*_history_of(replies), {"role": "user", "content": "And tomorrow?"}]
    client.chat.completions.create(model="deepseek-thinking", messages=history, tools=[WEATHER_TOOL])
    sent = thinking_deepseek.requests[-1].json["messages"]
    assert "reasoning_content" not in sent[-2]  # the final answer, no tool calls


def _history_of(replies: list[Any]) -> list[Any]:
    history: list[Any] = [{"role": "user", "content": "What is the weather in Paris and Lyon?"}]
    for reply in replies:
        history.append(reply)
        history += [
            {"role": "tool", "tool_call_id": c.id, "content": "18C, sunny"} for c in reply.tool_calls or []
        ]
    return history


@pytest.mark.parametrize(
    "model", ["claude-thinking", "bedrock-thinking", "gemini-thinking", "deepseek-thinking"]
)
def test_a_client_that_drops_reasoning_gets_the_upstreams_400(
    client: openai.OpenAI, model: str, request: pytest.FixtureRequest
) -> None:
    """The fakes are strict: without the reasoning the upstream refuses turn 2, as the real APIs do
    (so the tests above would fail if the gateway lost it)."""
    first = _turn(client, model, [{"role": "user", "content": "Weather in Paris?"}], stream=False)
    call = first.choices[0].message.tool_calls[0]
    bare = {"role": "assistant", "content": None, "tool_calls": [call.model_dump(exclude_none=True)]}
    if model == "gemini-thinking":  # the signature rides in the id: a client that rewrites ids loses it
        bare["tool_calls"][0]["id"] = "call_rewritten"
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        bare,
        {"role": "tool", "tool_call_id": bare["tool_calls"][0]["id"], "content": "18C"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        _turn(client, model, messages, stream=False)
    assert caught.value.status_code == 400
    assert _fake(model, request).requests[-1].json is not None
