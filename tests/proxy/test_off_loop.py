"""A large body is worked on off the event loop: the loop keeps serving while a request of megabytes
is decoded, validated and translated."""

from __future__ import annotations

import asyncio
import gc
import io
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from gateway import json_codec
from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.proxy.off_loop import OFF_LOOP_BYTES, run_sized
from gateway.reload import RegistryHolder
from gateway.upstream.mock import MockReply

ROUTES = """
providers:
  anthropic: {dialect: anthropic, base_url: "http://127.0.0.1:9", api_key: sk-test-key-123}
models:
  claude: [{provider: anthropic, model: claude-test}]
"""
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-test",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 5, "output_tokens": 1},
}
# the loop may wait for the interpreter while the worker thread runs (5 ms slices) and while orjson
# parses or writes the body (C code, ~10 ms for 3 MB); before the work moved off the loop, this
# request held it for the whole translation (~0.7 s); the bound leaves room for a busy machine (another
# test worker on the other CPU)
MAX_LOOP_GAP_S = 0.3


class _AnthropicReplies:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    @asynccontextmanager
    async def open(self, target: Any, url: str, body: bytes) -> AsyncIterator[MockReply]:
        self.sent.append(body)
        yield MockReply(200, {"Content-Type": "application/json"}, [json_codec.dumps(MESSAGE)])


async def _longest_gap(stop: asyncio.Event) -> float:
    longest = 0.0
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
    return longest


async def test_a_body_of_megabytes_does_not_hold_the_event_loop(aiohttp_client: Any) -> None:
    upstream = _AnthropicReplies()
    registry = build_registry(config_from_text(ROUTES, "routes.yaml", {}))
    app = create_app(RegistryHolder("routes.yaml", registry), transports={"http": upstream})
    client = await aiohttp_client(app)
    messages = [{"role": "user", "content": f"m{i}"} for i in range(100_000)]  # ~3 MB, same role
    body = io.BytesIO(json_codec.dumps({"model": "claude", "messages": messages}))
    # as the gateway does after start-up (cli.serve): what lived before is out of the collector's
    # sight, so a full collection walks what this request made, not the million objects a test run
    # keeps alive (a full pass over those alone takes about a second)
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    ticker = asyncio.create_task(_longest_gap(stop))
    try:
        await asyncio.sleep(0.01)
        response = await client.post(
            "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status == 200, await response.text()
    finally:
        stop.set()
        gap = await ticker
        gc.unfreeze()
    sent = json_codec.loads(upstream.sent[0])
    assert len(sent["messages"]) == 1 and len(sent["messages"][0]["content"]) == 100_000  # merged, linear
    assert gap < MAX_LOOP_GAP_S, f"the event loop was held for {gap * 1000:.0f} ms"


async def test_small_work_stays_on_the_loop_and_large_work_goes_to_a_thread() -> None:
    here = threading.get_ident()
    assert await run_sized(OFF_LOOP_BYTES, threading.get_ident) == here
    assert await run_sized(OFF_LOOP_BYTES + 1, threading.get_ident) != here
