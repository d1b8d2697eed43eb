"""A fake upstream for a made-up wire format ("toy") that the gateway does not ship: the dialect
for it lives in routes.yaml only (tests/support/toy_dialect.yaml).

    POST /v0/generate         {"model_name", "prompt_messages": [{"speaker", "text"}], "settings"}
                           -> {"request_id", "model_name", "output": {"text", "end"}, "stats"}
    POST /v0/generate/stream  the same request; NDJSON lines {"kind": "start" | "piece" | "end" | "failure"}
    errors                    {"failure": {"kind", "detail"}} with any status (529 when busy)

The toy key travels in `x-toy-key`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support.fake_upstreams import FakeUpstream, Part, Recorded, Reply, dumps, json_reply

TOY_DIALECT_YAML = Path(__file__).with_name("toy_dialect.yaml")
TOY_MODEL = "toy-1"
TOY_ANSWER = "Hello from the toy upstream."
NDJSON_HEADERS = {"Content-Type": "application/x-ndjson"}


def toy_stats(tokens_in: int = 6, tokens_out: int = 5) -> dict[str, Any]:
    return {"tokens_in": tokens_in, "tokens_out": tokens_out}


def toy_reply(text: str = TOY_ANSWER, end: str = "done", model: str = TOY_MODEL) -> dict[str, Any]:
    return {
        "request_id": "toy-req-1",
        "model_name": model,
        "output": {"text": text, "end": end},
        "stats": toy_stats(),
    }


def toy_line(obj: Any) -> bytes:
    return dumps(obj) + b"\n"


def toy_stream(
    pieces: Sequence[str] = ("Hello", " from", " the", " toy."),
    *,
    end: str = "done",
    model: str = TOY_MODEL,
    failure: Mapping[str, str] | None = None,
) -> list[Part]:
    """start, pieces, then end (or a failure line instead of the end)."""
    parts: list[Part] = [toy_line({"kind": "start", "request_id": "toy-stream-1", "model_name": model})]
    parts += [toy_line({"kind": "piece", "text": piece}) for piece in pieces]
    if failure is not None:
        return [*parts, toy_line({"kind": "failure", "failure": dict(failure)})]
    return [*parts, toy_line({"kind": "end", "end": end, "stats": toy_stats()})]


def toy_failure(status: int, kind: str, detail: str, headers: Mapping[str, str] | None = None) -> Reply:
    return json_reply({"failure": {"kind": kind, "detail": detail}}, status, headers)


def ndjson_reply(parts: Sequence[Part]) -> Reply:
    return Reply(200, NDJSON_HEADERS, list(parts), stream=True)


class FakeToy(FakeUpstream):
    name = "fake-toy"

    def default(self, rec: Recorded) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        model = str(body.get("model_name", TOY_MODEL))
        if rec.path == "/v0/generate":
            return json_reply(toy_reply(model=model))
        if rec.path == "/v0/generate/stream":
            return ndjson_reply(toy_stream(model=model))
        return toy_failure(404, "bad_input", f"no such endpoint: {rec.path}")
