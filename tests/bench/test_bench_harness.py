"""The benchmark harness measures what it says: a Messages API stream counts as finished at
`event: message_stop` (it has no `[DONE]`), the *-messages targets are compared with the direct and
passthrough figures of the same request, and their checks read those figures.

pytest puts tests/bench on sys.path for this file (no __init__.py here), as running the harness does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from checks import evaluate
from mock_upstream import build_app
from probe import reply_text
from report import derive
from run_bench import parse_args
from stream_client import SseEnd, one_stream
from targets import MESSAGES, TARGETS

CHUNKS = 5
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer bench"}


@pytest.mark.parametrize(
    ("path", "body", "events"),
    [
        ("/v1/chat/completions", b'{"model":"m","stream":true}', CHUNKS),
        # message_start, content_block_start, CHUNKS text_delta, content_block_stop, message_delta
        ("/v1/messages", b'{"model":"m","stream":true,"max_tokens":9}', CHUNKS + 4),
    ],
)
async def test_a_stream_ends_at_its_protocols_end_marker(path: str, body: bytes, events: int) -> None:
    async with TestServer(build_app(CHUNKS)) as server, aiohttp.ClientSession() as session:
        ttfb, total, count = await one_stream(session, str(server.make_url(path)), body, HEADERS)
    assert 0 < ttfb <= total
    assert count == events


def test_the_end_marker_is_found_across_chunk_boundaries() -> None:
    stream = (
        b'event: message_start\ndata: {"type":"message_start"}\n\n'
        b": a comment\n\n"
        b'event: ping\ndata: {"type":"ping"}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    for cut in range(1, len(stream)):
        sse = SseEnd()
        ends = [sse.feed(stream[:cut]), sse.feed(stream[cut:])]
        assert ends == [False, True], cut
        assert sse.events == 2


def test_an_anthropic_error_event_is_an_error_not_an_event() -> None:
    sse = SseEnd()
    with pytest.raises(RuntimeError, match="overloaded_error"):
        sse.feed(b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n')


def test_a_messages_reply_text_is_its_first_text_block() -> None:
    reply = {"type": "message", "content": [{"type": "text", "text": "hi"}]}
    assert reply_text("messages", reply) == "hi"
    assert reply_text("messages", {"content": [{"type": "tool_use", "id": "toolu_1"}]}) is None
    assert reply_text("chat", {"choices": [{"message": {"content": "hi"}}]}) == "hi"
    assert reply_text("chat", reply) is None


def test_the_messages_body_is_the_chat_conversation_as_a_messages_request() -> None:
    import json

    chat = json.loads((Path(__file__).parent / "chat_request.json").read_bytes())
    messages = json.loads(MESSAGES.body_file.read_bytes())
    assert messages["system"] == chat["messages"][0]["content"]
    assert messages["messages"] == chat["messages"][1:]
    assert messages["max_tokens"] == chat["max_tokens"]


def test_a_messages_target_brings_its_direct_baseline_first() -> None:
    args = parse_args(["--targets", "passthrough,gateway-messages-openai"])
    assert args.target_names == ["direct", "direct-messages", "passthrough", "gateway-messages-openai"]
    assert parse_args(["--targets", "gateway-openai"]).target_names == ["direct", "gateway-openai"]


def _result(name: str, rps: float, p50: float, ttfb: float) -> dict[str, Any]:
    target = TARGETS[name]
    return {
        "target": name,
        "status": "ok",
        "baseline": None if target.kind == "direct" else target.baseline,
        "floor": None if target.kind == "direct" else target.floor,
        "load": {"rps": rps},
        "serial": {"p50_ms": p50, "p99_ms": p50 * 2},
        "stream": {"ttfb_p50_ms": ttfb, "total_p50_ms": ttfb * 4},
    }


def _rows(native_rps: float, openai_rps: float, openai_ttfb: float) -> dict[str, tuple[str, Any]]:
    results = [
        _result("direct", 9000, 0.20, 0.50),  # the chat figures: none of the rows below may read them
        _result("passthrough", 5000, 0.30, 0.55),
        _result("direct-messages", 9000, 0.30, 0.60),
        _result("passthrough-messages", 4000, 0.60, 0.80),  # added TTFB 0.20 ms
        _result("gateway-messages-native", native_rps, 0.60, 0.80),
        _result("gateway-messages-openai", openai_rps, 0.70, openai_ttfb),
    ]
    ratios = derive(results)
    meta = {"conns": 32, "chunks": 20, "chunk_delay_ms": 5, "memory_requests": 0}
    rows = evaluate(results, ratios, meta, None)
    return {r["figure"]: (r["status"], r["value"]) for r in rows if "messages" in r["figure"]}


def test_the_messages_checks_divide_by_the_messages_passthrough() -> None:
    rows = _rows(native_rps=4000, openai_rps=2800, openai_ttfb=0.90)  # added TTFB 0.30 ms = 1.5x
    assert rows == {
        "rps c=32, gateway-messages-native / passthrough-messages": ("PASS", 1.0),
        "rps c=32, gateway-messages-openai / passthrough-messages": ("PASS", 0.7),
        "stream TTFB p50 added vs direct-messages, gateway-messages-openai / passthrough-messages": (
            "PASS",
            pytest.approx(1.5),
        ),
    }


def test_the_messages_checks_fail_below_their_targets_unrounded() -> None:
    rows = _rows(native_rps=3990, openai_rps=2790, openai_ttfb=0.91)
    assert [status for status, _ in rows.values()] == ["FAIL", "FAIL", "FAIL"]
