"""The benchmark harness measures what it says: a Messages API stream counts as finished at
`event: message_stop` and a Responses API stream at `event: response.completed` (neither has `[DONE]`),
the mock's Responses API answers are what the spec says, the *-messages and *-responses targets are
compared with the direct and passthrough figures of the same request, and their checks read those
figures; the Responses targets reach the upstream they are named after (relayed to the mock's
/v1/responses, or translated to its /v1/chat/completions).

pytest puts tests/bench on sys.path for this file (no __init__.py here), as running the harness does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from checks import evaluate, pooled_rps, pooled_ttfb
from mock_upstream import RESPONSE_BYTES, build_app, responses_events
from probe import reply_text
from report import derive
from run_bench import parse_args, ratio_groups
from stream_client import SseEnd, one_stream, run_interleaved
from targets import MESSAGES, RESPONSES, TARGETS, gateway_config

from tests.support.responses_spec import assert_valid_response, assert_valid_response_stream
from tests.support.sdk_harness import running_gateway

CHUNKS = 5
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer bench"}


@pytest.mark.parametrize(
    ("path", "body", "events"),
    [
        ("/v1/chat/completions", b'{"model":"m","stream":true}', CHUNKS),
        # message_start, content_block_start, CHUNKS text_delta, content_block_stop, message_delta
        ("/v1/messages", b'{"model":"m","stream":true,"max_tokens":9}', CHUNKS + 4),
        # response.created, .in_progress, output_item.added, content_part.added, CHUNKS output_text.delta,
        # output_text.done, content_part.done, output_item.done
        ("/v1/responses", b'{"model":"m","stream":true,"input":"hi"}', CHUNKS + 7),
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


def test_a_responses_stream_ends_at_response_completed_across_chunk_boundaries() -> None:
    stream = (
        b'event: response.created\ndata: {"type":"response.created","sequence_number":0}\n\n'
        b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"a"}\n\n'
        b'event: response.completed\ndata: {"type":"response.completed","sequence_number":2}\n\n'
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


def test_a_failed_response_is_an_error_not_an_event() -> None:
    sse = SseEnd()
    with pytest.raises(RuntimeError, match="server_error"):
        sse.feed(
            b'event: response.failed\ndata: {"type":"response.failed","error":{"code":"server_error"}}\n\n'
        )


def test_the_mocks_responses_answers_are_the_specs() -> None:
    assert_valid_response(json.loads(RESPONSE_BYTES))
    events = assert_valid_response_stream(b"".join(responses_events(CHUNKS)))
    assert [e["type"] for e in events].count("response.output_text.delta") == CHUNKS
    assert events[-1]["type"] == "response.completed"
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == deltas


def test_a_messages_reply_text_is_its_first_text_block() -> None:
    reply = {"type": "message", "content": [{"type": "text", "text": "hi"}]}
    assert reply_text("messages", reply) == "hi"
    assert reply_text("messages", {"content": [{"type": "tool_use", "id": "toolu_1"}]}) is None
    assert reply_text("chat", {"choices": [{"message": {"content": "hi"}}]}) == "hi"
    assert reply_text("chat", reply) is None
    assert reply_text("responses", json.loads(RESPONSE_BYTES)).startswith("TCP is reliable")
    reasoning_first = {
        "output": [{"type": "reasoning", "summary": []}, *json.loads(RESPONSE_BYTES)["output"]]
    }
    assert reply_text("responses", reasoning_first).startswith("TCP is reliable")
    assert reply_text("responses", {"output": [{"type": "function_call", "name": "f"}]}) is None
    assert reply_text("responses", reply) is None


def test_the_messages_body_is_the_chat_conversation_as_a_messages_request() -> None:
    chat = json.loads((Path(__file__).parent / "chat_request.json").read_bytes())
    messages = json.loads(MESSAGES.body_file.read_bytes())
    assert messages["system"] == chat["messages"][0]["content"]
    assert messages["messages"] == chat["messages"][1:]
    assert messages["max_tokens"] == chat["max_tokens"]


def test_the_responses_body_is_the_chat_conversation_as_a_responses_request() -> None:
    chat = json.loads((Path(__file__).parent / "chat_request.json").read_bytes())
    responses = json.loads(RESPONSES.body_file.read_bytes())
    assert responses["instructions"] == chat["messages"][0]["content"]
    assert responses["input"] == chat["messages"][1:]
    assert responses["max_output_tokens"] == chat["max_tokens"]
    assert (responses["temperature"], responses["safety_identifier"]) == (chat["temperature"], chat["user"])
    assert responses["store"] is False
    # the mock's Response echoes it as the API would
    echoed = json.loads(RESPONSE_BYTES)
    assert (echoed["instructions"], echoed["max_output_tokens"]) == (responses["instructions"], 256)


def test_a_messages_target_brings_its_direct_baseline_first() -> None:
    args = parse_args(["--targets", "passthrough,gateway-messages-openai"])
    assert args.target_names == ["direct", "direct-messages", "passthrough", "gateway-messages-openai"]
    assert parse_args(["--targets", "gateway-openai"]).target_names == ["direct", "gateway-openai"]


def test_a_responses_target_brings_its_direct_baseline_first() -> None:
    args = parse_args(
        ["--targets", "passthrough-responses,gateway-responses-native,gateway-responses-openai"]
    )
    assert args.target_names == [
        "direct",
        "direct-responses",
        "passthrough-responses",
        "gateway-responses-native",
        "gateway-responses-openai",
    ]


@pytest.mark.parametrize(
    ("target", "upstream_path", "deltas"),
    [
        ("gateway-responses-native", "/v1/responses", CHUNKS),
        # the mock's chat stream: CHUNKS chunks, the last one only a finish_reason
        ("gateway-responses-openai", "/v1/chat/completions", CHUNKS - 1),
    ],
)
async def test_a_responses_target_reaches_the_upstream_it_is_named_after(
    target: str, upstream_path: str, deltas: int, tmp_path: Path
) -> None:
    """The generated gateway config, served, with the mock behind it: the native target is relayed to the
    mock's /v1/responses, the translated one goes to its /v1/chat/completions; both answer the probe and
    stream to response.completed, as the run's phases need."""
    seen: list[str] = []

    async def note(request: web.Request, response: web.StreamResponse) -> None:
        seen.append(request.path)

    mock = build_app(CHUNKS)
    mock.on_response_prepare.append(note)
    body = json.loads(RESPONSES.body_file.read_bytes())
    body["model"] = TARGETS[target].model
    async with TestServer(mock) as upstream:
        config = yaml.safe_load(gateway_config(upstream.port or 0, 5))
        with running_gateway(tmp_path / "routes.yaml", config, name="bench-gateway") as base:
            async with aiohttp.ClientSession() as session:
                url = base + RESPONSES.path
                async with session.post(url, json=body, headers=HEADERS) as resp:
                    assert resp.status == 200, await resp.text()
                    assert reply_text("responses", await resp.json()).startswith("TCP is reliable")
                streamed = json.dumps({**body, "stream": True}).encode()
                ttfb, total, count = await one_stream(session, url, streamed, HEADERS)
    assert 0 < ttfb <= total
    assert count == deltas + 7  # created, in_progress, item and part added, the deltas, 3 x done
    assert seen == [upstream_path, upstream_path]


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


