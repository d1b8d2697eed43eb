"""A Responses-native upstream for the SDK tests: what FakeOpenAI answers on POST /v1/responses when
told to (`fake.enqueue(native_reply(...))`), a `Response` or its stream as api.openai.com sends them
(named SSE events, strictly increasing `sequence_number`, no [DONE]), with fields a translation would
not produce (an `x_vendor_extra` member, encrypted reasoning) so that a relay that rewrote the bytes
shows."""

from __future__ import annotations

import json
from typing import Any

from tests.support.fake_upstreams import Recorded, Reply, dumps, json_reply, sse_reply

NATIVE_TEXT = "Hello from the fake Responses upstream."
ENCRYPTED = "gAAAAB-native-encrypted-reasoning=="


def _response(rec: Recorded, output: list[dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    body = rec.json if isinstance(rec.json, dict) else {}
    return {
        "id": "resp_native0123456789",
        "object": "response",
        "created_at": 1796459075,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model"),
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": 1.0,
        "truncation": "disabled",
        "metadata": {},
        "usage": {
            "input_tokens": 11,
            "input_tokens_details": {"cached_tokens": 3, "cache_write_tokens": 0},
            "output_tokens": 6,
            "output_tokens_details": {"reasoning_tokens": 2},
            "total_tokens": 17,
        },
        "x_vendor_extra": {"kept": True},
    }


def _items(calls: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    reasoning = {"id": "rs_native01", "type": "reasoning", "summary": [], "encrypted_content": ENCRYPTED}
    if calls:
        return [reasoning] + [
            {
                "type": "function_call",
                "id": f"fc_native{i}",
                "call_id": f"call_native{i}",
                "name": name,
                "arguments": json.dumps(args),
                "status": "completed",
            }
            for i, (name, args) in enumerate(calls)
        ]
    text = {"type": "output_text", "text": NATIVE_TEXT, "annotations": [], "logprobs": []}
    message = {"id": "msg_native01", "type": "message", "status": "completed", "role": "assistant"}
    return [reasoning, {**message, "content": [text]}]


def _event(events: list[bytes], kind: str, **data: Any) -> None:
    events.append(
        f"event: {kind}\n".encode()
        + b"data: "
        + dumps({"type": kind, **data, "sequence_number": len(events)})
        + b"\n\n"
    )


def native_reply(calls: list[tuple[str, dict[str, Any]]] | None = None) -> Any:
    """A responder: the Response (or, when asked to stream, its events) saying NATIVE_TEXT, or calling
    `calls` (name, arguments) after an encrypted reasoning item."""

    def respond(rec: Recorded) -> Reply:
        items = _items(calls or [])
        done = _response(rec, items)
        if not (isinstance(rec.json, dict) and rec.json.get("stream") is True):
            return json_reply(done)
        events: list[bytes] = []
        _event(
            events,
            "response.created",
            response={
                **{k: v for k, v in done.items() if k != "usage"},
                "status": "in_progress",
                "output": [],
            },
        )
        for index, item in enumerate(items):
            _event(events, "response.output_item.added", output_index=index, item=item)
            if item["type"] == "message":
                part = item["content"][0]
                _event(
                    events,
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    delta=part["text"],
                    logprobs=[],
                )
            _event(events, "response.output_item.done", output_index=index, item=item)
        _event(events, "response.completed", response=done)
        return sse_reply(events)

    return respond
