"""GET /v1/models in the caller's protocol: the Anthropic SDK (it sends anthropic-version) gets the
aliases as Models API objects, parsed by its strict models, its key from x-api-key, and its errors
in its own envelope; an OpenAI client gets OpenAI's list, as before. Over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest

from gateway.config.loader import key_digest
from tests.support.anthropic_harness import checked_anthropic
from tests.support.sdk_harness import running_gateway

KEY = "sk-listing-key-0123456789abcdef"
NARROW_KEY = "sk-listing-narrow-0123456789abcdef"


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = {
        "log": {"level": "warning", "format": "json"},
        "providers": {"mock": {"dialect": "mock", "transport": "mock"}},
        "models": {
            "claude-fast": [{"provider": "mock", "model": "mock-1"}],
            "gpt-small": [{"provider": "mock", "model": "mock-2"}],
        },
        "auth": {
            "keys": [
                {"name": "all", "hash": key_digest(KEY)},
                {"name": "narrow", "hash": key_digest(NARROW_KEY), "models": ["claude-*"]},
            ]
        },
    }
    with running_gateway(tmp_path_factory.mktemp("listing") / "routes.yaml", config) as url:
        yield url


def test_the_anthropic_sdk_lists_the_aliases(gateway_url: str) -> None:
    with checked_anthropic(gateway_url, api_key=KEY) as claude:
        models = list(claude.models.list())
        assert [m.id for m in models] == ["claude-fast", "gpt-small"]
        assert models[0].type == "model" and models[0].display_name == "claude-fast"
        assert models[0].created_at.year >= 2026
        one = claude.models.retrieve("gpt-small")
        assert one.id == "gpt-small" and one.lifecycle == "active"


def test_a_key_lists_only_its_models_and_others_do_not_exist_for_it(gateway_url: str) -> None:
    with checked_anthropic(gateway_url, api_key=NARROW_KEY) as claude:
        assert [m.id for m in claude.models.list()] == ["claude-fast"]
        with pytest.raises(anthropic.NotFoundError) as caught:
            claude.models.retrieve("gpt-small")
        assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_a_wrong_key_is_refused_in_the_anthropic_envelope(gateway_url: str) -> None:
    with checked_anthropic(gateway_url, api_key="sk-wrong") as claude:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            claude.models.list()
        assert caught.value.body["type"] == "error"  # type: ignore[index]


def test_an_openai_client_still_gets_openais_list(gateway_url: str) -> None:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=KEY, max_retries=0) as client:
        listing = client.models.list()
        assert [m.id for m in listing.data] == ["claude-fast", "gpt-small"]
        assert listing.data[0].object == "model"
