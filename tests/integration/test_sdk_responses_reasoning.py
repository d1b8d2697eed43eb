"""Reasoning survives a Responses API tool loop on a translated upstream: the official openai SDK runs the
three-turn weather loop of tests/integration/test_reasoning_round_trip.py through `client.responses`,
replaying every output item as Codex and the Agents SDK do, against the fake thinking models that refuse
a tool turn without its signed reasoning (Anthropic, Claude on Bedrock, Gemini 3's thoughtSignature,
DeepSeek's reasoning_content; tests/support/thinking_models.py).

The gateway carries the canonical reasoning in the `reasoning` item: its text as the summary, its signed
details in `encrypted_content`, which the client sends back untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.fake_bedrock import AwsKey
from tests.support.sdk_harness import fake_fixtures, running_gateway, sdk_fixtures
from tests.support.sdk_payloads import WEATHER_PARAMS
from tests.support.thinking_models import (
    ANSWER,
    TOOL_TURNS,
    ThinkingAnthropic,
    ThinkingBedrock,
    ThinkingDeepSeek,
    ThinkingGemini,
    thought,
)

BEDROCK_KEY = "bedrock-api-key-test"
MODELS = ("claude-thinking", "bedrock-thinking", "gemini-thinking", "deepseek-thinking")
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather",
    "parameters": WEATHER_PARAMS,
}

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
        "bedrock-thinking": [
            {"provider": "bedrock", "model": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}
        ],
        "gemini-thinking": [{"provider": "gemini", "model": "gemini-3-pro-preview"}],
        "deepseek-thinking": [{"provider": "deepseek", "model": "deepseek-reasoner"}],
    }
    config = {"log": {"level": "warning", "format": "json"}, "providers": providers, "models": models}
    with running_gateway(tmp_path_factory.mktemp("responses-reasoning") / "routes.yaml", config) as url:
        yield url


client, async_client, http = sdk_fixtures("reasoning_gateway")


def _turn(client: openai.OpenAI, model: str, history: list[Any], stream: bool) -> Any:
    params: dict[str, Any] = {
        "model": model,
        "input": history,
        "tools": [WEATHER],
        "reasoning": {"effort": "low"},
        "max_output_tokens": 8192,
    }
    if not stream:
        return client.responses.create(**params)
    with client.responses.stream(**params) as events:
        return events.get_final_response()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model", MODELS)
def test_tool_loop_with_reasoning_completes(client: openai.OpenAI, model: str, stream: bool) -> None:
    history: list[Any] = [{"role": "user", "content": "What is the weather in Paris and Lyon?"}]
    replies = []
    for _ in range(TOOL_TURNS + 1):
        response = _turn(client, model, history, stream)
        replies.append(response)
        history.extend(item.model_dump(exclude_none=True) for item in response.output)
        for call in (item for item in response.output if item.type == "function_call"):
            history.append({"type": "function_call_output", "call_id": call.call_id, "output": "18C, sunny"})
    assert [sum(item.type == "function_call" for item in r.output) for r in replies] == [1, 1, 0]
    assert replies[-1].output_text == ANSWER
    for turn, reply in enumerate(replies):
        [reasoning] = [item for item in reply.output if item.type == "reasoning"]
        assert thought(turn) in "".join(part.text for part in reasoning.summary)
