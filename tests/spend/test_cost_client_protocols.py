"""Cost for the Messages and Responses client protocols, relayed to an upstream that speaks them
(native: the usage is read from the upstream's own reply) and translated; streams included. The
prompt cache's reads and writes, and reasoning, are each priced at their own rate."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from gateway import json_codec
from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.reload import RegistryHolder
from gateway.spend.cost import COST_HEADER
from tests.engine.replay_transport import ReplayTransport
from tests.support.access_events import access_events

PRICE = {"input": 1, "cached_input": 0.1, "cache_write": 2, "output": 4, "reasoning": 8}

ANTHROPIC_USAGE = {
    "input_tokens": 20,
    "cache_creation_input_tokens": 5,
    "cache_read_input_tokens": 100,
    "output_tokens": 3,
}
ANTHROPIC_COST = (20 * 1 + 100 * 0.1 + 5 * 2 + 3 * 4) / 1e6
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [{"type": "text", "text": "Bonjour."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": ANTHROPIC_USAGE,
}


def _sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(
        f"event: {name}\n".encode() + b"data: " + json_codec.dumps(data) + b"\n\n" for name, data in events
    )


MESSAGE_STREAM = _sse(
    [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {**MESSAGE, "content": [], "usage": {**ANTHROPIC_USAGE, "output_tokens": 1}},
            },
        ),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Bonjour."}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
)

RESPONSES_USAGE = {
    "input_tokens": 60,
    "input_tokens_details": {"cached_tokens": 32},
    "output_tokens": 30,
    "output_tokens_details": {"reasoning_tokens": 10},
    "total_tokens": 90,
}
RESPONSES_COST = (28 * 1 + 32 * 0.1 + 20 * 4 + 10 * 8) / 1e6
RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1700000000,
    "status": "completed",
    "model": "gpt-x",
    "output": [
        {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Hi", "annotations": []}],
        }
    ],
    "usage": RESPONSES_USAGE,
}
CHAT_REPLY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-x",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 60,
        "completion_tokens": 30,
        "total_tokens": 90,
        "prompt_tokens_details": {"cached_tokens": 32},
        "completion_tokens_details": {"reasoning_tokens": 10},
    },
}
MESSAGES_REQUEST = {"max_tokens": 100, "messages": [{"role": "user", "content": "Salut"}]}
RESPONSES_REQUEST = {"input": "Hi"}

Case = tuple[str, str, dict[str, Any], str, bytes, float]
CASES: dict[str, Case] = {
    # name: (dialect, client path, client body, upstream content type, upstream reply, cost)
    "messages native": (
        "anthropic",
        "/v1/messages",
        MESSAGES_REQUEST,
        "application/json",
        json_codec.dumps(MESSAGE),
        ANTHROPIC_COST,
    ),
    "messages native stream": (
        "anthropic",
        "/v1/messages",
        {**MESSAGES_REQUEST, "stream": True},
        "text/event-stream",
        MESSAGE_STREAM,
        ANTHROPIC_COST,
    ),
    "chat to anthropic": (
        "anthropic",
        "/v1/chat/completions",
        {"messages": MESSAGES_REQUEST["messages"]},
        "application/json",
        json_codec.dumps(MESSAGE),
        ANTHROPIC_COST,
    ),
    "chat to anthropic stream": (
        "anthropic",
        "/v1/chat/completions",
        {"messages": MESSAGES_REQUEST["messages"], "stream": True},
        "text/event-stream",
        MESSAGE_STREAM,
        ANTHROPIC_COST,
    ),
    "responses native": (
        "openai",
        "/v1/responses",
        RESPONSES_REQUEST,
        "application/json",
        json_codec.dumps(RESPONSE),
        RESPONSES_COST,
    ),
    "responses translated": (
        "mistral",
        "/v1/responses",
        RESPONSES_REQUEST,
        "application/json",
        json_codec.dumps(CHAT_REPLY),
        RESPONSES_COST,
    ),
    "messages translated": (
        "openai",
        "/v1/messages",
        MESSAGES_REQUEST,
        "application/json",
        json_codec.dumps(CHAT_REPLY),
        RESPONSES_COST,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_cost_per_client_protocol(name: str, aiohttp_client: Any) -> None:
    dialect, path, body, content_type, reply, expected = CASES[name]
    provider = {
        "dialect": dialect,
        "base_url": "http://upstream.test",
        "api_key": "sk-provider-key",
        "prices": {"up": PRICE},
    }
    routes = {"providers": {"p": provider}, "models": {"m": [{"provider": "p", "model": "up"}]}}
    registry = build_registry(config_from_text(yaml.safe_dump(routes), "routes.yaml", {}))
    transport = ReplayTransport(status=200, headers={"Content-Type": content_type}, parts=[reply])
    app = create_app(RegistryHolder("routes.yaml", registry), transports={"http": transport})
    client: TestClient[Any, Any] = await aiohttp_client(app)
    with access_events() as events:
        response = await client.post(path, json={"model": "m", **body}, headers={"x-api-key": "k"})
        raw = await response.read()
        event = events.wait_for(1)[0]
    assert response.status == 200, raw.decode()
    assert event["cost_usd"] == pytest.approx(expected, abs=1e-12)
    if body.get("stream"):
        assert COST_HEADER not in response.headers
    else:
        assert float(response.headers[COST_HEADER]) == pytest.approx(expected, abs=1e-12)
