"""A cached answer in bytes (as Redis keeps it) and back."""

from __future__ import annotations

import pytest

from gateway.response_cache.entry import CachedReply


@pytest.mark.parametrize(
    "reply",
    [
        CachedReply(False, b'{"id":"x"}', (("Content-Type", "application/json"),), "openai", "gpt-4o"),
        CachedReply(True, b"data: {}\n\ndata: [DONE]\n\n", (("x-gateway-dropped-params", "seed"),)),
        CachedReply(True, b"event: a\ndata: \xe2\x9c\x93\n\n"),
    ],
)
def test_round_trip(reply: CachedReply) -> None:
    assert CachedReply.decode(reply.encode()) == reply
