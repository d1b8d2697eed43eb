"""A client that goes away makes the gateway close its upstream request too (no orphaned generations),
for streams (pass-through and translated) and for non-streaming requests the upstream is slow to answer."""

from __future__ import annotations

import asyncio

import aiohttp
import openai
import pytest

from tests.support.fake_upstreams import (
    OPENAI_MODEL,
    FakeAnthropic,
    FakeOpenAI,
    FakeUpstream,
    anthropic_stream,
    held_reply,
    openai_chat_chunks,
    sse_reply,
)
from tests.support.routes import ANTHROPIC_ALIAS, CLIENT_KEY, OPENAI_ALIAS

USER = {"role": "user", "content": "Say hello"}
CLOSE_TIMEOUT = 5.0


@pytest.fixture(params=["openai", "anthropic"])
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _fake(dialect: str, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> tuple[FakeUpstream, str]:
    return (fake_openai, OPENAI_ALIAS) if dialect == "openai" else (fake_anthropic, ANTHROPIC_ALIAS)


async def test_stream_client_disconnect_closes_the_upstream(
    gateway_url: str, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, dialect: str
) -> None:
    fake, alias = _fake(dialect, fake_openai, fake_anthropic)
    never = fake.gate("never released during the test")
    if dialect == "openai":
        parts = openai_chat_chunks(OPENAI_MODEL)
        fake.enqueue(sse_reply([*parts[:2], never, *parts[2:]]))  # role chunk + "Hello", then held
    else:
        parts = anthropic_stream()
        fake.enqueue(sse_reply([*parts[:4], never, *parts[4:]]))  # up to the first text delta, then held

    body = {"model": alias, "messages": [USER], "stream": True}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        response = await session.post(f"{gateway_url}/v1/chat/completions", json=body)
        assert response.status == 200
        seen = b""
        async with asyncio.timeout(10):
            while b"Hello" not in seen:
                line = await response.content.readline()
                assert line, f"stream ended early: {seen!r}"
                seen += line
        rec = fake.only()
        assert not rec.closed.is_set()
        response.close()  # the client goes away mid-stream (closes its connection)

    await rec.closed.expect_async(CLOSE_TIMEOUT)
    assert not rec.finished.is_set()
    assert not never.is_set()

    # the gateway is fine afterwards (no poisoned pooled connection)
    await _assert_gateway_serves(gateway_url, alias)


async def test_non_streaming_client_disconnect_closes_the_upstream(
    gateway_url: str, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, dialect: str
) -> None:
    fake, alias = _fake(dialect, fake_openai, fake_anthropic)
    never = fake.gate("never released during the test")
    fake.enqueue(held_reply(never))

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        request = asyncio.create_task(
            session.post(f"{gateway_url}/v1/chat/completions", json={"model": alias, "messages": [USER]})
        )
        await fake.arrived(1).expect_async()
        request.cancel()  # the client gives up before the answer: its connection is closed
        with pytest.raises(asyncio.CancelledError):
            await request

    rec = fake.only()
    await rec.closed.expect_async(CLOSE_TIMEOUT)
    assert not rec.finished.is_set()
    await _assert_gateway_serves(gateway_url, alias)


def test_sdk_timeout_closes_the_upstream(gateway_url: str, fake_openai: FakeOpenAI) -> None:
    """The sync SDK's own read timeout: the client closes, the gateway closes the upstream."""
    fake_openai.enqueue(held_reply(fake_openai.gate("never released during the test")))
    client = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=0.5)
    with client, pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model=OPENAI_ALIAS, messages=[USER])
    fake_openai.only().closed.expect(CLOSE_TIMEOUT)


async def _assert_gateway_serves(gateway_url: str, alias: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{gateway_url}/v1/chat/completions", json={"model": alias, "messages": [USER]}
        ) as response,
    ):
        assert response.status == 200
        assert (await response.json())["choices"][0]["message"]["content"]
