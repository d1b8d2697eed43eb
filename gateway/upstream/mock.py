"""The built-in mock upstream: OpenAI's wire format, deterministic, in process, no key needed.

It answers chat (mock_chat: echoes, tool calls and legacy function calls with arguments valid against
their schema, structured output, `n` choices, streams of each), legacy completions with an echo (`n`
choices of it), and embeddings with vectors derived from a hash of the input. `make run` serves it as
model `mock`, so the gateway answers out of the box.

It runs in the gateway's own process and anyone who can reach the gateway may call it, so nothing it
allocates grows with a number in the request: vectors are capped (MAX_DIMENSIONS, MAX_INPUTS,
MAX_VECTOR_VALUES in all; more is a 400 naming the field, as an upstream would answer), a streamed
echo is cut into at most MAX_STREAM_DELTAS deltas, words are counted a slice at a time, `n` and the
text of all choices are capped (MAX_CHOICES, MAX_CHOICES_CHARS), and a value made for a schema is
bounded in depth, size and work (schema_instance). What is left (the echo itself) is a small multiple
of the body, which `limits.max_body_bytes` bounds.
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
from gateway.upstream.mock_chat import chat
from gateway.upstream.mock_reply import (
    JSON_HEADERS,
    MAX_CHOICES,
    MAX_CHOICES_CHARS,
    MAX_STREAM_DELTAS,
    SSE_HEADERS,
    MockRejection,
    MockReply,
    choice_count,
    choice_suffix,
    digest,
    stream_deltas,
    usage,
    word_count,
)

__all__ = ["MAX_CHOICES", "MAX_CHOICES_CHARS", "MAX_STREAM_DELTAS", "MockReply", "MockTransport", "respond"]

MAX_DIMENSIONS = 8192  # `dimensions` of one vector (OpenAI's largest model has 3072)
MAX_INPUTS = 2048  # items of `input` (OpenAI's limit)
MAX_VECTOR_VALUES = 262_144  # inputs x dimensions: about 2.5 MB of JSON and 30 ms of work


class MockTransport:
    @asynccontextmanager
    async def open(
        self, target: Target, url: str, body: bytes, extra_headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[MockReply]:
        yield respond(url, json_codec.loads(body))


def respond(url: str, request: dict[str, Any]) -> MockReply:
    try:
        if url.endswith("/embeddings"):
            return MockReply(200, JSON_HEADERS, [json_codec.dumps(_embeddings(request))])
        if url.endswith("/completions") and not url.endswith("/chat/completions"):
            return _completion(request)
        return chat(request)
    except MockRejection as rejection:
        return rejection.reply()


def _completion(request: dict[str, Any]) -> MockReply:
    prompt = request.get("prompt")
    prompt_list = prompt if isinstance(prompt, list) else []
    prompt_text = (
        prompt if isinstance(prompt, str) else " ".join(p for p in prompt_list if isinstance(p, str))
    )
    text = " You said: " + prompt_text
    texts = [text + choice_suffix(i) for i in range(choice_count(request, len(text)))]
    base = {
        "id": "cmpl-mock-" + digest(prompt),
        "object": "text_completion",
        "created": int(time.time()),
        "model": request.get("model"),
    }
    if request.get("stream"):
        lanes = [stream_deltas(t) for t in texts]
        parts = [
            encode_data(json_codec.dumps({**base, "choices": [_completion_choice(index, lane, step)]}))
            for step in range(max(len(lane) for lane in lanes))
            for index, lane in enumerate(lanes)
            if step < len(lane)
        ]
        options = request.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):  # as OpenAI: a last choices [] chunk
            counted = usage(prompt_text, " ".join(texts))
            parts.append(encode_data(json_codec.dumps({**base, "choices": [], "usage": counted})))
        return MockReply(200, SSE_HEADERS, [*parts, DONE_FRAME])
    body = {
        **base,
        "choices": [
            {"index": i, "text": t, "logprobs": None, "finish_reason": "stop"} for i, t in enumerate(texts)
        ],
        "usage": usage(prompt_text, " ".join(texts)),
    }
    return MockReply(200, JSON_HEADERS, [json_codec.dumps(body)])


def _completion_choice(index: int, deltas: list[str], step: int) -> dict[str, Any]:
    finish = "stop" if step == len(deltas) - 1 else None
    return {"index": index, "text": deltas[step], "logprobs": None, "finish_reason": finish}


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
    inputs = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
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
