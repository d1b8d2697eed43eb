"""A fake Cohere API v2 upstream: POST /v2/chat (JSON, or SSE with named events when `"stream": true`)
and POST /v2/embed, in Cohere's real wire format (see ../shared/providers/cohere.md).

Built on FakeUpstream: it records every request and replies with what a test queued, else with a
plausible default built from the request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tests.support.fake_upstreams import FakeUpstream, Part, Recorded, Reply, dumps, json_reply, split_text

CHAT_ID = "c14c80c3-18eb-4519-9460-6c92edd8cfb4"
STREAM_ID = "29f14a5a-11de-4cae-9800-25e4747408ea"
EMBED_ID = "5807ee2e-0cda-445a-9ec8-864c60a06606"


def cohere_usage(
    billed_in: int = 36, billed_out: int = 11, tokens_in: int = 901, tokens_out: int = 13, cached: int = 0
) -> dict[str, Any]:
    return {
        "billed_units": {"input_tokens": billed_in, "output_tokens": billed_out},
        "tokens": {"input_tokens": tokens_in, "output_tokens": tokens_out},
        "cached_tokens": cached,
    }


def cohere_tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def cohere_chat(
    text: str | None = "Hello from the fake Cohere upstream.",
    *,
    tool_plan: str | None = None,
    tool_calls: Sequence[dict[str, Any]] = (),
    thinking: str | None = None,
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    response_id: str = CHAT_ID,
) -> dict[str, Any]:
    """A /v2/chat response: content blocks (thinking, text), or a tool plan with tool calls."""
    message: dict[str, Any] = {"role": "assistant"}
    content = []
    if thinking is not None:
        content.append({"type": "thinking", "thinking": thinking})
    if text is not None:
        content.append({"type": "text", "text": text})
    if content:
        message["content"] = content
    if tool_plan is not None:
        message["tool_plan"] = tool_plan
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    return {
        "id": response_id,
        "finish_reason": finish_reason or ("TOOL_CALL" if tool_calls else "COMPLETE"),
        "message": message,
        "usage": usage or cohere_usage(),
    }


def cohere_event(name: str, data: Mapping[str, Any]) -> bytes:
    """One SSE event as Cohere sends it: `event:` name, and the same name as the data's `type`."""
    return f"event: {name}\ndata: ".encode() + dumps({"type": name, **data}) + b"\n\n"


def cohere_stream(
    pieces: Sequence[str] = ("Hello", " from", " the", " fake", " stream."),
    *,
    tool_plan: Sequence[str] = (),
    tool_calls: Sequence[dict[str, Any]] = (),
    argument_pieces: int = 3,
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    error: str | None = None,
    response_id: str = STREAM_ID,
    complete: bool = True,
) -> list[Part]:
    """A /v2/chat stream: message-start, tool-plan deltas, a text content block (when `pieces`), each
    tool call as tool-call-start / argument deltas / tool-call-end, a citation pair, message-end.
    `complete=False` stops before message-end (a truncated stream); `error` sets message-end's error."""
    parts: list[Part] = [
        cohere_event(
            "message-start",
            {
                "id": response_id,
                "delta": {
                    "message": {
                        "role": "assistant",
                        "content": [],
                        "tool_plan": "",
                        "tool_calls": [],
                        "citations": [],
                    }
                },
            },
        )
    ]
    for piece in tool_plan:
        parts.append(cohere_event("tool-plan-delta", {"delta": {"message": {"tool_plan": piece}}}))
    if pieces:
        start = {"index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}
        parts.append(cohere_event("content-start", start))
        for piece in pieces:
            delta = {"index": 0, "delta": {"message": {"content": {"text": piece}}}}
            parts.append(cohere_event("content-delta", delta))
        parts.append(cohere_event("content-end", {"index": 0}))
    for index, call in enumerate(tool_calls):
        head = {**call, "function": {**call["function"], "arguments": ""}}
        parts.append(
            cohere_event("tool-call-start", {"index": index, "delta": {"message": {"tool_calls": head}}})
        )
        for fragment in split_text(call["function"]["arguments"], argument_pieces):
            fragment_delta = {"message": {"tool_calls": {"function": {"arguments": fragment}}}}
            parts.append(cohere_event("tool-call-delta", {"index": index, "delta": fragment_delta}))
        parts.append(cohere_event("tool-call-end", {"index": index}))
    parts.append(cohere_event("citation-start", {"index": 0, "delta": {"message": {"citations": {}}}}))
    parts.append(cohere_event("citation-end", {"index": 0}))
    if not complete:
        return parts
    delta: dict[str, Any] = {
        "finish_reason": finish_reason or ("TOOL_CALL" if tool_calls else "COMPLETE"),
        "usage": usage or cohere_usage(),
    }
    if error is not None:
        delta["error"] = error
    parts.append(cohere_event("message-end", {"delta": delta}))
    return parts


def cohere_sse_reply(parts: Sequence[Part], headers: Mapping[str, str] | None = None) -> Reply:
    base = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    return Reply(200, {**base, **(headers or {})}, list(parts), stream=True)


def cohere_embed(texts: Sequence[str], dimensions: int = 4, input_tokens: int = 6) -> dict[str, Any]:
    vectors = [[round(0.1 * (i + 1) * (d + 1), 3) for d in range(dimensions)] for i, _ in enumerate(texts)]
    return {
        "id": EMBED_ID,
        "response_type": "embeddings_by_type",
        "embeddings": {"float": vectors},
        "texts": list(texts),
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": input_tokens}},
    }


def cohere_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    return json_reply({"id": "err-fake-0001", "message": message}, status, headers)


class FakeCohere(FakeUpstream):
    name = "fake-cohere"

    def default(self, rec: Recorded) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        if rec.path == "/v2/chat":
            if body.get("stream") is True:
                return cohere_sse_reply(cohere_stream())
            return json_reply(cohere_chat())
        if rec.path == "/v2/embed":
            texts = body.get("texts") or []
            return json_reply(cohere_embed(texts, dimensions=body.get("output_dimension") or 4))
        return cohere_error(404, f"route not found: {rec.path}")
