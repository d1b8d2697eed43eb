"""Fake upstream providers that speak the real wire formats and record what they received.

`FakeOpenAI` answers POST /v1/chat/completions, /v1/completions and /v1/embeddings like api.openai.com;
`FakeAnthropic` answers POST /v1/messages like api.anthropic.com (named SSE events when streaming).
Each fake records every request (method, path, headers, raw and parsed body) so a test can assert on
exactly what the gateway sent, and replies with whatever a test queued (`enqueue`) or, when nothing is
queued, with a plausible default built from the request.

A reply is a status, headers and a list of parts. A part is bytes or a `Gate`: when the fake reaches a
gate it waits until the test sets it, so a test can hold a stream open (or never answer) and decide
when it continues. Every gate a fake hands out is released by `reset()`, so no handler outlives a test.
When the gateway goes away while a reply is pending, the request's `closed` gate is set (the servers
run with `handler_cancellation=True`, so a vanished client cancels the handler).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

from tests.support.gates import Gate
from tests.support.servers import ServerThread

HOLD_TIMEOUT = 30.0  # a held reply continues after this long even if the test never released it

OPENAI_MODEL = "gpt-4o-2024-08-06"
ANTHROPIC_MODEL = "claude-sonnet-4-5-20250929"
CREATED = 1_732_240_000


class Abort:
    """A stream part: drop the connection right here (no end of the chunked body), like a crashed upstream."""

    def __repr__(self) -> str:
        return "ABORT"


ABORT = Abort()

Part = bytes | Gate | Abort


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class Recorded:
    """One request a fake received."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # names lower-cased
    raw: bytes
    json: Any  # the parsed body, or None when it was not JSON
    closed: Gate = field(default_factory=lambda: Gate("upstream request closed by the gateway"))
    finished: Gate = field(default_factory=lambda: Gate("upstream reply fully written"))