def _rows(
    native_rps: float, openai_rps: float, openai_ttfb: float, protocol: str = "messages"
) -> dict[str, tuple[str, Any]]:
    results = [
        _result("direct", 9000, 0.20, 0.50),  # the chat figures: none of the rows below may read them
        _result("passthrough", 5000, 0.30, 0.55),
        _result(f"direct-{protocol}", 9000, 0.30, 0.60),
        _result(f"passthrough-{protocol}", 4000, 0.60, 0.80),  # added TTFB 0.20 ms
        _result(f"gateway-{protocol}-native", native_rps, 0.60, 0.80),
        _result(f"gateway-{protocol}-openai", openai_rps, 0.70, openai_ttfb),
    ]
    ratios = derive(results)
    meta = {"conns": 32, "chunks": 20, "chunk_delay_ms": 5, "memory_requests": 0}
    rows = evaluate(results, ratios, meta, None)
    return {r["figure"]: (r["status"], r["value"]) for r in rows if protocol in r["figure"]}


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


def test_the_responses_checks_divide_by_the_responses_passthrough() -> None:
    """Issue 14's rows: Responses in -> chat-only upstream >= 0.7x passthrough-responses, passthrough
    (native) >= 1.0x, added stream TTFB <= 1.5x the passthrough's."""
    rows = _rows(native_rps=4000, openai_rps=2800, openai_ttfb=0.90, protocol="responses")
    assert rows == {
        "rps c=32, gateway-responses-native / passthrough-responses": ("PASS", 1.0),
        "rps c=32, gateway-responses-openai / passthrough-responses": ("PASS", 0.7),
        "stream TTFB p50 added vs direct-responses, gateway-responses-openai / passthrough-responses": (
            "PASS",
            pytest.approx(1.5),
        ),
    }


