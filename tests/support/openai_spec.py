"""Validate client-facing JSON and SSE streams against the official OpenAI OpenAPI spec.

Uses ../shared/spec/validate.py (found next to the project root, see shared_dir; imported by path); the
parsed spec is loaded once per process. Where the spec is not present, a check checks nothing and is
counted as skipped (the run ends with one line saying how many and why), and the test goes on with its
other assertions.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from types import ModuleType
from typing import Any

import pytest

from tests.support import shared_dir, skipped_checks

SPEC_DIR = shared_dir.SPEC_DIR

CHAT = "CreateChatCompletionResponse"
CHUNK = "CreateChatCompletionStreamResponse"
ERROR = "ErrorResponse"
MODELS = "ListModelsResponse"
MODEL = "Model"
COMPLETION = "CreateCompletionResponse"
EMBEDDINGS = "CreateEmbeddingResponse"


def spec_available() -> bool:
    return (SPEC_DIR / "validate.py").is_file() and (SPEC_DIR / "openai-openapi.yaml").is_file()


def missing_spec_reason() -> str:
    return f"../shared/spec not found ({SPEC_DIR})"


@functools.cache
def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_openai_spec_validate", SPEC_DIR / "validate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def _spec() -> dict[str, Any]:
    loaded: dict[str, Any] = _module().load_spec()
    return loaded


def require_spec() -> None:
    """For a test that checks nothing but the spec: skip it (visibly) where the spec is absent."""
    if not spec_available():
        pytest.skip(missing_spec_reason())


def errors_for(schema: str, instance: Any) -> list[str]:
    """Spec violations of `instance` against the component schema; none where the spec is absent, and
    the check is counted as skipped."""
    if not spec_available():
        skipped_checks.skip_check(missing_spec_reason())
        return []
    errors: list[str] = _module().errors_for(_spec(), schema, instance)
    return errors


def assert_valid(schema: str, instance: Any) -> Any:
    """Fail with every violation listed; return `instance` for chaining."""
    errors = errors_for(schema, instance)
    assert not errors, f"not a valid {schema}:\n  " + "\n  ".join(errors) + f"\ninstance: {instance!r}"
    return instance


def assert_error_body(body: Any, *, code: str | None = None, type_: str | None = None) -> dict[str, Any]:
    """An OpenAI error envelope (ErrorResponse); optionally check its code and type. Returns body["error"]."""
    assert_valid(ERROR, body)
    error: dict[str, Any] = body["error"]
    if code is not None:
        assert error["code"] == code, error
    if type_ is not None:
        assert error["type"] == type_, error
    return error


def sse_data_lines(raw: bytes) -> list[str]:
    """The `data:` payloads of an SSE body, in order (event names and comments ignored)."""
    text = raw.decode("utf-8").replace("\r\n", "\n")
    payloads: list[str] = []
    for block in text.split("\n\n"):
        data = [line[5:].removeprefix(" ") for line in block.split("\n") if line.startswith("data:")]
        if data:
            payloads.append("\n".join(data))
    return payloads


def assert_valid_stream(
    raw: bytes, schema: str = CHUNK, *, allow_error: bool = False
) -> list[dict[str, Any]]:
    """Check a whole client-facing SSE body: every `data:` line is JSON valid against `schema` (an
    `{"error": ...}` event, only if `allow_error`, must be a valid ErrorResponse and must be the last event
    before [DONE]), the body ends with `data: [DONE]` and has nothing after it. Returns the parsed events.
    Where the spec is absent, everything but the schemas is still checked."""
    assert raw.endswith(b"data: [DONE]\n\n"), f"stream does not end with data: [DONE]: {raw[-200:]!r}"
    payloads = sse_data_lines(raw)
    assert payloads and payloads[-1] == "[DONE]", payloads[-3:]
    assert payloads.count("[DONE]") == 1, "more than one [DONE]"
    events: list[dict[str, Any]] = []
    for i, payload in enumerate(payloads[:-1]):
        event = json.loads(payload)
        if isinstance(event, dict) and "error" in event:
            assert allow_error, f"unexpected error event in the stream: {event}"
            assert i == len(payloads) - 2, "an error event must be the last event before [DONE]"
            assert_valid(ERROR, event)
        else:
            assert_valid(schema, _as_validated(schema, event))
        events.append(event)
    return events


def _as_validated(schema: str, event: Any) -> Any:
    """The spec has no schema for streamed legacy completions: their chunks reuse CreateCompletionResponse,
    whose `finish_reason` cannot be null, while every chunk but the last has `finish_reason: null` (as
    OpenAI sends them). Such a chunk is validated with that one null filled in; everything else as is."""
    if schema != COMPLETION or not isinstance(event, dict) or not isinstance(event.get("choices"), list):
        return event
    choices = [
        {**c, "finish_reason": "stop"} if isinstance(c, dict) and c.get("finish_reason", "") is None else c
        for c in event["choices"]
    ]
    return {**event, "choices": choices}