@dataclass
class Reply:
    """What a fake sends back. `stream=True` sends the headers at once and flushes each part."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    parts: Sequence[Part] = ()
    stream: bool = False

    @property
    def body(self) -> bytes:
        return b"".join(p for p in self.parts if isinstance(p, bytes))


Responder = Reply | Callable[[Recorded], Reply]


def json_reply(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, {"Content-Type": "application/json", **(headers or {})}, [dumps(obj)])


def sse_reply(parts: Sequence[Part], headers: Mapping[str, str] | None = None) -> Reply:
    sse_headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    return Reply(200, {**sse_headers, **(headers or {})}, list(parts), stream=True)


def rechunk(parts: Sequence[Part], size: int, *, crlf: bool = False) -> list[Part]:
    """The same bytes cut into `size`-byte writes regardless of event (or UTF-8) boundaries; gates and
    aborts stay where they were. `crlf` switches the line endings to \\r\\n."""
    out: list[Part] = []
    pending = b""
    for part in [*parts, None]:
        if isinstance(part, bytes):
            pending += part.replace(b"\n", b"\r\n") if crlf else part
            continue
        out += [pending[i : i + size] for i in range(0, len(pending), size)]
        pending = b""
        if part is not None:
            out.append(part)
    return out


def held_reply(gate: Gate, then: Reply | None = None) -> Reply:
    """Wait for `gate` before sending anything (with no `then`: an empty 200 after release)."""
    after = then or json_reply({})
    return Reply(after.status, after.headers, [gate, *after.parts], stream=False)


class FakeUpstream:
    """Records requests, replies from a queue, else from `default()`."""

    name = "fake"

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._queue: deque[Responder] = deque()
        self._lock = threading.Lock()
        self._gates: list[Gate] = []
        self._arrivals: dict[int, Gate] = {}
        self.server: ServerThread | None = None

    # ---- lifecycle -------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    def serve(self) -> Self:
        self.server = ServerThread(self.app, name=self.name).start()
        return self

    def close(self) -> None:
        self.reset()
        if self.server is not None:
            self.server.stop()
            self.server = None

    @property
    def url(self) -> str:
        assert self.server is not None, f"{self.name} is not serving"
        return self.server.url

    def reset(self) -> None:
        """Forget requests and queued replies; release every gate handed out (held handlers finish)."""
        with self._lock:
            gates, self._gates = self._gates, []
            self._queue.clear()
            self.requests = []
            self._arrivals = {}
        for gate in gates:
            gate.set()

    # ---- programming replies -----------------------------------------------------------------------
    def enqueue(self, *replies: Responder) -> None:
        """Replies for the next requests, in order (a callable gets the Recorded request)."""
        with self._lock:
            self._queue.extend(replies)

    def gate(self, name: str = "release") -> Gate:
        """A gate for a reply's parts; reset() sets it if the test did not."""
        gate = Gate(f"{self.name}: {name}")
        with self._lock:
            self._gates.append(gate)
        return gate

    def arrived(self, count: int = 1) -> Gate:
        """A gate set once `count` requests have arrived in total (since the last reset)."""
        with self._lock:
            gate = self._arrivals.setdefault(count, Gate(f"{self.name}: request #{count} arrived"))
            if len(self.requests) >= count:
                gate.set()
        return gate

    def only(self) -> Recorded:
        """The one request received; fails if there were none or several."""
        assert len(self.requests) == 1, f"{self.name} received {len(self.requests)} requests, expected 1"
        return self.requests[0]

    def default(self, rec: Recorded) -> Reply:
        return json_reply({"error": "no reply programmed"}, status=500)

    # ---- serving ---------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        rec = Recorded(
            method=request.method,
            path=request.path,
            query=request.query_string,
            headers={k.lower(): v for k, v in request.headers.items()},
            raw=raw,
            json=parsed,
        )
        with self._lock:
            self.requests.append(rec)
            count = len(self.requests)
            responder = self._queue.popleft() if self._queue else None
            arrived = [g for n, g in self._arrivals.items() if n <= count]
        for gate in arrived:
            gate.set()
        if responder is None:
            reply = self.default(rec)
        elif isinstance(responder, Reply):
            reply = responder
        else:
            reply = responder(rec)
        try:
            return await self._send(request, reply, rec)
        except (asyncio.CancelledError, ConnectionResetError):
            rec.closed.set()
            raise

    async def _send(self, request: web.Request, reply: Reply, rec: Recorded) -> web.StreamResponse:
        if not reply.stream:
            for part in reply.parts:
                if isinstance(part, Gate):
                    await part.wait(HOLD_TIMEOUT)
            rec.finished.set()
            return web.Response(status=reply.status, headers=reply.headers, body=reply.body)
        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        await response.prepare(request)
        for part in reply.parts:
            if isinstance(part, Gate):
                await part.wait(HOLD_TIMEOUT)
            elif isinstance(part, Abort):
                assert request.transport is not None
                request.transport.abort()
                return response
            else:
                await response.write(part)
        await response.write_eof()
        rec.finished.set()
        return response


# =================================================================================================
# OpenAI wire format
# =================================================================================================

DONE = b"data: [DONE]\n\n"


def openai_sse(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


def openai_usage(prompt: int = 12, completion: int = 7, cached: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def openai_tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def openai_chat_completion(
    model: str = OPENAI_MODEL,
    content: str | None = "Hello from the fake OpenAI upstream.",
    *,
    tool_calls: Sequence[dict[str, Any]] = (),
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    completion_id: str = "chatcmpl-fake0001",
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
            }
        ],
        "usage": usage or openai_usage(),
        "service_tier": "default",
        "system_fingerprint": "fp_fake0001",
    }


