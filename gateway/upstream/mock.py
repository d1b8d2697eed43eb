"""The built-in mock upstream: OpenAI's wire format, deterministic, in process, no key needed.

It answers chat with `You said: <last user text>` (streamed word by word when asked), calls the
first offered tool (or the named one) when tools are given and the last message is not a tool
result, answers legacy completions with an echo, and embeddings with vectors derived from a hash of
the input. `make run` serves it as model `mock`, so the gateway answers out of the box.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from gateway import json_codec
from gateway.engine.registry import Target
from gateway.framing.sse import DONE_FRAME, encode_data

_JSON = {"Content-Type": "application/json"}
_SSE = {"Content-Type": "text/event-stream"}


class MockReply:
    """A reply held in memory: the built-in mock's, and any test's recorded upstream reply."""

    __slots__ = ("_parts", "headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str], parts: list[bytes]) -> None:
        self.status = status
        self.headers = headers
        self._parts = parts

    async def read(self) -> bytes:
        return b"".join(self._parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        for part in self._parts:
            yield part

    def abort(self) -> None:
        self._parts = []


class MockTransport:
    @asynccontextmanager
    async def open(self, target: Target, url: str, body: bytes) -> AsyncIterator[MockReply]:
        yield respond(url, json_codec.loads(body))


def respond(url: str, request: dict[str, Any]) -> MockReply:
    if url.endswith("/embeddings"):
        return MockReply(200, _JSON, [json_codec.dumps(_embeddings(request))])
    if url.endswith("/completions") and not url.endswith("/chat/completions"):
        return _completion(request)
    return _chat(request)


def _digest(value: Any) -> str:
    return hashlib.sha256(json_codec.dumps(value)).hexdigest()[:24]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _usage(prompt: str, completion: str) -> dict[str, int]:
    p, c = len(prompt.split()), len(completion.split())
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _tool_call(request: dict[str, Any]) -> dict[str, Any] | None:
    tools = [t for t in request.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
    messages = request.get("messages") or []
    choice = request.get("tool_choice", "auto")
    if not tools or choice == "none" or (messages and messages[-1].get("role") == "tool"):
        return None
    name = tools[0]["function"]["name"]
    if isinstance(choice, dict):
        name = choice.get("function", {}).get("name", name)
    return {
        "id": "call_" + _digest(messages)[:16],
        "type": "function",
        "function": {"name": name, "arguments": "{}"},
    }


def _chat(request: dict[str, Any]) -> MockReply:
    messages = request.get("messages") or []
    last = messages[-1] if messages else {}
    prompt = " ".join(_text_of(m.get("content")) for m in messages if isinstance(m, dict))
    if last.get("role") == "tool":
        text = "Tool result: " + _text_of(last.get("content"))
    else:
        text = "You said: " + _text_of(last.get("content"))
    call = _tool_call(request)
    base = {
        "id": "chatcmpl-mock-" + _digest(messages),
        "created": int(time.time()),
        "model": request.get("model"),
    }
    usage = _usage(prompt, "" if call else text)
    if request.get("stream"):
        return MockReply(200, _SSE, _chat_stream(base, text, call, usage, request))
    message: dict[str, Any] = {"role": "assistant", "content": None if call else text, "refusal": None}
    if call:
        message["tool_calls"] = [call]
    body = {
        **base,
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if call else "stop",
            }
        ],
        "usage": usage,
    }
    return MockReply(200, _JSON, [json_codec.dumps(body)])


def _chat_stream(
    base: dict[str, Any],
    text: str,
    call: dict[str, Any] | None,
    usage: dict[str, int],
    request: dict[str, Any],
) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return encode_data(json_codec.dumps({**base, "object": "chat.completion.chunk", "choices": [choice]}))

    parts = [chunk({"role": "assistant", "content": ""})]
    if call:
        head = {
            "index": 0,
            "id": call["id"],
            "type": "function",
            "function": {**call["function"], "arguments": ""},
        }
        parts.append(chunk({"tool_calls": [head]}))
        parts.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}))
    else:
        words = text.split(" ")
        parts += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
    parts.append(chunk({}, "tool_calls" if call else "stop"))
    if (request.get("stream_options") or {}).get("include_usage"):
        usage_chunk = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
        parts.append(encode_data(json_codec.dumps(usage_chunk)))
    parts.append(DONE_FRAME)
    return parts


def _completion(request: dict[str, Any]) -> MockReply:
    prompt = request.get("prompt")
    prompt_text = (
        prompt if isinstance(prompt, str) else " ".join(p for p in prompt or [] if isinstance(p, str))
    )
    text = " You said: " + prompt_text
    base = {
        "id": "cmpl-mock-" + _digest(prompt),
        "object": "text_completion",
        "created": int(time.time()),
        "model": request.get("model"),
    }
    if request.get("stream"):
        words = text.split(" ")
        parts = [
            encode_data(
                json_codec.dumps(
                    {
                        **base,
                        "choices": [
                            {
                                "index": 0,
                                "text": (" " if i else "") + w,
                                "logprobs": None,
                                "finish_reason": "stop" if i == len(words) - 1 else None,
                            }
                        ],
                    }
                )
            )
            for i, w in enumerate(words)
        ]
        return MockReply(200, _SSE, [*parts, DONE_FRAME])
    body = {
        **base,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}],
        "usage": _usage(prompt_text, text),
    }
    return MockReply(200, _JSON, [json_codec.dumps(body)])


def _vector(text: str, dimensions: int) -> list[float]:
    seed = hashlib.sha256(text.encode()).digest()
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        block = hashlib.sha256(seed + counter.to_bytes(4, "little")).digest()
        values += [(b - 127.5) / 127.5 for b in block]
        counter += 1
    return [round(v, 6) for v in values[:dimensions]]


def _embeddings(request: dict[str, Any]) -> dict[str, Any]:
    raw = request.get("input")
    inputs = [raw] if isinstance(raw, str) else list(raw or [])
    dimensions = int(request.get("dimensions") or 8)
    data = []
    for i, item in enumerate(inputs):
        vector = _vector(item if isinstance(item, str) else json_codec.dumps_str(item), dimensions)
        embedding: Any = vector
        if request.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    tokens = sum(len(str(i).split()) for i in inputs)
    return {
        "object": "list",
        "model": request.get("model"),
        "data": data,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