def test_the_responses_checks_fail_below_their_targets_unrounded() -> None:
    rows = _rows(native_rps=3990, openai_rps=2790, openai_ttfb=0.91, protocol="responses")
    assert [status for status, _ in rows.values()] == ["FAIL", "FAIL", "FAIL"]


def test_every_responses_row_is_not_measured_without_its_targets() -> None:
    rows = _rows(native_rps=4000, openai_rps=2800, openai_ttfb=0.90)  # a run of the Messages targets only
    results = [_result("direct", 9000, 0.20, 0.50)]
    meta = {"conns": 32, "chunks": 20, "chunk_delay_ms": 5, "memory_requests": 0}
    responses_rows = [r for r in evaluate(results, derive(results), meta, None) if "responses" in r["figure"]]
    assert len(responses_rows) == 3
    assert {r["status"] for r in responses_rows} == {"n/a"}
    assert rows  # the Messages rows of the same helper still read their own figures


def _ok(name: str, **extra: Any) -> dict[str, Any]:
    return {"target": name, "status": "ok", **extra}


def test_ratio_rounds_pool_every_load_phase_and_skip_failed_rounds() -> None:
    res = _ok(
        "gateway-messages-native",
        load={"requests": 8000, "seconds": 8.0, "rps": 1000.0},
        ratio_rounds=[
            {"requests": 6000, "seconds": 5.0},
            {"error": "exited"},
            {"requests": 4000, "seconds": 5.0},
        ],
    )
    assert pooled_rps(res) == (18000 / 18.0, 3)
    assert pooled_rps(_ok("x", load={"rps": 900.0})) == (900.0, 1)  # no rounds: the load phase's own
    assert pooled_rps({"target": "x", "status": "failed"}) == (None, 0)


def test_ratio_groups_are_each_floor_with_its_measured_gateway_targets() -> None:
    results = [
        _ok("direct"),
        _ok("passthrough"),
        _ok("gateway-openai"),  # (its floor is the chat passthrough: no rounds)
        _ok("passthrough-messages"),
        _ok("gateway-messages-openai"),
        _ok("gateway-messages-native"),
        _ok("passthrough-responses"),
        {"target": "gateway-responses-native", "status": "failed"},
    ]
    assert ratio_groups(results) == [
        ["passthrough-messages", "gateway-messages-native", "gateway-messages-openai"],
    ]


