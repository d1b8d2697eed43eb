"""What a target cannot honour (target_request.prepare): conditions over the upstream model, the 400 that
says why, and the x-gateway-dropped-params header for the target that answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient

from gateway import json_codec
from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.parameter_fates import compiled_dialects
from gateway.engine.registry import Target, build_registry
from gateway.reload import RegistryHolder
from gateway.upstream.mock import MockReply

CHAT_REPLY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi"},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


@dataclass
class ByProvider:
    """Answers each provider with its own status; records (provider, body) of what was sent."""

    statuses: dict[str, int] = field(default_factory=dict)
    sent: list[tuple[str, Any]] = field(default_factory=list)

    @asynccontextmanager
    async def open(self, target: Target, url: str, body: bytes) -> AsyncIterator[MockReply]:
        self.sent.append((target.provider.name, json_codec.loads(body)))
        status = self.statuses.get(target.provider.name, 200)
        reply = CHAT_REPLY if status == 200 else {"error": {"message": "no such deployment"}}
        yield MockReply(status, {"Content-Type": "application/json"}, [json_codec.dumps(reply)])


async def _client(aiohttp_client: Any, routes: str, transport: ByProvider) -> TestClient[Any, Any]:
    registry = build_registry(config_from_text(routes, "routes.yaml", {}))
    app = create_app(RegistryHolder("routes.yaml", registry), transports={"http": transport})
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client


STRICT_SEED = """
dialects:
  strict:
    extends: openai
    operations:
      chat:
        unsupported:
          seed: {when: "seed != null && model == 'upstream-strict'", why: this upstream model has no seed}
providers:
  p: {dialect: strict, base_url: "http://up.test", api_key: k}
models:
  alias-strict: {provider: p, model: upstream-strict}
  alias-lax: {provider: p, model: upstream-lax}
"""


async def test_conditions_see_the_upstream_model_not_the_alias(aiohttp_client: Any) -> None:
    transport = ByProvider()
    client = await _client(aiohttp_client, STRICT_SEED, transport)
    body = {"messages": [{"role": "user", "content": "Hi"}], "seed": 7}

    refused = await client.post("/v1/chat/completions", json={"model": "alias-strict", **body})
    assert refused.status == 400
    error = (await refused.json())["error"]
    assert error["param"] == "seed" and error["code"] == "unsupported_parameter"
    # the client is told in its own words (its alias), and why
    assert error["message"] == (
        "Unsupported parameter: 'seed' is not supported by model 'alias-strict' (provider 'p'): this "
        "upstream model has no seed. Remove it, or set unsupported_params: drop on the provider."
    )
    assert transport.sent == []

    served = await client.post("/v1/chat/completions", json={"model": "alias-lax", **body})
    assert served.status == 200
    assert transport.sent[0][1]["seed"] == 7


FALLBACK = """
providers:
  claude: {dialect: anthropic, base_url: "http://claude.test", api_key: k}
  gpt: {dialect: openai, base_url: "http://gpt.test", api_key: k}
models:
  m:
    - {provider: claude, model: claude-x}
    - {provider: gpt, model: gpt-x}
"""


async def test_the_dropped_params_header_is_the_answering_targets(aiohttp_client: Any) -> None:
    """Anthropic leaves `store` out (ignored) but fails; OpenAI, which answers, took it: the reply
    names nothing as dropped."""
    transport = ByProvider(statuses={"claude": 404})
    client = await _client(aiohttp_client, FALLBACK, transport)
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "store": True, "max_tokens": 5}

    response = await client.post("/v1/chat/completions", json=body)
    assert response.status == 200
    assert [provider for provider, _ in transport.sent] == ["claude", "gpt"]
    assert "store" not in transport.sent[0][1] and transport.sent[1][1]["store"] is True
    assert "x-gateway-dropped-params" not in response.headers


async def test_an_upstream_error_still_names_what_was_left_out(aiohttp_client: Any) -> None:
    """The header is the request's, sent with whatever the target answered (here its 404)."""
    transport = ByProvider(statuses={"claude": 404})
    client = await _client(
        aiohttp_client, FALLBACK.replace("    - {provider: gpt, model: gpt-x}\n", ""), transport
    )
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "store": True, "max_tokens": 5}

    response = await client.post("/v1/chat/completions", json=body)
    assert response.status == 404
    assert response.headers["x-gateway-dropped-params"] == "store"


def test_model_overlays_are_worked_out_once_per_model() -> None:
    chat = compiled_dialects(names=["openai"])["openai"].operations["chat"]
    reasoning = chat.for_model("o3")
    assert chat.for_model("o3") is reasoning
    assert {u.param for u in reasoning.unsupported} >= {"temperature", "top_p", "stop", "logprobs"}
    assert chat.for_model("gpt-4o") is chat  # no overlay: the operation itself
    assert chat.for_model("gpt-5-chat-latest") is chat
