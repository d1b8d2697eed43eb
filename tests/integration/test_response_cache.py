"""The response cache over real HTTP: official SDKs against a gateway whose aliases cache, in front of
fake upstreams that count what reaches them. A hit never reaches the upstream; it is served in the
client's own protocol, as a stream when the request streams; errors and failed streams are never kept;
`Cache-Control` is honoured; two gateways share one Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from tests.support.access_events import access_events
from tests.support.anthropic_harness import anthropic_fixtures
from tests.support.fake_upstreams import (
    FakeAnthropic,
    FakeOpenAI,
    json_reply,
    openai_chat_chunks,
    openai_error,
    sse_reply,
)
from tests.support.redis_server import REDIS_SERVER, redis_server
from tests.support.routes import CLIENT_KEY
from tests.support.sdk_harness import checked_client, raw_http, running_gateway
from tests.support.servers import closed_port

CACHED = "cached-gpt"
CACHED_CLAUDE = "cached-claude"
PLAIN = "plain-gpt"
OPENAI_MODEL = "gpt-4o-2024-08-06"
CLAUDE_MODEL = "claude-sonnet-4-5-20250929"
CHAT = "/v1/chat/completions"


def cache_config(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, **extra: Any) -> dict[str, Any]:
    return {
        "log": {"level": "info", "format": "json"},
        "providers": {
            "openai-fake": {"dialect": "openai", "base_url": f"{fake_openai.url}/v1", "api_key": "sk-up"},
            "anthropic-fake": {"dialect": "anthropic", "base_url": fake_anthropic.url, "api_key": "sk-ant"},
        },
        "models": {
            CACHED: {"provider": "openai-fake", "model": OPENAI_MODEL, "cache": {"ttl": "10m"}},
            CACHED_CLAUDE: {
                "targets": [{"provider": "anthropic-fake", "model": CLAUDE_MODEL}],
                "cache": {"ttl": 600},
            },
            PLAIN: [{"provider": "openai-fake", "model": OPENAI_MODEL}],
        },
        **extra,
    }


@pytest.fixture(scope="module")
def cache_gateway(
    tmp_path_factory: pytest.TempPathFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> Iterator[str]:
    config = cache_config(fake_openai, fake_anthropic)
    with running_gateway(tmp_path_factory.mktemp("cache") / "routes.yaml", config) as url:
        yield url


@pytest.fixture
def client(cache_gateway: str) -> Iterator[openai.OpenAI]:
    with checked_client(cache_gateway) as sdk:
        yield sdk


claude, async_claude = anthropic_fixtures("cache_gateway")


def ask(text: str | None = None) -> Any:
    """A prompt no other test sends (the gateway, and its cache, serve the whole module)."""
    return [{"role": "user", "content": text or f"question {uuid.uuid4().hex}"}]


def chat(client: openai.OpenAI, messages: Any, **params: Any) -> tuple[str | None, Any]:
    raw = client.chat.completions.with_raw_response.create(model=CACHED, messages=messages, **params)
    return raw.headers.get("x-gateway-cache"), raw.parse()


def stream_chat(client: openai.OpenAI, messages: Any) -> tuple[str | None, list[Any]]:
    raw = client.chat.completions.with_raw_response.create(
        model=CACHED,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    return raw.headers.get("x-gateway-cache"), list(raw.parse())


# -- chat, JSON and streams -----------------------------------------------------------------------


def test_a_repeated_chat_request_is_served_from_the_cache(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    messages = ask()
    first_verdict, first = chat(client, messages)
    second_verdict, second = chat(client, messages)
    assert (first_verdict, second_verdict) == ("miss", "hit")
    assert len(fake_openai.requests) == 1
    assert second.model_dump() == first.model_dump()


def test_a_repeated_stream_is_served_from_the_cache_as_a_stream(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    messages = ask()
    first_verdict, first = stream_chat(client, messages)
    second_verdict, second = stream_chat(client, messages)
    assert (first_verdict, second_verdict) == ("miss", "hit")
    assert len(fake_openai.requests) == 1
    assert len(second) == len(first) > 2
    assert [c.model_dump() for c in second] == [c.model_dump() for c in first]
    text = "".join(c.choices[0].delta.content or "" for c in second if c.choices)
    assert text == "Hello from the fake stream."
    assert second[-1].usage is not None  # the usage chunk the client asked for is there too


async def test_a_stream_hit_is_an_sse_body(cache_gateway: str, fake_openai: FakeOpenAI) -> None:
    body = {"model": CACHED, "messages": ask(), "stream": True}
    async with raw_http(cache_gateway) as http:
        async with http.post(CHAT, json=body) as response:
            first = await response.read()
        async with http.post(CHAT, json=body) as response:
            assert response.headers["Content-Type"] == "text/event-stream"
            assert response.headers["x-gateway-cache"] == "hit"
            second = await response.read()
    assert second == first
    assert second.endswith(b"data: [DONE]\n\n")
    assert len(fake_openai.requests) == 1


def test_a_stream_and_a_json_answer_are_kept_apart(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    messages = ask()
    assert stream_chat(client, messages)[0] == "miss"
    assert chat(client, messages)[0] == "miss"
    assert stream_chat(client, messages)[0] == "hit"
    assert chat(client, messages)[0] == "hit"
    assert len(fake_openai.requests) == 2


def test_who_asks_does_not_change_the_key_what_is_asked_does(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    messages = ask()
    assert chat(client, messages, user="alice", metadata={"team": "a"})[0] == "miss"
    assert chat(client, messages, user="bob", safety_identifier="b")[0] == "hit"
    assert chat(client, messages, temperature=0.5)[0] == "miss"
    assert len(fake_openai.requests) == 2


def test_an_alias_without_cache_says_nothing_and_always_asks(
    client: openai.OpenAI, fake_openai: FakeOpenAI
) -> None:
    messages = ask()
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model=PLAIN, messages=messages)
        assert "x-gateway-cache" not in raw.headers
    assert len(fake_openai.requests) == 2


# -- Messages clients -----------------------------------------------------------------------------


def test_a_messages_hit_is_served_in_messages_format(
    claude: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    messages = ask()
    answers = []
    for expected in ("miss", "hit"):
        raw = claude.messages.with_raw_response.create(model=CACHED_CLAUDE, max_tokens=64, messages=messages)
        assert raw.headers["x-gateway-cache"] == expected
        answers.append(raw.parse())
    assert len(fake_anthropic.requests) == 1
    assert answers[1].type == "message"
    assert answers[1].model_dump() == answers[0].model_dump()


def test_a_messages_stream_hit_is_a_messages_stream(
    claude: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    messages = ask()
    finals = []
    for _ in range(2):
        with claude.messages.stream(model=CACHED_CLAUDE, max_tokens=64, messages=messages) as stream:
            finals.append(stream.get_final_message())
    assert len(fake_anthropic.requests) == 1
    assert finals[1].model_dump() == finals[0].model_dump()
    assert finals[1].content


def test_a_relayed_header_that_changes_the_answer_changes_the_key(
    claude: anthropic.Anthropic, fake_anthropic: FakeAnthropic
) -> None:
    messages = ask()
    for beta, expected in ((None, "miss"), ("some-beta-2025-01-01", "miss"), ("some-beta-2025-01-01", "hit")):
        headers = {"anthropic-beta": beta} if beta else {}
        raw = claude.messages.with_raw_response.create(
            model=CACHED_CLAUDE, max_tokens=64, messages=messages, extra_headers=headers
        )
        assert raw.headers["x-gateway-cache"] == expected
    assert len(fake_anthropic.requests) == 2


def test_each_client_protocol_gets_its_own_answer(
    client: openai.OpenAI, claude: anthropic.Anthropic, fake_openai: FakeOpenAI
) -> None:
    """The same question to the same alias from a chat client and a Messages client: each is kept in
    its own protocol (two upstream calls), then each is a hit in its own format."""
    text = f"question {uuid.uuid4().hex}"
    for expected in ("miss", "hit"):
        verdict, completion = chat(client, ask(text), max_tokens=64)
        assert verdict == expected
        assert completion.object == "chat.completion"
        raw = claude.messages.with_raw_response.create(model=CACHED, max_tokens=64, messages=ask(text))
        assert raw.headers["x-gateway-cache"] == expected
        assert raw.parse().type == "message"
    assert len(fake_openai.requests) == 2


async def test_a_hit_says_what_the_first_answer_left_out(cache_gateway: str, fake_openai: FakeOpenAI) -> None:
    body = {"model": CACHED, "max_tokens": 64, "messages": ask(), "service_tier": "auto"}
    async with raw_http(cache_gateway) as http:
        for expected in ("miss", "hit"):
            async with http.post("/v1/messages", json=body) as response:
                assert response.status == 200
                assert response.headers["x-gateway-cache"] == expected
                assert response.headers["x-gateway-dropped-params"] == "service_tier"
    assert len(fake_openai.requests) == 1


# -- what is never kept ---------------------------------------------------------------------------


def test_an_error_is_not_kept(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    messages = ask()
    fake_openai.enqueue(openai_error(400, "Bad things", "invalid_request_error"))
    with pytest.raises(openai.BadRequestError):
        chat(client, messages)
    assert chat(client, messages)[0] == "miss"
    assert chat(client, messages)[0] == "hit"
    assert len(fake_openai.requests) == 2


async def test_a_stream_that_did_not_end_well_is_not_kept(
    cache_gateway: str, fake_openai: FakeOpenAI
) -> None:
    body = {"model": CACHED, "messages": ask(), "stream": True}
    fake_openai.enqueue(
        sse_reply(openai_chat_chunks(OPENAI_MODEL, done=False)[:3])
    )  # cut: no finish, no [DONE]
    async with raw_http(cache_gateway) as http:
        async with http.post(CHAT, json=body) as response:
            assert response.headers["x-gateway-cache"] == "miss"
            assert b"error" in await response.read()
        for expected in ("miss", "hit"):
            async with http.post(CHAT, json=body) as response:
                assert response.headers["x-gateway-cache"] == expected
                assert (await response.read()).endswith(b"data: [DONE]\n\n")
    assert len(fake_openai.requests) == 2


async def test_a_reply_that_finished_with_an_error_is_not_kept(
    cache_gateway: str, fake_openai: FakeOpenAI
) -> None:
    body = {"model": CACHED, "messages": ask()}
    broken = {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 1,
        "model": OPENAI_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "error"}],
    }
    fake_openai.enqueue(json_reply(broken))
    async with raw_http(cache_gateway) as http:
        for expected in ("miss", "miss", "hit"):
            async with http.post(CHAT, json=body) as response:
                assert response.status == 200
                assert response.headers["x-gateway-cache"] == expected
    assert len(fake_openai.requests) == 2


async def test_a_stream_that_finished_with_an_error_is_not_kept(
    cache_gateway: str, fake_openai: FakeOpenAI
) -> None:
    body = {"model": CACHED, "messages": ask(), "stream": True}
    parts = [
        part.replace(b'"finish_reason":"stop"', b'"finish_reason":"error"')
        if isinstance(part, bytes)
        else part
        for part in openai_chat_chunks(OPENAI_MODEL)
    ]
    fake_openai.enqueue(sse_reply(parts))
    async with raw_http(cache_gateway) as http:
        for expected in ("miss", "miss", "hit"):
            async with http.post(CHAT, json=body) as response:
                assert response.headers["x-gateway-cache"] == expected
                assert (await response.read()).endswith(b"data: [DONE]\n\n")
    assert len(fake_openai.requests) == 2


# -- Cache-Control --------------------------------------------------------------------------------


async def test_no_cache_skips_the_lookup_and_keeps_the_fresh_answer(
    cache_gateway: str, fake_openai: FakeOpenAI
) -> None:
    body = {"model": CACHED, "messages": ask()}
    async with raw_http(cache_gateway) as http:
        for control, expected in ((None, "miss"), ("no-cache", "skip"), ("max-age=0", "skip"), (None, "hit")):
            headers = {"Cache-Control": control} if control else {}
            async with http.post(CHAT, json=body, headers=headers) as response:
                assert response.status == 200
                assert response.headers["x-gateway-cache"] == expected
    assert len(fake_openai.requests) == 3


async def test_no_store_keeps_nothing_but_may_be_served(cache_gateway: str, fake_openai: FakeOpenAI) -> None:
    body = {"model": CACHED, "messages": ask()}
    async with raw_http(cache_gateway) as http:
        for control, expected in (("no-store", "miss"), (None, "miss"), ("no-store", "hit")):
            headers = {"Cache-Control": control} if control else {}
            async with http.post(CHAT, json=body, headers=headers) as response:
                assert response.headers["x-gateway-cache"] == expected
    assert len(fake_openai.requests) == 2


# -- what a hit says ------------------------------------------------------------------------------


async def test_a_hit_costs_zero_in_the_log_and_is_counted(
    cache_gateway: str, fake_openai: FakeOpenAI
) -> None:
    body = {"model": CACHED, "messages": ask()}
    async with raw_http(cache_gateway) as http:
        with access_events() as events:
            for _ in range(2):
                async with http.post(CHAT, json=body) as response:
                    assert response.status == 200
                    last = response
            logged = events.wait_for(2)
        assert float(last.headers["x-gateway-cost-usd"]) == 0.0
        async with http.get("/metrics") as response:
            metrics = await response.text()
    miss, hit = logged[-2:]
    assert (miss["cache"], hit["cache"]) == ("miss", "hit")
    assert hit["cost_usd"] == 0.0
    assert "usage" not in hit and hit["attempts"] == []
    assert (hit["provider"], hit["upstream_model"]) == ("openai-fake", OPENAI_MODEL)
    assert f'gateway_cache_requests_total{{alias="{CACHED}",result="hit"}}' in metrics
    assert f'gateway_cache_requests_total{{alias="{CACHED}",result="miss"}}' in metrics


# -- Redis ----------------------------------------------------------------------------------------

needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


async def _stored(url: str, deadline: float) -> list[bytes]:
    """The cache's keys in Redis, once there is one (a put is made after the answer left)."""
    import redis.asyncio as redis_asyncio

    store: Any = redis_asyncio.from_url(url)
    try:
        while time.monotonic() < deadline:
            keys: list[bytes] = await store.keys("gateway:rc:*")
            if keys:
                return keys
            await asyncio.sleep(0.01)  # polling Redis, the condition waited on (no event crosses processes)
        return []
    finally:
        await store.aclose()


