"""The official anthropic SDK through /v1/messages to the chat dialects the other ingress modules do
not reach (Cohere, native Ollama, the built-in mock): a reply and a streamed reply in the Messages
format, checked with the SDK's strict models (tests/support/anthropic_strict.py), and what each
upstream received in its own wire format."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest

from tests.support.anthropic_harness import anthropic_fixtures
from tests.support.fake_cohere import FakeCohere
from tests.support.fake_ollama import FakeOllama
from tests.support.sdk_harness import fake_fixtures, running_gateway

fake_cohere, _fresh_cohere = fake_fixtures("fake_cohere", FakeCohere)
fake_ollama, _fresh_ollama = fake_fixtures("fake_ollama", FakeOllama)

HELLO: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Say hello"}]
ALIASES = ("cohere-chat", "ollama-chat", "mock-chat")


@pytest.fixture(scope="module")
def other_gateway(
    tmp_path_factory: pytest.TempPathFactory, fake_cohere: FakeCohere, fake_ollama: FakeOllama
) -> Iterator[str]:
    config = {
        "log": {"level": "warning", "format": "json"},
        "providers": {
            "cohere": {"dialect": "cohere", "base_url": fake_cohere.url, "api_key": "co-up"},
            "ollama": {"dialect": "ollama", "base_url": fake_ollama.url},
            "mock": {"dialect": "mock", "transport": "mock"},
        },
        "models": {
            "cohere-chat": [{"provider": "cohere", "model": "command-a-03-2025"}],
            "ollama-chat": [{"provider": "ollama", "model": "llama3.2"}],
            "mock-chat": [{"provider": "mock", "model": "mock-1"}],
        },
    }
    with running_gateway(tmp_path_factory.mktemp("other") / "routes.yaml", config) as url:
        yield url


claude, async_claude = anthropic_fixtures("other_gateway")


def _upstream_path(alias: str, fake_cohere: FakeCohere, fake_ollama: FakeOllama) -> str | None:
    fake = {"cohere-chat": fake_cohere, "ollama-chat": fake_ollama}.get(alias)
    return None if fake is None else fake.only().path


@pytest.mark.parametrize("alias", ALIASES)
def test_create(
    claude: anthropic.Anthropic, alias: str, fake_cohere: FakeCohere, fake_ollama: FakeOllama
) -> None:
    message = claude.messages.create(model=alias, max_tokens=128, messages=HELLO, system="Be brief.")
    assert message.type == "message" and message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0
    assert _upstream_path(alias, fake_cohere, fake_ollama) in (None, "/v2/chat", "/api/chat")


@pytest.mark.parametrize("alias", ALIASES)
async def test_stream(async_claude: anthropic.AsyncAnthropic, alias: str) -> None:
    async with async_claude.messages.stream(model=alias, max_tokens=128, messages=HELLO) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text and [block.type for block in final.content] == ["text"]
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
