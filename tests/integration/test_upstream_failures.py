"""Upstreams that cannot be reached or do not answer in time: 502 and 504 in OpenAI's envelope (or, once a
stream has started, an error event and [DONE])."""

from __future__ import annotations

import aiohttp
import openai
import pytest

from tests.support.fake_upstreams import OPENAI_MODEL, FakeOpenAI, held_reply, openai_chat_chunks, sse_reply
from tests.support.openai_spec import assert_error_body, assert_valid_stream
from tests.support.routes import SLOW_ALIAS, UNREACHABLE_ALIAS

USER = {"role": "user", "content": "Say hello"}


def test_unreachable_upstream_is_502(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=UNREACHABLE_ALIAS, messages=[USER])
    assert caught.value.status_code == 502
    error = assert_error_body(caught.value.response.json(), code="upstream_unreachable", type_="server_error")
    assert "unreachable" in error["message"]


async def test_unreachable_upstream_stream_request_is_502(http: aiohttp.ClientSession) -> None:
    body = {"model": UNREACHABLE_ALIAS, "messages": [USER], "stream": True}
    async with http.post("/v1/chat/completions", json=body) as response:
        assert response.status == 502
        assert response.headers["Content-Type"].startswith("application/json")
        assert_error_body(await response.json(), code="upstream_unreachable")


def test_upstream_timeout_is_504(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(held_reply(fake_openai.gate("never released during the test")))
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=SLOW_ALIAS, messages=[USER])
    assert caught.value.status_code == 504
    assert isinstance(caught.value, openai.InternalServerError)
    error = assert_error_body(caught.value.response.json(), code="upstream_timeout", type_="server_error")
    assert "timed out" in error["message"]
    fake_openai.only().closed.expect()  # the gateway hung up on the upstream


async def test_upstream_timeout_mid_stream_ends_with_an_error_event(
    http: aiohttp.ClientSession, fake_openai: FakeOpenAI
) -> None:
    parts = openai_chat_chunks(OPENAI_MODEL)
    never = fake_openai.gate("never released during the test")
    fake_openai.enqueue(sse_reply([*parts[:2], never, *parts[2:]]))
    async with http.post(
        "/v1/chat/completions", json={"model": SLOW_ALIAS, "messages": [USER], "stream": True}
    ) as response:
        assert response.status == 200  # already sent when the timeout hits
        events = assert_valid_stream(await response.read(), allow_error=True)
    assert events[-1]["error"]["code"] == "upstream_timeout"
    assert events[1]["choices"][0]["delta"]["content"] == "Hello"
    await fake_openai.only().closed.expect_async()
