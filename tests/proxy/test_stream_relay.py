"""The translating stream relay writes the first client frame on its own, before translating the rest
of the same upstream read (so time-to-first-byte does not grow with the size of that read)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.engine.stream_translator import StreamTranslator
from gateway.framing.sse import SseDecoder
from gateway.proxy.stream_relay import _translate
from gateway.rules.context import EvalContext
from tests.support.fake_upstreams import anthropic_stream

CONFIG = """
providers:
  claude: {dialect: anthropic, base_url: "http://127.0.0.1:9", api_key: k}
models:
  m: [{provider: claude, model: claude-x}]
"""


class RecordingResponse:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.writes.append(data)


class NoReply:
    def abort(self) -> None:
        raise AssertionError("a complete stream is not aborted")


async def one_read(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_first_frame_is_written_alone_then_the_rest_of_the_read_together() -> None:
    registry = build_registry(config_from_text(CONFIG, "routes.yaml", {}))
    operation = next(registry.routes["m"].root.targets()).provider.operations["chat"]
    assert operation.stream is not None
    request: dict[str, Any] = {"model": "m", "messages": [], "stream": True}
    translator = StreamTranslator(operation.stream, EvalContext(request=request, created=int(time.time())))
    response = RecordingResponse()
    # every event in a single upstream read
    whole_stream = b"".join(part for part in anthropic_stream("claude-x") if isinstance(part, bytes))

    outcome = await _translate(response, one_read(whole_stream), NoReply(), translator, SseDecoder())  # type: ignore[arg-type]

    first, rest = response.writes[0], b"".join(response.writes[1:])
    assert first.count(b"data: ") == 1 and b'"role":"assistant"' in first
    assert len(response.writes) == 2  # the rest of that read went out in one write
    assert rest.endswith(b"data: [DONE]\n\n") and rest.count(b"data: ") > 3
    assert outcome == "ok"
