"""A fake Ollama upstream speaking the native API: POST /api/chat (JSON, or NDJSON lines unless
`"stream": false` — the native API streams by default) and POST /api/embed (see
../shared/providers/ollama.md).

Built on FakeUpstream: it records every request and replies with what a test queued, else with a
plausible default built from the request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tests.support.fake_upstreams import FakeUpstream, Part, Recorded, Reply, dumps, json_reply

MODEL = "llama3.2"
CREATED_AT = "2025-07-07T20:32:53.844124Z"
TIMINGS = {
    "total_duration": 3244883583,
    "load_duration": 2969184542,
    "prompt_eval_duration": 141656333,
    "eval_duration": 133293625,
}


def ollama_tool_call(name: str, arguments: dict[str, Any], call_id: str | None = None) -> dict[str, Any]:
    """A native tool call: arguments as an object; newer versions also give an id."""
    call: dict[str, Any] = {"function": {"name": name, "arguments": arguments}}
    if call_id is not None:
        call["id"] = call_id
    return call


def ollama_chat(
    content: str = "Hello from the fake Ollama upstream.",
    *,
    model: str = MODEL,
    tool_calls: Sequence[dict[str, Any]] = (),
    thinking: str | None = None,
    done_reason: str = "stop",
    prompt_eval_count: int = 26,
    eval_count: int = 9,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking is not None:
        message["thinking"] = thinking
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    return {
        "model": model,
        "created_at": CREATED_AT,
        "message": message,
        "done_reason": done_reason,
        "done": True,
        **TIMINGS,
        "prompt_eval_count": prompt_eval_count,
        "eval_count": eval_count,
    }


def ollama_line(obj: Any) -> bytes:
    return dumps(obj) + b"\n"


def ollama_stream(
    pieces: Sequence[str] = ("Hello", " from", " the", " fake", " stream."),
    *,
    model: str = MODEL,
    tool_calls: Sequence[Sequence[dict[str, Any]]] = (),
    done_reason: str = "stop",
    prompt_eval_count: int = 12,
    eval_count: int = 5,
    complete: bool = True,
) -> list[Part]:
    """NDJSON lines as /api/chat streams them: one line per content piece, one line per group of
    tool calls (calls arrive whole), then the `done: true` line with done_reason and the counts.
    `complete=False` leaves out the done line (a truncated stream)."""

    def line(message: dict[str, Any]) -> bytes:
        return ollama_line(
            {
                "model": model,
                "created_at": CREATED_AT,
                "message": {"role": "assistant", **message},
                "done": False,
            }
        )

    parts: list[Part] = [line({"content": piece}) for piece in pieces]
    parts += [line({"content": "", "tool_calls": list(group)}) for group in tool_calls]
    if complete:
        parts.append(
            ollama_line(
                {
                    "model": model,
                    "created_at": CREATED_AT,
                    "message": {"role": "assistant", "content": ""},
                    "done_reason": done_reason,
                    "done": True,
                    **TIMINGS,
                    "prompt_eval_count": prompt_eval_count,
                    "eval_count": eval_count,
                }
            )
        )
    return parts


def ollama_stream_error(message: str) -> bytes:
    """The extra line a native stream carries when something fails after the 200."""
    return ollama_line({"error": message})


def ndjson_reply(parts: Sequence[Part], headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(200, {"Content-Type": "application/x-ndjson", **(headers or {})}, list(parts), stream=True)


def ollama_embed(inputs: Sequence[str], model: str = "all-minilm", dimensions: int = 4) -> dict[str, Any]:
    vectors = [[round(0.1 * (i + 1) * (d + 1), 3) for d in range(dimensions)] for i, _ in enumerate(inputs)]
    return {
        "model": model,
        "embeddings": vectors,
        "total_duration": 14143917,
        "load_duration": 1019500,
        "prompt_eval_count": 8,
    }


def ollama_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    return json_reply({"error": message}, status, headers)


class FakeOllama(FakeUpstream):
    name = "fake-ollama"

    def default(self, rec: Recorded) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        model = body.get("model", MODEL)
        if rec.path == "/api/chat":
            if body.get("stream", True) is not False:  # the native API streams unless told not to
                return ndjson_reply(ollama_stream(model=model))
            return json_reply(ollama_chat(model=model))
        if rec.path == "/api/embed":
            raw = body.get("input")
            inputs = [raw] if isinstance(raw, str) else list(raw or [])
            return json_reply(ollama_embed(inputs, model, body.get("dimensions") or 4))
        return ollama_error(404, "404 page not found")
