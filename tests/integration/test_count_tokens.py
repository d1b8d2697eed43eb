"""`POST /v1/messages/count_tokens` with the official anthropic SDK: relayed to an Anthropic upstream
(the client's body, the upstream's model), counted by Gemini's own countTokens, and estimated by
the gateway for an upstream that cannot count (the mock), which the reply says."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.support.fake_gemini import FakeGemini
from tests.support.fake_upstreams import FakeAnthropic, json_reply
from tests.support.routes import CLIENT_KEY
from tests.support.sdk_harness import fake_fixtures, running_gateway

fake_anthropic, _fresh_anthropic = fake_fixtures("fake_anthropic", FakeAnthropic)
fake_gemini, _fresh_gemini = fake_fixtures("fake_gemini", FakeGemini)

MESSAGES: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "Current weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


@pytest.fixture(scope="module")
def gateway_url(
    tmp_path_factory: pytest.TempPathFactory, fake_anthropic: FakeAnthropic, fake_gemini: FakeGemini
) -> Iterator[str]:
    config = {
        "log": {"level": "warning", "format": "json"},
        "providers": {
            "anthropic": {"dialect": "anthropic", "base_url": fake_anthropic.url, "api_key": "sk-ant-up"},
            "gemini": {"dialect": "gemini", "base_url": f"{fake_gemini.url}/v1beta", "api_key": "AIza-up"},
            "mock": {"dialect": "mock", "transport": "mock"},
        },
        "models": {
            "claude-native": [{"provider": "anthropic", "model": "claude-sonnet-4-5"}],
            "gemini-counted": [{"provider": "gemini", "model": "gemini-2.5-flash"}],
            "mock-estimated": [{"provider": "mock", "model": "mock-1"}],
        },
    }
    with running_gateway(tmp_path_factory.mktemp("count") / "routes.yaml", config) as url:
        yield url


@pytest.fixture
def client(gateway_url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway_url, api_key=CLIENT_KEY, max_retries=0, timeout=15.0) as sdk:
        yield sdk


def test_anthropic_counts_it_itself(client: anthropic.Anthropic, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.enqueue(json_reply({"input_tokens": 42}))
    raw = client.messages.with_raw_response.count_tokens(
        model="claude-native", messages=MESSAGES, tools=TOOLS
    )
    assert raw.parse().input_tokens == 42
    assert "x-gateway-token-count" not in raw.headers
    sent = fake_anthropic.only()
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.json == {
        "model": "claude-sonnet-4-5",
        "messages": MESSAGES,
        "tools": TOOLS,
    }  # only model changed


def test_gemini_counts_it_with_count_tokens(client: anthropic.Anthropic, fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(json_reply({"totalTokens": 17}))
    count = client.messages.count_tokens(model="gemini-counted", messages=MESSAGES, system="Be brief.")
    assert count.input_tokens == 17
    sent = fake_gemini.only()
    assert sent.path.endswith("/models/gemini-2.5-flash:countTokens")
    assert "generateContentRequest" in sent.json


def test_an_upstream_that_cannot_count_gets_the_gateways_estimate(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.count_tokens(model="mock-estimated", messages=MESSAGES)
    assert raw.headers["x-gateway-token-count"] == "estimate"
    short = raw.parse().input_tokens
    longer = client.messages.count_tokens(
        model="mock-estimated", messages=[{"role": "user", "content": "What is the weather in Paris? " * 20}]
    ).input_tokens
    assert 5 < short < 30 < longer  # o200k: ~8 text tokens plus the message overhead; grows with the text


def test_a_bad_count_request_is_an_anthropic_400(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.count_tokens(model="mock-estimated", messages="not a list")  # type: ignore[arg-type]
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
