"""The built-in mock upstream: OpenAI's wire format, deterministic, in process, no key needed.

It answers chat with `You said: <last user text>` (streamed word by word when asked), calls the
first offered tool (or the named one) when tools are given and the last message is not a tool
result, answers legacy completions with an echo, and embeddings with vectors derived from a hash of
the input. `make run` serves it as model `mock`, so the gateway answers out of the box.

It runs in the gateway's own process and anyone who can reach the gateway may call it, so nothing it
allocates grows with a number in the request: vectors are capped (MAX_DIMENSIONS, MAX_INPUTS,
MAX_VECTOR_VALUES in all; more is a 400 naming the field, as an upstream would answer), a streamed
echo is cut into at most MAX_STREAM_DELTAS deltas, and words are counted a slice at a time. What is
left (the echo itself) is a small multiple of the body, which `limits.max_body_bytes` bounds.
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
from gateway.errors import error_body
from gateway.framing.sse import DONE_FRAME, encode_data

_JSON = {"Content-Type": "application/json"}
_SSE = {"Content-Type": "text/event-stream"}

MAX_DIMENSIONS = 8192  # `dimensions` of one vector (OpenAI's largest model has 3072)
MAX_INPUTS = 2048  # items of `input` (OpenAI's limit)
MAX_VECTOR_VALUES = 262_144  # inputs x dimensions: about 2.5 MB of JSON and 30 ms of work
MAX_STREAM_DELTAS = 1024  # content deltas of a streamed echo; the last carries the rest of the text
_COUNT_SLICE = 65_536  # characters whose words are split at once when counting


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


class MockRejection(Exception):
    """A request the mock refuses, as an upstream would: 400 with OpenAI's error envelope."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param

    def reply(self) -> MockReply:
        error = error_body(str(self), "invalid_request_error", self.param, "invalid_value")
        return MockReply(400, _JSON, [json_codec.dumps(error)])


class MockTransport:
    @asynccontextmanager
    async def open(self, target: Target, url: str, body: bytes) -> AsyncIterator[MockReply]:
        yield respond(url, json_codec.loads(body))


def respond(url: str, request: dict[str, Any]) -> MockReply:
    try:
        if url.endswith("/embeddings"):
            return MockReply(200, _JSON, [json_codec.dumps(_embeddings(request))])
        if url.endswith("/completions") and not url.endswith("/chat/completions"):
            return _completion(request)
        return _chat(request)
    except MockRejection as rejection:
        return rejection.reply()


def _digest(value: Any) -> str:
    return hashlib.sha256(json_codec.dumps(value)).hexdigest()[:24]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def word_count(text: str) -> int:
    """`len(text.split())`, without a list of every word of a body-sized text at once: a slice at a
    time, less one for each word a slice boundary cuts in two."""
    if len(text) <= _COUNT_SLICE:
        return len(text.split())
    count = 0
    for start in range(0, len(text), _COUNT_SLICE):
        count += len(text[start : start + _COUNT_SLICE].split())
        if start and not text[start - 1].isspace() and not text[start].isspace():
            count -= 1  # one word across the boundary, counted on both sides
    return count


def _usage(prompt: str, completion: str) -> dict[str, int]:
    p, c = word_count(prompt), word_count(completion)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def stream_deltas(text: str) -> list[str]:
    """The text cut before each space (word by word, as `text.split(" ")` with the space leading
    each later word), in at most MAX_STREAM_DELTAS pieces: the last one holds whatever is left."""
    deltas: list[str] = []
    start = 0
    cut = text.find(" ")
    while cut != -1 and len(deltas) < MAX_STREAM_DELTAS - 1:
        deltas.append(text[start:cut])
        start = cut
        cut = text.find(" ", cut + 1)
    deltas.append(text[start:])
    return deltas


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
        parts += [chunk({"content": delta}) for delta in stream_deltas(text)]
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
        deltas = stream_deltas(text)
        parts = [
            encode_data(
                json_codec.dumps(
                    {
                        **base,
                        "choices": [
                            {
                                "index": 0,
                                "text": delta,
                                "logprobs": None,
                                "finish_reason": "stop" if i == len(deltas) - 1 else None,
                            }
                        ],
                    }
                )
            )
            for i, delta in enumerate(deltas)
        ]
        return MockReply(200, _SSE, [*parts, DONE_FRAME])
    body = {
        **base,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}],
        "usage": _usage(prompt_text, text),
    }
    return MockReply(200, _JSON, [json_codec.dumps(body)])


# a vector's values are hash bytes b mapped to (b - 127.5) / 127.5, rounded: 256 possible values
_VALUES = [round((b - 127.5) / 127.5, 6) for b in range(256)]


def _vector(text: str, dimensions: int) -> list[float]:
    seed = hashlib.sha256(text.encode()).digest()
    blocks = b"".join(
        hashlib.sha256(seed + counter.to_bytes(4, "little")).digest()
        for counter in range(-(-dimensions // 32))
    )
    return [_VALUES[b] for b in blocks[:dimensions]]


def _bounded_dimensions(request: dict[str, Any]) -> int:
    dimensions = request.get("dimensions")
    if dimensions is None:
        return 8
    if type(dimensions) is float and dimensions.is_integer():
        dimensions = int(dimensions)
    if type(dimensions) is not int or not 1 <= dimensions <= MAX_DIMENSIONS:
        raise MockRejection(
            f"Invalid 'dimensions': the mock makes vectors of 1 to {MAX_DIMENSIONS} dimensions.", "dimensions"
        )
    return dimensions


def _embeddings(request: dict[str, Any]) -> dict[str, Any]:
    raw = request.get("input")
    inputs = [raw] if isinstance(raw, str) else list(raw or [])
    if len(inputs) > MAX_INPUTS:
        raise MockRejection(f"Invalid 'input': the mock embeds at most {MAX_INPUTS} inputs at once.", "input")
    dimensions = _bounded_dimensions(request)
    if len(inputs) * dimensions > MAX_VECTOR_VALUES:
        raise MockRejection(
            f"Invalid 'input': {len(inputs)} inputs of {dimensions} dimensions are more than the "
            f"{MAX_VECTOR_VALUES} values the mock returns at once.",
            "input",
        )
    data = []
    for i, item in enumerate(inputs):
        vector = _vector(item if isinstance(item, str) else json_codec.dumps_str(item), dimensions)
        embedding: Any = vector
        if request.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    tokens = sum(
        word_count(i) if isinstance(i, str) else len(i) if isinstance(i, list) else 1 for i in inputs
    )
    return {
        "object": "list",
        "model": request.get("model"),
        "data": data,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
