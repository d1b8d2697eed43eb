"""Validate what the Responses API (POST /v1/responses) answers against the official OpenAI spec.

A `Response` body against the spec's `Response`; a stream event by event, each against the component
its `type` names (found through `ResponseStreamEvent`'s members), its `event:` line equal to its `type`
and its `sequence_number` strictly increasing. Where the spec is absent, the schemas are skipped (as in
tests/support/openai_spec.py) and the framing is still checked.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from tests.support import openai_spec

RESPONSE = "Response"
STREAM_EVENT = "ResponseStreamEvent"
TERMINAL = ("response.completed", "response.incomplete", "response.failed", "error")


@functools.cache
def _event_components() -> dict[str, str]:
    """Stream event type -> the spec component that describes it."""
    schemas = openai_spec._spec()["components"]["schemas"]
    found: dict[str, str] = {}
    for member in schemas[STREAM_EVENT]["anyOf"]:
        name = member["$ref"].rsplit("/", 1)[-1]
        kind = schemas[name].get("properties", {}).get("type", {}).get("enum") or []
        for value in kind:
            found[value] = name
    return found


def assert_valid_response(body: Any) -> dict[str, Any]:
    """A valid `Response`; returned for chaining."""
    openai_spec.assert_valid(RESPONSE, body)
    assert isinstance(body, dict) and body["id"].startswith("resp_"), body
    return body


def parse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The (event name, data) pairs of a named-event SSE body, in order."""
    events = []
    for block in raw.decode("utf-8").replace("\r\n", "\n").split("\n\n"):
        lines = block.split("\n")
        names = [line[6:].strip() for line in lines if line.startswith("event:")]
        data = "\n".join(line[5:].removeprefix(" ") for line in lines if line.startswith("data:"))
        if data:
            assert data != "[DONE]", "a Responses stream has no [DONE]"
            events.append((names[0] if names else "", json.loads(data)))
    return events


def assert_valid_response_stream(raw: bytes) -> list[dict[str, Any]]:
    """Every event valid against its own component, named by an `event:` line equal to its `type`, with a
    strictly increasing `sequence_number`; the stream ends with a terminal event. Returns the events."""
    events = parse_events(raw)
    assert events, "an empty stream"
    last = -1
    for name, event in events:
        kind = event.get("type")
        assert name == kind, f"event: {name!r} but type {kind!r}"
        assert isinstance(event.get("sequence_number"), int) and event["sequence_number"] > last, event
        last = event["sequence_number"]
        if openai_spec.spec_available():
            component = _event_components().get(str(kind))
            assert component, f"no stream event of type {kind!r} in the spec"
            openai_spec.assert_valid(component, event)
    assert events[-1][0] in TERMINAL, f"the stream ends with {events[-1][0]!r}"
    return [event for _, event in events]


def assert_valid_stored(method: str, path: str, body: Any) -> None:
    """What GET / DELETE /v1/responses/{id} and GET /v1/responses/{id}/input_items answer: a `Response`,
    the deletion (the spec's example: it has no schema), a `ResponseItemList` (`path` without /v1)."""
    if path.endswith("/input_items"):
        openai_spec.assert_valid("ResponseItemList", body)
    elif method == "DELETE":
        assert body == {"id": path.rsplit("/", 1)[-1], "object": "response", "deleted": True}, body
    else:
        assert_valid_response(body)
