"""The official `anthropic` SDK through the gateway to an Anthropic upstream: the same protocol on both
sides, so the request is relayed, not translated. The upstream gets the client's body byte for byte
but `model`, with anthropic-version and anthropic-beta as the client sent them and the provider's key
(never the client's); the client gets the upstream's reply as it came, bytes and all, streamed or not,
errors included; and the gateway still counts the tokens (the key's tpm, the access log).
Every body and event the SDK receives is also checked strictly (tests/support/anthropic_strict.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.support.access_events import access_events
from tests.support.anthropic_harness import anthropic_fixtures, checked_anthropic, sent_bodies
from tests.support.fake_upstreams import (
    ABORT,
    FakeAnthropic,
    Reply,
    anthropic_error,
    anthropic_message,
    anthropic_stream,
    anthropic_usage,
    rechunk,
    sse_reply,
)
from tests.support.routes import CLIENT_KEY
from tests.support.sdk_harness import fake_fixtures, running_gateway

ALIAS = "claude-relayed"
UPSTREAM_MODEL = "claude-opus-4-1-20250805"
PROVIDER_KEY = "sk-ant-provider-key"
TPM = 1_000_000
BETA = "interleaved-thinking-2025-05-14,context-management-2025-06-27"

fake_anthropic, _fresh_fake_anthropic = fake_fixtures("fake_anthropic", FakeAnthropic)


@pytest.fixture(scope="module")
def relay_gateway(tmp_path_factory: pytest.TempPathFactory, fake_anthropic: FakeAnthropic) -> Iterator[str]:
    config = {
        "log": {"level": "info", "format": "json"},
        "auth": {"keys": [{"name": "sdk", "key": CLIENT_KEY, "tpm": TPM}]},
        "providers": {
            "claude": {"dialect": "anthropic", "base_url": fake_anthropic.url, "api_key": PROVIDER_KEY}
        },
        "models": {ALIAS: [{"provider": "claude", "model": UPSTREAM_MODEL}]},
    }
    with running_gateway(tmp_path_factory.mktemp("relay") / "routes.yaml", config) as url:
        yield url


claude, async_claude = anthropic_fixtures("relay_gateway")

SIGNATURE = "EqQBCkYIBxgCKkB+signature/that+must=come=back/untouched=="
TOOLS: list[Any] = [
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
    {
        "name": "get_weather",
        "description": "Current weather — in °C",
        "input_schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"city": {"type": "string"}},
        },
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
    },
]
HISTORY: list[Any] = [
    {"role": "user", "content": "Wetter in Köln? 🌦"},
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "The user asks about Köln.", "signature": SIGNATURE},
            {
                "type": "redacted_thinking",
                "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP",
            },
            {"type": "tool_use", "id": "toolu_01Relay", "name": "get_weather", "input": {"city": "Köln"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_01Relay",
                "content": [{"type": "text", "text": "12 °C"}],
                "is_error": False,
                "cache_control": {"type": "ephemeral"},
            }
        ],
    },
]
# everything the SDK takes, and what it does not know yet (extra_body): an upstream that speaks the
# protocol gets all of it, as it was sent
PARAMS: dict[str, Any] = {
    "model": ALIAS,
    "max_tokens": 4096,
    "system": [{"type": "text", "text": "Réponds brièvement.", "cache_control": {"type": "ephemeral"}}],
    "messages": HISTORY,
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "tools": TOOLS,
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "metadata": {"user_id": "opaque-user-7"},
    "stop_sequences": ["\n\nHuman:"],
    "service_tier": "standard_only",
    "cache_control": {"type": "ephemeral"},
    "extra_body": {
        "temperature": 1,
        "top_k": 40,
        "context_management": {"edits": [{"type": "clear_tool_uses"}]},
    },
    "extra_headers": {"anthropic-beta": BETA},
}


def _expected_upstream_body(sent: bytes) -> bytes:
    client_model = json.dumps(ALIAS).encode()
    assert sent.count(b'"model":' + client_model) == 1
    return sent.replace(b'"model":' + client_model, b'"model":' + json.dumps(UPSTREAM_MODEL).encode())


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_the_upstream_gets_the_clients_body_byte_for_byte_but_the_model(
    claude: anthropic.Anthropic, fake_anthropic: FakeAnthropic, stream: bool
) -> None:
    if stream:
        with claude.messages.stream(**PARAMS) as events:
            events.get_final_message()
    else:
        claude.messages.create(**PARAMS)
    sent = sent_bodies(claude)[-1]
    rec = fake_anthropic.only()
    assert rec.raw == _expected_upstream_body(sent)
    assert rec.path == "/v1/messages"
    assert rec.json["messages"][1]["content"][0]["signature"] == SIGNATURE


def test_the_upstream_gets_the_protocol_headers_and_the_providers_key(
    claude: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    claude.messages.create(**PARAMS)
    headers = fake_anthropic.only().headers
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == BETA
    assert headers["x-api-key"] == PROVIDER_KEY
    assert "authorization" not in headers
    assert not [name for name in headers if name.startswith("x-stainless")]  # the SDK's own, not relayed
    assert all(CLIENT_KEY not in value for value in headers.values())
    assert CLIENT_KEY.encode() not in fake_anthropic.only().raw


def test_the_beta_endpoint_as_claude_code_calls_it(
    claude: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    """`POST /v1/messages?beta=true` with the betas in anthropic-beta (client.beta.messages)."""
    message = claude.beta.messages.create(
        model=ALIAS, max_tokens=64, messages=HISTORY[:1], betas=["context-management-2025-06-27"]
    )
    assert message.content[0].type == "text"
    rec = fake_anthropic.only()
    assert rec.path == "/v1/messages"
    assert rec.headers["anthropic-beta"] == "context-management-2025-06-27"


def test_a_bearer_gateway_key_works_too(relay_gateway: str, fake_anthropic: FakeAnthropic) -> None:
    with checked_anthropic(relay_gateway, api_key=None, auth_token=CLIENT_KEY) as bearer:
        bearer.messages.create(model=ALIAS, max_tokens=64, messages=HISTORY[:1])
    headers = fake_anthropic.only().headers
    assert headers["x-api-key"] == PROVIDER_KEY and "authorization" not in headers


def test_a_wrong_gateway_key_is_anthropics_401(relay_gateway: str, fake_anthropic: FakeAnthropic) -> None:
    with (
        checked_anthropic(relay_gateway, api_key="sk-not-a-gateway-key") as stranger,
        pytest.raises(anthropic.AuthenticationError) as caught,
    ):
        stranger.messages.create(model=ALIAS, max_tokens=64, messages=HISTORY[:1])
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert fake_anthropic.requests == []


# ---- the reply, as it came -----------------------------------------------------------------------------

UNUSUAL_MESSAGE = anthropic_message(
    UPSTREAM_MODEL,
    [
        {"type": "thinking", "thinking": "Köln: 12 °C.", "signature": SIGNATURE},
        {"type": "text", "text": "Es sind 12 °C in Köln. 🌦"},
    ],
    usage=anthropic_usage(input_tokens=40, output_tokens=11, cache_read=300),
)


def test_a_reply_is_relayed_byte_for_byte(claude: anthropic.Anthropic, fake_anthropic: FakeAnthropic) -> None:
    body = json.dumps(
        UNUSUAL_MESSAGE, indent=2, ensure_ascii=True
    ).encode()  # not how the gateway writes JSON
    fake_anthropic.enqueue(
        Reply(200, {"Content-Type": "application/json", "request-id": "req_011Relay"}, [body])
    )
    raw = claude.messages.with_raw_response.create(model=ALIAS, max_tokens=64, messages=HISTORY[:1])
    assert raw.http_response.content == body
    message = raw.parse()
    assert message.content[0].signature == SIGNATURE  # type: ignore[union-attr]
    assert message.usage.cache_read_input_tokens == 300


def test_a_stream_is_relayed_byte_for_byte(
    claude: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    """Events cut anywhere (even inside a UTF-8 character), CRLF line ends, pings: the same bytes."""
    parts = anthropic_stream(UPSTREAM_MODEL, pieces=("Es sind ", "12 °C ", "in Köln."))
    cut = rechunk(parts, 7, crlf=True)
    fake_anthropic.enqueue(sse_reply(cut))
    with claude.messages.stream(model=ALIAS, max_tokens=64, messages=HISTORY[:1]) as stream:
        text = "".join(stream.text_stream)
    assert text == "Es sind 12 °C in Köln."
    exchange = claude.strict_transport.exchanges[-1]  # type: ignore[attr-defined]
    assert exchange.body == b"".join(part for part in cut if isinstance(part, bytes))


@pytest.mark.parametrize(
    ("status", "error_type", "exception"),
    [
        (400, "invalid_request_error", anthropic.BadRequestError),
        (429, "rate_limit_error", anthropic.RateLimitError),
        (529, "overloaded_error", anthropic.OverloadedError),
    ],
)
def test_an_upstream_error_is_relayed_as_it_came(
    claude: anthropic.Anthropic, fake_anthropic: FakeAnthropic, status: int, error_type: str, exception: type
) -> None:
    reply = anthropic_error(status, error_type, f"upstream says {error_type}")
    fake_anthropic.enqueue(reply)
    with pytest.raises(exception) as caught:
        claude.messages.create(model=ALIAS, max_tokens=64, messages=HISTORY[:1])
    assert caught.value.status_code == status
    assert caught.value.response.content == reply.body
    assert caught.value.body["request_id"] == "req_011FAKE"  # type: ignore[index]


# ---- the gateway still counts --------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_usage_is_counted_for_the_keys_tpm_and_the_access_log(
    claude: anthropic.Anthropic, fake_anthropic: FakeAnthropic, stream: bool
) -> None:
    usage = anthropic_usage(input_tokens=120, output_tokens=33, cache_creation=7, cache_read=500)
    if stream:
        fake_anthropic.enqueue(sse_reply(anthropic_stream(UPSTREAM_MODEL, usage=usage)))
    else:
        fake_anthropic.enqueue(
            Reply(
                200,
                {"Content-Type": "application/json"},
                [json.dumps(anthropic_message(UPSTREAM_MODEL, usage=usage)).encode()],
            )
        )
    params: dict[str, Any] = {"model": ALIAS, "max_tokens": 64, "messages": HISTORY[:1]}
    with access_events() as events:
        if stream:
            with claude.messages.stream(**params) as reply:
                reply.get_final_message()
                before = reply.response.headers
        else:
            before = claude.messages.with_raw_response.create(**params).headers
        first = events.wait_for(1)[0]
        after = claude.messages.with_raw_response.create(**params).headers  # counted when it was let in
        events.wait_for(2)
    counted = 120 + 7 + 500 + 33  # every input token, cached or not, and the output
    assert first["usage"] == {
        "prompt_tokens": 627,
        "completion_tokens": 33,
        "total_tokens": counted,
        # cache reads and writes kept apart: they are priced apart (gateway/prices/)
        "prompt_tokens_details": {"cached_tokens": 500, "cache_write_tokens": 7},
    }
    assert (first["provider"], first["upstream_model"], first["status"]) == ("claude", UPSTREAM_MODEL, 200)
    assert first["key"] == "sdk"
    spent = int(before["x-ratelimit-remaining-tokens"]) - int(after["x-ratelimit-remaining-tokens"])
    assert spent == counted


def test_a_stream_cut_inside_an_event_ends_with_a_whole_error_event(
    claude: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    """The upstream's connection drops in the middle of an event: the client gets every whole event,
    then the gateway's error event (never half an event glued to it)."""
    whole = b"".join(
        p for p in anthropic_stream(UPSTREAM_MODEL, pieces=("Es sind ", "12 °C")) if isinstance(p, bytes)
    )
    cut = whole.index(b'"12 ') + 3  # inside the second text delta
    fake_anthropic.enqueue(
        Reply(200, {"Content-Type": "text/event-stream"}, [whole[:cut], ABORT], stream=True)
    )
    received: list[str] = []
    with (
        claude.messages.stream(model=ALIAS, max_tokens=64, messages=HISTORY[:1]) as stream,
        pytest.raises(anthropic.APIStatusError) as caught,
    ):
        received.extend(stream.text_stream)
    assert "".join(received) == "Es sind "
    assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]