def openai_chat_chunks(
    model: str = OPENAI_MODEL,
    pieces: Sequence[str] = ("Hello", " from", " the", " fake", " stream."),
    *,
    tool_calls: Sequence[dict[str, Any]] = (),
    argument_pieces: int = 3,
    include_usage: bool = False,
    usage: dict[str, Any] | None = None,
    completion_id: str = "chatcmpl-fakestream01",
    done: bool = True,
) -> list[Part]:
    """A complete chat stream as OpenAI sends it: role chunk, content or tool-call chunks (index, id and
    name first, then argument fragments), a finish chunk, the usage chunk when asked, then [DONE]."""
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": "fp_fake0001",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return openai_sse({**base, "choices": [choice], **({"usage": None} if include_usage else {})})

    parts: list[Part] = [
        chunk({"role": "assistant", "content": "" if not tool_calls else None, "refusal": None})
    ]
    if tool_calls:
        for index, call in enumerate(tool_calls):
            head = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            parts.append(chunk({"tool_calls": [head]}))
            for fragment in split_text(call["function"]["arguments"], argument_pieces):
                parts.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}))
    else:
        parts += [chunk({"content": piece}) for piece in pieces]
    parts.append(chunk({}, "tool_calls" if tool_calls else "stop"))
    if include_usage:
        parts.append(openai_sse({**base, "choices": [], "usage": usage or openai_usage()}))
    if done:
        parts.append(DONE)
    return parts


def split_text(text: str, pieces: int) -> list[str]:
    """`text` cut into at most `pieces` non-empty consecutive fragments."""
    if not text:
        return []
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)]


def openai_completion(model: str = "gpt-3.5-turbo-instruct", text: str = " and so on.") -> dict[str, Any]:
    return {
        "id": "cmpl-fake0001",
        "object": "text_completion",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }


def openai_completion_chunks(
    model: str = "gpt-3.5-turbo-instruct", pieces: Sequence[str] = (" and", " so", " on.")
) -> list[Part]:
    parts: list[Part] = []
    for i, piece in enumerate(pieces):
        finish = "stop" if i == len(pieces) - 1 else None
        parts.append(
            openai_sse(
                {
                    "id": "cmpl-fakestream01",
                    "object": "text_completion",
                    "created": CREATED,
                    "model": model,
                    "choices": [{"index": 0, "text": piece, "logprobs": None, "finish_reason": finish}],
                }
            )
        )
    return [*parts, DONE]


def openai_embeddings(model: str, inputs: Iterable[Any], dimensions: int = 4) -> dict[str, Any]:
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": [round(0.1 * (i + 1) * (d + 1), 3) for d in range(dimensions)],
        }
        for i, _ in enumerate(inputs)
    ]
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": 5, "total_tokens": 5}}


def openai_error(
    status: int,
    message: str,
    type_: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return json_reply(body, status, {"x-request-id": "req_fakeopenai", **(headers or {})})


class FakeOpenAI(FakeUpstream):
    name = "fake-openai"

    def default(self, rec: Recorded) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        model = body.get("model", OPENAI_MODEL)
        stream = body.get("stream") is True
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if rec.path == "/v1/chat/completions":
            if stream:
                return sse_reply(openai_chat_chunks(model, include_usage=include_usage))
            return json_reply(openai_chat_completion(model))
        if rec.path == "/v1/completions":
            return (
                sse_reply(openai_completion_chunks(model)) if stream else json_reply(openai_completion(model))
            )
        if rec.path == "/v1/embeddings":
            raw = body.get("input")
            return json_reply(openai_embeddings(model, [raw] if isinstance(raw, str) else raw or []))
        return openai_error(404, f"Invalid URL (POST {rec.path})", "invalid_request_error")


# =================================================================================================
# Anthropic wire format
# =================================================================================================


def anthropic_event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: ".encode() + dumps(data) + b"\n\n"


def anthropic_usage(
    input_tokens: int = 25, output_tokens: int = 9, cache_creation: int = 0, cache_read: int = 0
) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
        "cache_creation": {"ephemeral_5m_input_tokens": cache_creation, "ephemeral_1h_input_tokens": 0},
        "service_tier": "standard",
    }


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def tool_use_block(block_id: str, name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": block_id, "name": name, "input": tool_input}


def anthropic_message(
    model: str = ANTHROPIC_MODEL,
    content: Sequence[dict[str, Any]] = (text_block("Hello from the fake Anthropic upstream."),),
    *,
    stop_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    message_id: str = "msg_01FAKE",
) -> dict[str, Any]:
    has_tools = any(block.get("type") == "tool_use" for block in content)
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(content),
        "stop_reason": stop_reason or ("tool_use" if has_tools else "end_turn"),
        "stop_sequence": None,
        "usage": usage or anthropic_usage(),
    }


