"""The stream translator says why a translated stream ended early, the text of an error it relays
goes through the provider's redactor (successful events are never touched), and it always counts the
usage the upstream reported while showing it only to a client that asked (`include_usage`)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.engine.stream_translator import StreamTranslator
from gateway.framing.events import StreamEvent
from gateway.redaction import MASK, Redactor
from gateway.rules.context import EvalContext

SECRET = "sk-ant-secret-0123456789"
CONFIG = """
providers:
  claude: {dialect: anthropic, base_url: "http://127.0.0.1:9", api_key: k}
  mistral: {dialect: mistral, base_url: "http://127.0.0.1:9", api_key: k}
models:
  m: [{provider: claude, model: claude-x}]
  mistral: [{provider: mistral, model: mistral-small}]
"""
START = StreamEvent(
    "message_start",
    json.dumps(
        {
            "type": "message_start",
            "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 1, "output_tokens": 0}},
        }
    ),
)


def translator(model: str = "m", **request_fields: Any) -> StreamTranslator:
    registry = build_registry(config_from_text(CONFIG, "routes.yaml", {}))
    operation = next(registry.routes[model].root.targets()).provider.operations["chat"]
    assert operation.stream is not None
    request: dict[str, Any] = {"model": model, "messages": [], "stream": True, **request_fields}
    ctx = EvalContext(request=request, created=int(time.time()))
    return StreamTranslator(operation.stream, ctx, Redactor([SECRET]))


def test_the_upstreams_error_event_is_redacted_and_recorded_as_its_failure() -> None:
    stream = translator()
    stream.on_event(START)
    message = f"x-api-key: {SECRET} is not valid"
    error = {"type": "error", "error": {"type": "authentication_error", "message": message}}
    out = stream.on_event(StreamEvent("error", json.dumps(error)))
    assert SECRET.encode() not in out
    relayed = json.loads(out.split(b"\n")[0][6:])["error"]
    assert MASK in relayed["message"] and relayed["code"] == "invalid_api_key"
    assert (stream.failed, stream.failure) == (True, "upstream_error")


def test_successful_events_are_not_redacted() -> None:
    stream = translator()
    stream.on_event(START)
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": SECRET}}
    out = stream.on_event(StreamEvent("content_block_delta", json.dumps(delta)))
    assert SECRET.encode() in out
    assert stream.failure is None


@pytest.mark.parametrize(
    ("events", "truncated", "failure"),
    [
        pytest.param([StreamEvent("message_start", "{not json")], False, "invalid", id="not-json"),
        pytest.param([START], True, "truncated", id="cut-short"),
        pytest.param([START], False, "truncated", id="closed-before-its-end"),
    ],
)
def test_why_a_stream_ended_early(events: list[StreamEvent], truncated: bool, failure: str) -> None:
    stream = translator()
    for event in events:
        stream.on_event(event)
    stream.on_close(truncated=truncated)
    assert (stream.failed, stream.failure) == (True, failure)


def test_redact_json_redacts_strings_at_any_depth_and_keeps_the_rest() -> None:
    value = {"a": [f"key {SECRET}", 1, None, {"b": f"Bearer {SECRET}"}], "n": 2.5}
    assert Redactor([SECRET]).redact_json(value) == {
        "a": [f"key {MASK}", 1, None, {"b": f"Bearer {MASK}"}],
        "n": 2.5,
    }


# ---- usage: always counted, shown only when asked --------------------------------------------------

ANTHROPIC_REST = [
    StreamEvent(
        "content_block_delta",
        json.dumps(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}
        ),
    ),
    StreamEvent(
        "message_delta",
        json.dumps(
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}}
        ),
    ),
    StreamEvent("message_stop", json.dumps({"type": "message_stop"})),
]
ANTHROPIC_USAGE = {
    "prompt_tokens": 1,
    "completion_tokens": 7,
    "total_tokens": 8,
    "prompt_tokens_details": {"cached_tokens": 0},
}


def chunks_of(frames: bytes) -> list[Any]:
    return [json.loads(line[6:]) for line in frames.split(b"\n") if line.startswith(b"data: {")]


@pytest.mark.parametrize(
    "stream_options",
    [
        pytest.param({}, id="not-asked"),
        pytest.param({"stream_options": {"include_usage": False}}, id="declined"),
    ],
)
def test_a_client_that_did_not_ask_gets_no_usage_but_it_is_counted(stream_options: dict[str, Any]) -> None:
    stream = translator(**stream_options)
    out = b"".join(stream.on_event(event) for event in [START, *ANTHROPIC_REST])
    assert out.endswith(b"data: [DONE]\n\n")
    chunks = chunks_of(out)
    assert [c for c in chunks if "usage" in c] == []
    assert all(c["choices"] for c in chunks)  # no usage chunk (choices: [])
    assert stream.usage == ANTHROPIC_USAGE


def test_a_client_that_asked_gets_the_usage_chunk() -> None:
    stream = translator(stream_options={"include_usage": True})
    out = b"".join(stream.on_event(event) for event in [START, *ANTHROPIC_REST])
    last = chunks_of(out)[-1]
    assert (last["choices"], last["usage"]) == ([], ANTHROPIC_USAGE)
    assert stream.usage == ANTHROPIC_USAGE


MISTRAL_LAST = StreamEvent(
    None,
    json.dumps(
        {
            "id": "a1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "mistral-small",
            "choices": [{"index": 0, "delta": {"content": "!"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10},
        }
    ),
)


def test_usage_on_a_content_chunk_is_taken_off_it_for_a_client_that_did_not_ask() -> None:
    """Mistral puts the usage on its last content chunk whether asked or not."""
    stream = translator("mistral")
    chunks = chunks_of(stream.on_event(MISTRAL_LAST))
    assert [c["choices"][0]["delta"] for c in chunks] == [{"content": "!"}]
    assert "usage" not in chunks[0]
    assert stream.usage == {"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10}
