"""What the built-in mock's answers share: a reply held in memory, a refusal worded as an upstream's
400, and the text arithmetic (word counts, stream pieces, digests) that keeps them deterministic and
bounded: a streamed text is cut into at most MAX_STREAM_DELTAS pieces, and words are counted a slice
at a time, so neither grows a list with the size of the body.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from gateway import json_codec
from gateway.errors import error_body

JSON_HEADERS = {"Content-Type": "application/json"}
SSE_HEADERS = {"Content-Type": "text/event-stream"}

MAX_STREAM_DELTAS = 1024  # deltas of one streamed text; the last carries the rest of it
JSON_PIECE = 16  # characters of JSON text (content or tool-call arguments) in one streamed delta
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
        return MockReply(400, JSON_HEADERS, [json_codec.dumps(error)])


def digest(value: Any) -> str:
    return hashlib.sha256(json_codec.dumps(value)).hexdigest()[:24]


def text_of(content: Any) -> str:
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


def usage(prompt: str, completion: str) -> dict[str, int]:
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


def json_pieces(text: str) -> list[str]:
    """JSON text cut every JSON_PIECE characters (compact JSON has few spaces to cut at), in at most
    MAX_STREAM_DELTAS pieces: the last one holds whatever is left."""
    count = min(MAX_STREAM_DELTAS, max(1, -(-len(text) // JSON_PIECE)))
    pieces = [text[i * JSON_PIECE : (i + 1) * JSON_PIECE] for i in range(count - 1)]
    pieces.append(text[(count - 1) * JSON_PIECE :])
    return pieces


def choice_suffix(index: int) -> str:
    """What tells the choices of one answer apart: nothing for the first, " (2)" for the second, ..."""
    return f" ({index + 1})" if index else ""


MAX_CHOICES = 16  # `n` (OpenAI allows 128; each of the mock's choices repeats the prompt)
MAX_CHOICES_CHARS = 16 * 1024 * 1024  # characters of text in all the choices of one answer


def choice_count(request: dict[str, Any], text_length: int) -> int:
    """`n`, within 1 to MAX_CHOICES and, with `n` copies of a text of `text_length` characters,
    within MAX_CHOICES_CHARS; else a 400 naming `n`."""
    n = request.get("n")
    if n is None:
        return 1
    if type(n) is float and n.is_integer():
        n = int(n)
    if type(n) is not int or not 1 <= n <= MAX_CHOICES:
        raise MockRejection(f"Invalid 'n': the mock makes 1 to {MAX_CHOICES} choices.", "n")
    if n > 1 and n * text_length > MAX_CHOICES_CHARS:
        raise MockRejection(
            f"Invalid 'n': {n} choices of a {text_length}-character answer are more than the "
            f"{MAX_CHOICES_CHARS} characters the mock writes at once.",
            "n",
        )
    return n