def anthropic_stream(
    model: str = ANTHROPIC_MODEL,
    pieces: Sequence[str] = ("Hello", " from", " the", " fake", " stream."),
    *,
    tool_calls: Sequence[dict[str, Any]] = (),
    argument_pieces: int = 3,
    stop_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    message_id: str = "msg_01FAKESTREAM",
    complete: bool = True,
) -> list[Part]:
    """A Messages stream as Anthropic sends it: message_start, a text block (when `pieces`), one tool_use
    block per tool call (input as input_json_delta fragments, starting with an empty one as Anthropic
    does), pings, message_delta with the stop reason and cumulative usage, message_stop.
    `tool_calls` are tool_use blocks. `complete=False` stops before message_delta (a truncated stream)."""
    usage = usage or anthropic_usage()
    start_usage = {**usage, "output_tokens": 1}
    parts: list[Part] = [
        anthropic_event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        ),
        anthropic_event("ping", {"type": "ping"}),
    ]
    index = itertools.count()
    if pieces:
        i = next(index)
        parts.append(
            anthropic_event(
                "content_block_start",
                {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}},
            )
        )
        for piece in pieces:
            parts.append(
                anthropic_event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
            )
        parts.append(anthropic_event("content_block_stop", {"type": "content_block_stop", "index": i}))
    for call in tool_calls:
        i = next(index)
        parts.append(
            anthropic_event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": i,
                    "content_block": {
                        "type": "tool_use",
                        "id": call["id"],
                        "name": call["name"],
                        "input": {},
                    },
                },
            )
        )
        arguments = json.dumps(call["input"])
        for fragment in ["", *split_text(arguments, argument_pieces)]:
            parts.append(
                anthropic_event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "input_json_delta", "partial_json": fragment},
                    },
                )
            )
        parts.append(anthropic_event("ping", {"type": "ping"}))
        parts.append(anthropic_event("content_block_stop", {"type": "content_block_stop", "index": i}))
    if not complete:
        return parts
    parts.append(
        anthropic_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": stop_reason or ("tool_use" if tool_calls else "end_turn"),
                    "stop_sequence": None,
                },
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
    )
    parts.append(anthropic_event("message_stop", {"type": "message_stop"}))
    return parts


def anthropic_stream_error(error_type: str = "overloaded_error", message: str = "Overloaded") -> bytes:
    return anthropic_event("error", {"type": "error", "error": {"type": error_type, "message": message}})


def anthropic_error(
    status: int, error_type: str, message: str, headers: Mapping[str, str] | None = None
) -> Reply:
    body = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_011FAKE"}
    return json_reply(body, status, {"request-id": "req_011FAKE", **(headers or {})})


class FakeAnthropic(FakeUpstream):
    name = "fake-anthropic"

    def default(self, rec: Recorded) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        if rec.path != "/v1/messages":
            return anthropic_error(404, "not_found_error", f"Not found: {rec.path}")
        model = body.get("model", ANTHROPIC_MODEL)
        if body.get("stream") is True:
            return sse_reply(anthropic_stream(model), {"request-id": "req_011FAKE"})
        return json_reply(anthropic_message(model), headers={"request-id": "req_011FAKE"})