def test_ratio_rounds_pool_stream_ttfb_and_the_ttfb_check_uses_them() -> None:
    """The TTFB check of a target with rounds: mean p50 over its phases minus the baseline's (which
    streamed in every round too), against the floor's figure made the same way."""
    direct = _ok("direct-messages", stream={"ttfb_p50_ms": 0.30}, ratio_rounds=[{"ttfb_p50_ms": 0.50}])
    floor = _ok(
        "passthrough-messages",
        baseline="direct-messages",
        stream={"ttfb_p50_ms": 0.50},
        load={"rps": 100.0},
        ratio_rounds=[{"requests": 500, "seconds": 5.0, "ttfb_p50_ms": 0.70}],
    )
    gateway = _ok(
        "gateway-messages-openai",
        baseline="direct-messages",
        floor="passthrough-messages",
        stream={"ttfb_p50_ms": 0.60},
        load={"rps": 90.0},
        ratio_rounds=[{"requests": 450, "seconds": 5.0, "ttfb_p50_ms": 1.00}, {"error": "x"}],
    )
    assert pooled_ttfb(gateway) == pytest.approx(0.80)
    results = [direct, floor, gateway]
    meta = {"conns": 32, "chunks": 20, "chunk_delay_ms": 5, "memory_requests": 0}
    rows = evaluate(results, derive(results), meta, None)
    [ttfb] = [
        r
        for r in rows
        if r["figure"].startswith("stream TTFB p50 added vs direct-messages, gateway-messages-openai")
    ]
    # gateway (0.80 - 0.40) / floor (0.60 - 0.40) = 2.0
    assert ttfb["status"] == "FAIL" and ttfb["measured"].startswith("2.00")


def test_interleaved_streams_decide_the_ttfb_check_when_measured() -> None:
    """With interleaved figures for the target, its floor and their baseline, the TTFB check reads those
    (added = target - baseline, in the same interleaving), not the phases'."""
    direct = _ok("direct-messages", stream={"ttfb_p50_ms": 0.30}, interleaved={"ttfb_p50_ms": 0.35, "n": 300})
    floor = _ok(
        "passthrough-messages",
        baseline="direct-messages",
        stream={"ttfb_p50_ms": 0.50},
        load={"rps": 100.0},
        interleaved={"ttfb_p50_ms": 0.55, "n": 300},
    )
    gateway = _ok(
        "gateway-messages-openai",
        baseline="direct-messages",
        floor="passthrough-messages",
        stream={"ttfb_p50_ms": 0.90},  # phases: (0.90 - 0.30) / (0.50 - 0.30) = 3.0
        load={"rps": 90.0},
        interleaved={"ttfb_p50_ms": 0.60, "n": 300},
    )
    results = [direct, floor, gateway]
    meta = {"conns": 32, "chunks": 20, "chunk_delay_ms": 5, "memory_requests": 0}
    rows = evaluate(results, derive(results), meta, None)
    [ttfb] = [r for r in rows if r["figure"].startswith("stream TTFB p50 added vs direct-messages")]
    # interleaved: (0.60 - 0.35) / (0.55 - 0.35) = 1.25
    assert ttfb["status"] == "PASS"
    assert ttfb["measured"].startswith("1.25") and "interleaved streams" in ttfb["measured"]


async def test_interleaved_streams_take_turns_and_report_each_url() -> None:
    """One stream to each URL per round, in the order given; each URL's own figures, in that order."""
    seen: list[str] = []

    async def note(request: web.Request, response: web.StreamResponse) -> None:
        seen.append(request.path)

    mock = build_app(CHUNKS)
    mock.on_response_prepare.append(note)
    chat = json.loads(TARGETS["direct"].api.body_file.read_bytes())
    messages = json.loads(MESSAGES.body_file.read_bytes())
    async with TestServer(mock) as upstream:
        base = f"http://127.0.0.1:{upstream.port}"
        targets = [
            (base + "/v1/chat/completions", json.dumps({**chat, "stream": True}).encode()),
            (base + MESSAGES.path, json.dumps({**messages, "stream": True}).encode()),
        ]
        figures = await run_interleaved(targets, "Bearer bench", n=3, warmup=1, max_s=30)
    assert seen == ["/v1/chat/completions", "/v1/messages"] * 4
    assert [f["url"] for f in figures] == [url for url, _ in targets]
    assert [f["n"] for f in figures] == [3, 3] and all(f["ttfb_p50_ms"] > 0 for f in figures)
