"""A fake Google Gemini API (generativelanguage.googleapis.com/v1beta) speaking its real wire format.

`FakeGemini` answers, under `/v1beta`:
- `POST /models/{model}:generateContent` with a GenerateContentResponse;
- `POST /models/{model}:streamGenerateContent?alt=sse` with SSE `data:` chunks (no event names, no
  [DONE]: the stream ends when the connection closes), each a whole GenerateContentResponse holding only
  the new parts;
- `POST /models/{model}:batchEmbedContents` with one vector per request item;
- anything else: a google.rpc error (404 NOT_FOUND).

It records every request like the other fakes (tests.support.fake_upstreams) and replies with what a
test queued, else with a default built from the request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tests.support.fake_upstreams import FakeUpstream, Part, Recorded, Reply, dumps, json_reply, sse_reply

GEMINI_MODEL_VERSION = "gemini-2.5-flash-fake-001"
API_PREFIX = "/v1beta"
_METHOD_PATH = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")


def text_part(text: str, *, thought: bool = False) -> dict[str, Any]:
    return {"text": text, "thought": True} if thought else {"text": text}


def function_call_part(
    name: str, args: Mapping[str, Any], *, signature: str | None = None, call_id: str | None = None
) -> dict[str, Any]:
    call: dict[str, Any] = {"name": name, "args": dict(args)}
    if call_id is not None:
        call["id"] = call_id
    part: dict[str, Any] = {"functionCall": call}
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def usage_metadata(
    prompt: int = 12,
    candidates: int = 7,
    *,
    cached: int | None = None,
    thoughts: int | None = None,
) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + (thoughts or 0),
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if cached is not None:
        usage["cachedContentTokenCount"] = cached
    if thoughts is not None:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def candidate(
    parts: Sequence[dict[str, Any]], finish_reason: str | None = "STOP", index: int | None = 0
) -> dict[str, Any]:
    """A candidate as Gemini sends it (index 0 may be left out, as proto3 JSON does with zero values)."""
    out: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}}
    if finish_reason is not None:
        out["finishReason"] = finish_reason
        out["safetyRatings"] = [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]
    if index is not None:
        out["index"] = index
    return out


def gemini_response(
    parts: Sequence[dict[str, Any]] = (text_part("Hello from the fake Gemini upstream."),),
    *,
    finish_reason: str = "STOP",
    candidates: Sequence[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
    model_version: str = GEMINI_MODEL_VERSION,
    response_id: str | None = "fake-response-0001",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "candidates": list(candidates) if candidates is not None else [candidate(parts, finish_reason)],
        "usageMetadata": usage or usage_metadata(),
        "modelVersion": model_version,
    }
    if response_id is not None:
        body["responseId"] = response_id
    return body


def gemini_sse(obj: Any, *, crlf: bool = False) -> bytes:
    end = b"\r\n\r\n" if crlf else b"\n\n"
    return b"data: " + dumps(obj) + end


def gemini_stream(
    pieces: Sequence[str] = ("Hello", " from", " the", " fake", " stream."),
    *,
    function_calls: Sequence[dict[str, Any]] = (),
    calls_per_chunk: int = 1,
    finish_reason: str | None = "STOP",
    usage: dict[str, Any] | None = None,
    model_version: str = GEMINI_MODEL_VERSION,
    response_id: str = "fake-stream-0001",
    crlf: bool = False,
) -> list[Part]:
    """A streamGenerateContent?alt=sse reply: one chunk per text piece, then the function-call parts
    (`calls_per_chunk` whole calls per chunk), the finishReason on the last chunk. usageMetadata rides on
    the first chunk (prompt only) and, final, on the last one (as Gemini sends it: take the last).
    `finish_reason=None` leaves the finish out (a stream cut short)."""
    usage = usage or usage_metadata()
    groups: list[list[dict[str, Any]]] = [[text_part(piece)] for piece in pieces]
    calls = list(function_calls)
    groups += [calls[i : i + calls_per_chunk] for i in range(0, len(calls), calls_per_chunk)]
    if not groups:
        groups = [[]]
    parts: list[Part] = []
    for i, group in enumerate(groups):
        last = i == len(groups) - 1
        chunk: dict[str, Any] = {
            "candidates": [candidate(group, finish_reason if last else None)],
            "modelVersion": model_version,
            "responseId": response_id,
        }
        if i == 0:
            prompt = usage["promptTokenCount"]
            chunk["usageMetadata"] = {"promptTokenCount": prompt, "totalTokenCount": prompt}
        if last and finish_reason is not None:
            chunk["usageMetadata"] = usage
        parts.append(gemini_sse(chunk, crlf=crlf))
    return parts


def gemini_stream_error(code: int = 503, status: str = "UNAVAILABLE", message: str = "overloaded") -> bytes:
    return gemini_sse({"error": {"code": code, "message": message, "status": status}})


def gemini_error(
    code: int,
    status: str,
    message: str,
    *,
    details: Sequence[dict[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
) -> Reply:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return json_reply({"error": error}, code, headers)


def retry_info(delay: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


def embeddings_response(count: int, dimensions: int = 4) -> dict[str, Any]:
    return {
        "embeddings": [
            {"values": [round(0.25 * (i + 1) * (d + 1), 3) for d in range(dimensions)]} for i in range(count)
        ]
    }


class FakeGemini(FakeUpstream):
    name = "fake-gemini"

    def default(self, rec: Recorded) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        match = _METHOD_PATH.match(rec.path) if rec.method == "POST" else None
        method = match.group("method") if match else None
        if method == "generateContent":
            return json_reply(gemini_response())
        if method == "streamGenerateContent" and rec.query == "alt=sse":
            return sse_reply(gemini_stream())
        if method == "batchEmbedContents":
            requests = body.get("requests") or []
            dimensions = (requests[0].get("outputDimensionality") if requests else None) or 4
            return json_reply(embeddings_response(len(requests), dimensions))
        return gemini_error(404, "NOT_FOUND", f"Method not found: {rec.method} {rec.path}")
