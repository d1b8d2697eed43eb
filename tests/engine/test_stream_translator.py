"""The stream translator says why a translated stream ended early, and the text of an error it relays
goes through the provider's redactor (successful events are never touched)."""

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
models:
  m: [{provider: claude, model: claude-x}]
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


def translator() -> StreamTranslator:
    registry = build_registry(config_from_text(CONFIG, "routes.yaml", {}))
    operation = next(registry.routes["m"].root.targets()).provider.operations["chat"]
    assert operation.stream is not None
    request: dict[str, Any] = {"model": "m", "messages": [], "stream": True}
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
