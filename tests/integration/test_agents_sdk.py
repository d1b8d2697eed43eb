"""The OpenAI Agents SDK (`openai-agents`) with its default settings — the Responses API — through the
gateway: an agent with a function tool, one run and one streamed run, against an OpenAI-compatible
chat upstream (translated) and an upstream that serves /v1/responses itself (relayed).

The SDK gets a spec-checked AsyncOpenAI client (every Response and stream event validated when it
closes, tests/support/spec_transport.py); tracing is off (it would post to api.openai.com).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import openai
import pytest

from tests.support.anthropic_ingress_upstreams import FAKES, STREAM_TEXT, UPSTREAMS
from tests.support.fake_upstreams import FakeUpstream
from tests.support.responses_native import NATIVE_TEXT, native_reply
from tests.support.sdk_harness import checked_async_client, fake_fixtures, running_gateway

agents = pytest.importorskip("agents")

fake_openai, _fresh_fake_openai = fake_fixtures("fake_openai", FAKES["fake_openai"])
fake_compatible, _fresh_fake_compatible = fake_fixtures("fake_compatible", FAKES["fake_compatible"])

COMPATIBLE = UPSTREAMS["compatible"]
NATIVE_ALIAS = "gw-native"


def _weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}, 21 C"


get_weather = agents.function_tool(_weather, name_override="get_weather")


@pytest.fixture(scope="module")
def agents_gateway(
    tmp_path_factory: pytest.TempPathFactory, fake_compatible: FakeUpstream, fake_openai: FakeUpstream
) -> Iterator[str]:
    providers = {
        "compatible": COMPATIBLE.provider(fake_compatible.url),
        "openai": UPSTREAMS["openai"].provider(fake_openai.url),
    }
    models = {
        COMPATIBLE.alias: [{"provider": "compatible", "model": COMPATIBLE.model}],
        NATIVE_ALIAS: [{"provider": "openai", "model": "gpt-5-2025-08-07"}],
    }
    config = {"log": {"level": "warning", "format": "json"}, "providers": providers, "models": models}
    with running_gateway(tmp_path_factory.mktemp("agents") / "routes.yaml", config) as url:
        yield url


@pytest.fixture
async def sdk(agents_gateway: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with checked_async_client(agents_gateway) as client:
        agents.set_tracing_disabled(True)
        yield client


def _agent(sdk: openai.AsyncOpenAI, model: str) -> object:
    """An agent as its docs write one: a model name, the default client (ours) and the default API
    (Responses)."""
    agents.set_default_openai_client(sdk, use_for_tracing=False)
    return agents.Agent(name="weather", instructions="Answer briefly.", model=model, tools=[get_weather])


async def test_run_with_a_function_tool_on_a_translated_upstream(
    sdk: openai.AsyncOpenAI, fake_compatible: FakeUpstream
) -> None:
    fake_compatible.enqueue(COMPATIBLE.calls([("get_weather", {"city": "Paris"})], False))
    result = await agents.Runner.run(_agent(sdk, COMPATIBLE.alias), "Weather in Paris?")
    assert result.final_output == COMPATIBLE.text
    second = fake_compatible.requests[1].json["messages"]
    assert second[0] == {"role": "system", "content": "Answer briefly."}
    assert [m["role"] for m in second[1:]] == ["user", "assistant", "tool"]
    assert json.loads(second[2]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert second[3]["content"] == "Sunny in Paris, 21 C"


async def test_streamed_run_on_a_translated_upstream(
    sdk: openai.AsyncOpenAI, fake_compatible: FakeUpstream
) -> None:
    fake_compatible.enqueue(COMPATIBLE.calls([("get_weather", {"city": "Lyon"})], True))
    result = agents.Runner.run_streamed(_agent(sdk, COMPATIBLE.alias), "Weather in Lyon?")
    deltas = [
        event.data.delta
        async for event in result.stream_events()
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta"
    ]
    assert result.final_output == STREAM_TEXT and "".join(deltas) == STREAM_TEXT
    assert fake_compatible.requests[1].json["messages"][-1]["content"] == "Sunny in Lyon, 21 C"


async def test_runs_on_a_native_upstream(sdk: openai.AsyncOpenAI, fake_openai: FakeUpstream) -> None:
    fake_openai.enqueue(native_reply([("get_weather", {"city": "Paris"})]), native_reply())
    result = await agents.Runner.run(_agent(sdk, NATIVE_ALIAS), "Weather in Paris?")
    assert result.final_output == NATIVE_TEXT
    replayed = fake_openai.requests[1].json["input"]
    assert {
        "type": "function_call_output",
        "call_id": "call_native0",
        "output": "Sunny in Paris, 21 C",
    } in replayed
    fake_openai.enqueue(native_reply())
    streamed = agents.Runner.run_streamed(_agent(sdk, NATIVE_ALIAS), "Hi")
    async for _ in streamed.stream_events():
        pass
    assert streamed.final_output == NATIVE_TEXT
