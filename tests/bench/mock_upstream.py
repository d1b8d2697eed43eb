"""Mock LLM upstream for the gateway benchmark: precomputed bytes, no real work.

POST /v1/chat/completions  OpenAI chat.completion (~650 B); with "stream": true, CHUNKS
                           chat.completion.chunk SSE events, a usage chunk if
                           stream_options.include_usage, then "data: [DONE]".
POST /v1/messages          Anthropic Messages `message`; with "stream": true the named-event
                           stream message_start .. message_stop with CHUNKS text_delta events.
POST /v1/responses         OpenAI Responses API `response`; with "stream": true the named-event
                           stream response.created .. response.completed with CHUNKS
                           response.output_text.delta events (every event with its sequence_number).
POST /v1/embeddings        one 1536-float embedding
GET  /health               "ok"
POST /delay/{ms}/v1/...    the chat and messages endpoints again, but streams wait {ms} milliseconds
                           between events (to check that a proxy relays chunks as they arrive)

python tests/bench/mock_upstream.py --port 18001 [--chunks 20] [--no-uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from aiohttp import web

CREATED = 1732240000
OPENAI_MODEL = "gpt-4o-2024-08-06"
ANTHROPIC_MODEL = "claude-sonnet-4-5-20250929"
CHAT_ID = "chatcmpl-BENCH0123456789abcdefghijklmnopq"
MSG_ID = "msg_01BENCH0123456789abcdefgh"
RESP_ID = "resp_BENCH0123456789abcdefghijklmnop"
RESP_MSG_ID = "msg_BENCH0123456789abcdefghijklmnop"
FP = "fp_bench0001"
CONTENT = (
    "TCP is reliable and ordered; UDP is connectionless and "
    "unordered. Use TCP for web and file transfer, UDP for DNS and live video."
)
# what tests/bench/responses_request.json sends, echoed in a Response as the API does
INSTRUCTIONS = (
    "You are a helpful assistant for a network operations team. Answer briefly, precisely and in plain prose."
)
JSON_CT = "application/json"
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _pieces(n: int) -> list[str]:
    """CONTENT cut into n non-empty text pieces (words repeat when n exceeds the word count)."""
    words = CONTENT.split(" ")
    return [words[i % len(words)] + " " for i in range(n)]


CHAT_BYTES = _dumps(
    {
        "id": CHAT_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": OPENAI_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": CONTENT, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 57,
            "completion_tokens": 48,
            "total_tokens": 105,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": FP,
    }
)

MESSAGE_BYTES = _dumps(
    {
        "id": MSG_ID,
        "type": "message",
        "role": "assistant",
        "model": ANTHROPIC_MODEL,
        "content": [{"type": "text", "text": CONTENT}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 57,
            "output_tokens": 48,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    }
)


RESPONSES_USAGE = {
    "input_tokens": 57,
    "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
    "output_tokens": 48,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 105,
}


def responses_object(status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    """A Response as the API returns it for tests/bench/responses_request.json (its settings echoed)."""
    return {
        "id": RESP_ID,
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": INSTRUCTIONS,
        "max_output_tokens": 256,
        "model": OPENAI_MODEL,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 0.3,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "safety_identifier": "bench-user-0001",
        "metadata": {},
        **({"usage": RESPONSES_USAGE} if status == "completed" else {}),
    }


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _responses_message(status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "message", "id": RESP_MSG_ID, "status": status, "role": "assistant", "content": content}


RESPONSE_BYTES = _dumps(
    responses_object("completed", [_responses_message("completed", [_output_text(CONTENT)])])
)

EMBED_BYTES = _dumps(
    {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": 0,
                "embedding": [round(((i * 7919) % 2003) / 1001.5 - 1.0, 8) for i in range(1536)],
            }
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
)


def openai_chunks(n: int) -> list[bytes]:
    """n chat.completion.chunk events like OpenAI sends them: the first carries the role, the
    last is an empty delta with finish_reason."""
    deltas: list[dict[str, Any]] = [{"content": piece} for piece in _pieces(max(n - 1, 1))]
    deltas[0] = {"role": "assistant", **deltas[0]}
    if n > 1:
        deltas.append({})
    out = []
    for i, delta in enumerate(deltas):
        event = {
            "id": CHAT_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": OPENAI_MODEL,
            "system_fingerprint": FP,
            "choices": [
                {
                    "index": 0,
                    "delta": delta,
                    "logprobs": None,
                    "finish_reason": "stop" if i == n - 1 else None,
                }
            ],
        }
        out.append(b"data: " + _dumps(event) + b"\n\n")
    return out


OPENAI_USAGE_CHUNK = (
    b"data: "
    + _dumps(
        {
            "id": CHAT_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": OPENAI_MODEL,
            "system_fingerprint": FP,
            "choices": [],
            "usage": {"prompt_tokens": 57, "completion_tokens": 48, "total_tokens": 105},
        }
    )
    + b"\n\n"
)
OPENAI_DONE = b"data: [DONE]\n\n"


def _event(obj: dict[str, Any]) -> bytes:
    return b"event: " + str(obj["type"]).encode() + b"\ndata: " + _dumps(obj) + b"\n\n"


def anthropic_events(n: int) -> list[bytes]:
    """The Messages API stream for one text block of n text_delta events."""
    start: dict[str, Any] = {
        "type": "message_start",
        "message": {
            "id": MSG_ID,
            "type": "message",
            "role": "assistant",
            "model": ANTHROPIC_MODEL,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 57,
                "output_tokens": 1,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        },
    }
    events: list[dict[str, Any]] = [
        start,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        for piece in _pieces(n)
    ]
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 48},
        },
        {"type": "message_stop"},
    ]
    return [_event(e) for e in events]


def responses_events(n: int) -> list[bytes]:
    """The Responses API stream for one message of n output_text.delta events: each event named by its
    `type`, with a strictly increasing sequence_number."""
    pieces = _pieces(n)
    text = "".join(pieces)
    where = {"item_id": RESP_MSG_ID, "output_index": 0, "content_index": 0}
    done_message = _responses_message("completed", [_output_text(text)])
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": responses_object("in_progress", [])},
        {"type": "response.in_progress", "response": responses_object("in_progress", [])},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": _responses_message("in_progress", []),
        },
        {"type": "response.content_part.added", **where, "part": _output_text("")},
    ]
    events += [
        {"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []} for piece in pieces
    ]
    events += [
        {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": _output_text(text)},
        {"type": "response.output_item.done", "output_index": 0, "item": done_message},
        {"type": "response.completed", "response": responses_object("completed", [done_message])},
    ]
    return [_event({**e, "sequence_number": i}) for i, e in enumerate(events)]


def build_app(chunks: int) -> web.Application:
    try:
        import orjson

        loads: Any = orjson.loads
    except ImportError:
        loads = json.loads
    oa_chunks = openai_chunks(chunks)
    an_events = anthropic_events(chunks)
    re_events = responses_events(chunks)

    def parse(body: bytes) -> dict[str, Any] | None:
        if b'"stream"' not in body:  # cheap pre-check: most requests need no parse at all
            return {}
        try:
            obj = loads(body)
        except ValueError:
            return None
        return obj if isinstance(obj, dict) else None

    def bad_request() -> web.Response:
        return web.Response(status=400, body=b'{"error":{"message":"bad json"}}', content_type=JSON_CT)

    def delay_s(request: web.Request) -> float:
        try:
            return max(float(request.match_info.get("ms", "0")), 0.0) / 1000
        except ValueError:
            return 0.0

    async def stream(request: web.Request, parts: list[bytes]) -> web.StreamResponse:
        resp = web.StreamResponse(headers=SSE_HEADERS)
        await resp.prepare(request)
        pause = delay_s(request)
        for i, part in enumerate(parts):
            if pause and i:
                await asyncio.sleep(pause)
            await resp.write(part)
        await resp.write_eof()
        return resp

    async def chat(request: web.Request) -> web.StreamResponse:
        obj = parse(await request.read())
        if obj is None:
            return bad_request()
        if not obj.get("stream"):
            return web.Response(body=CHAT_BYTES, content_type=JSON_CT)
        usage = bool((obj.get("stream_options") or {}).get("include_usage"))
        return await stream(request, [*oa_chunks, *([OPENAI_USAGE_CHUNK] if usage else []), OPENAI_DONE])

    async def messages(request: web.Request) -> web.StreamResponse:
        obj = parse(await request.read())
        if obj is None:
            return bad_request()
        if not obj.get("stream"):
            return web.Response(body=MESSAGE_BYTES, content_type=JSON_CT)
        return await stream(request, an_events)

    async def responses(request: web.Request) -> web.StreamResponse:
        obj = parse(await request.read())
        if obj is None:
            return bad_request()
        if not obj.get("stream"):
            return web.Response(body=RESPONSE_BYTES, content_type=JSON_CT)
        return await stream(request, re_events)

    async def embeddings(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=EMBED_BYTES, content_type=JSON_CT)

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/responses", responses)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/delay/{ms}/v1/chat/completions", chat)
    app.router.add_post("/delay/{ms}/v1/messages", messages)
    app.router.add_post("/delay/{ms}/v1/responses", responses)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18001)
    ap.add_argument("--chunks", type=int, default=20, help="content events per streamed answer (default 20)")
    ap.add_argument("--no-uvloop", action="store_true")
    args = ap.parse_args()
    loop = "asyncio"
    if not args.no_uvloop:
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            loop = "uvloop"
        except ImportError:
            pass
    print(f"mock_upstream: http://{args.host}:{args.port} loop={loop} chunks={args.chunks}", flush=True)
    web.run_app(
        build_app(args.chunks), host=args.host, port=args.port, access_log=None, print=None, backlog=4096
    )


if __name__ == "__main__":
    main()