@needs_redis
async def test_two_gateways_share_one_redis(
    tmp_path: Path, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    body = {"model": CACHED, "messages": ask()}
    with redis_server() as url:
        config = cache_config(fake_openai, fake_anthropic, cache={"store": "redis", "redis_url": url})
        with (
            running_gateway(tmp_path / "a.yaml", config, name="gateway-a") as first,
            running_gateway(tmp_path / "b.yaml", config, name="gateway-b") as second,
        ):
            async with raw_http(first) as http, http.post(CHAT, json=body) as response:
                assert response.headers["x-gateway-cache"] == "miss"
                answer = await response.read()
            assert len(await _stored(url, time.monotonic() + 5)) == 1
            async with raw_http(second) as http, http.post(CHAT, json=body) as response:
                assert response.headers["x-gateway-cache"] == "hit"
                assert await response.read() == answer
    assert len(fake_openai.requests) == 1


async def test_a_redis_that_cannot_be_reached_is_a_miss(
    tmp_path: Path, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    config = cache_config(fake_openai, fake_anthropic, cache={"store": "redis", "redis_url": url})
    body = {"model": CACHED, "messages": ask()}
    with running_gateway(tmp_path / "routes.yaml", config) as gateway:
        async with aiohttp.ClientSession(
            base_url=gateway, headers={"Authorization": f"Bearer {CLIENT_KEY}"}
        ) as http:
            started = time.monotonic()
            for _ in range(2):
                async with http.post(CHAT, json=body) as response:
                    assert response.status == 200
                    assert response.headers["x-gateway-cache"] == "miss"
            assert time.monotonic() - started < 5.0  # one connect failure, then the store rests
    assert len(fake_openai.requests) == 2
