"""HTTP transports for the official `anthropic` SDK that keep a copy of every response the gateway sent,
so a fixture can check each one after the test, whatever the test itself asserted, with the SDK's own
models in pydantic's strict mode (no coercion) and no field the models do not know:

- a message: `anthropic.types.Message`;
- every stream event: the `RawMessageStreamEvent` union (`ping` and `error` as Anthropic sends them),
  and the stream's grammar, which the SDK's accumulator does not check: `event:` names equal to the
  data's `type`, no `[DONE]`, message_start first, content blocks opened at consecutive indices from 0
  and one at a time, deltas of the open block's kind, every tool_use's input a JSON object, one
  message_delta with a stop reason after the last block, message_stop (or an error) last;
- a count: `MessageTokensCount`; a model or a page of them: `ModelInfo`; an error: `ErrorResponse`,
  its type the one Anthropic gives its status.

The body is read whole before the SDK sees it (a stream still reaches the SDK as the same bytes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pydantic
from anthropic.types import ErrorResponse, Message, MessageTokensCount, ModelInfo, RawMessageStreamEvent

STREAM_EVENT: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RawMessageStreamEvent)

# Anthropic's documented error type of each status (docs: API errors); 5xx other than 529 may be any of
# the server-side kinds. 413 is `request_too_large`, which the SDK's ErrorObject union leaves out.
ERROR_TYPE_OF_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
SERVER_ERROR_TYPES = ("api_error", "overloaded_error", "timeout_error")

# which delta types each content block kind takes
DELTAS_OF_BLOCK = {
    "text": ("text_delta", "citations_delta"),
    "thinking": ("thinking_delta", "signature_delta"),
    "redacted_thinking": (),
    "tool_use": ("input_json_delta",),
}


def unknown_fields(model: Any, where: str = "") -> Iterator[str]:
    """Every field, anywhere in a parsed SDK model, that the SDK's models do not declare (they keep
    unknown fields as `model_extra` instead of refusing them)."""
    if isinstance(model, pydantic.BaseModel):
        for name in model.model_extra or {}:
            yield f"{where}.{name}".lstrip(".")
        for name in type(model).model_fields:
            yield from unknown_fields(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list | tuple):
        for i, item in enumerate(model):
            yield from unknown_fields(item, f"{where}[{i}]")
    elif isinstance(model, dict):
        for key, item in model.items():
            yield from unknown_fields(item, f"{where}.{key}")


def strict(model: Any, data: Any) -> Any:
    """`data` (JSON the gateway sent) parsed strictly by `model` (a model class or a TypeAdapter), as
    JSON (an RFC 3339 string is a datetime there), with no unknown field."""
    text = json.dumps(data)
    if isinstance(model, pydantic.TypeAdapter):
        parsed = model.validate_json(text, strict=True)
    else:
        parsed = model.model_validate_json(text, strict=True)
    extra = list(unknown_fields(parsed))
    assert not extra, f"fields the SDK's models do not know: {extra} in {data}"
    return parsed


def check_error(status: int, body: Any) -> None:
    error: Any = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    if kind == "request_too_large":  # Anthropic's (Cloudflare's) 413, missing from the SDK's union
        assert set(body) <= {"type", "error", "request_id"} and set(error) == {"type", "message"}, body
        assert isinstance(error["message"], str), body
    else:
        strict(ErrorResponse, body)
    expected = ERROR_TYPE_OF_STATUS.get(status)
    if expected is not None:
        assert kind == expected, f"status {status} with error type {kind!r} (Anthropic's is {expected!r})"
    else:
        assert status >= 500 and kind in SERVER_ERROR_TYPES, f"status {status} with error type {kind!r}"


def check_message(body: Any) -> None:
    """A whole message: the SDK's model, and the ids Anthropic gives (`msg_`, `toolu_`)."""
    strict(Message, body)
    assert body["id"].startswith("msg_"), body["id"]
    for block in body["content"]:
        if block["type"] == "tool_use":
            assert block["id"].startswith("toolu_"), block


def sse_events(body: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) of every SSE event, in order (comments skipped)."""
    events = []
    for block in body.replace(b"\r\n", b"\n").decode().split("\n\n"):
        name: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            else:
                raise AssertionError(f"an SSE line that is not event/data/comment: {line!r}")
        if name is not None or data:
            events.append((name, "\n".join(data)))
    return events


def _as_documented(event: dict[str, Any]) -> dict[str, Any]:
    """Anthropic's docs show a thinking block opening as `{"type": "thinking", "thinking": ""}`, where
    the SDK's model wants a signature too (it arrives in a signature_delta): taken as an empty one."""
    block = event.get("content_block")
    if (
        event.get("type") == "content_block_start"
        and isinstance(block, dict)
        and block.get("type") == "thinking"
    ):
        return {**event, "content_block": {"signature": "", **block}}
    return event


@dataclass
class StreamGrammar:
    """The state of one Messages stream, checked event by event."""

    started: bool = False
    open_index: int | None = None
    open_kind: str | None = None
    next_index: int = 0
    delta_seen: bool = False
    finished: bool = False  # message_stop or error: nothing may follow
    json_buffer: str = ""

    def step(self, name: str | None, data: dict[str, Any]) -> None:
        kind = data.get("type")
        assert not self.finished, f"{kind} after the end of the stream"
        assert name == kind, f"event name {name!r} for data of type {kind!r}"
        if kind == "ping":
            assert data == {"type": "ping"}, data
            return
        if kind == "error":
            check_error(529 if data["error"]["type"] == "overloaded_error" else 500, data)
            self.finished = True
            return
        strict(STREAM_EVENT, _as_documented(data))
        if kind == "message_start":
            assert not self.started, "a second message_start"
            message = data["message"]
            assert message["content"] == [] and message["stop_reason"] is None, message
            assert message["id"].startswith("msg_"), message
            self.started = True
            return
        assert self.started, f"{kind} before message_start"
        if kind == "content_block_start":
            assert self.open_index is None, f"block {data['index']} opened while {self.open_index} is open"
            assert not self.delta_seen, "a content block after message_delta"
            assert data["index"] == self.next_index, (
                f"block index {data['index']}, expected {self.next_index}"
            )
            self.open_index, self.open_kind = data["index"], data["content_block"]["type"]
            self.next_index += 1
            self.json_buffer = ""
            if self.open_kind == "tool_use":
                assert data["content_block"]["input"] == {}, data
                assert data["content_block"]["id"].startswith("toolu_"), data
        elif kind == "content_block_delta":
            assert data["index"] == self.open_index, (
                f"delta for block {data['index']}, open: {self.open_index}"
            )
            delta = data["delta"]["type"]
            allowed = DELTAS_OF_BLOCK.get(str(self.open_kind), ())
            assert delta in allowed, f"{delta} inside a {self.open_kind} block"
            if delta == "input_json_delta":
                self.json_buffer += data["delta"]["partial_json"]
        elif kind == "content_block_stop":
            assert data["index"] == self.open_index, (
                f"stop for block {data['index']}, open: {self.open_index}"
            )
            if self.open_kind == "tool_use" and self.json_buffer:
                assert isinstance(json.loads(self.json_buffer), dict), self.json_buffer
            self.open_index = self.open_kind = None
        elif kind == "message_delta":
            assert self.open_index is None, f"message_delta with block {self.open_index} open"
            assert not self.delta_seen, "a second message_delta"
            assert data["delta"]["stop_reason"] is not None, data
            self.delta_seen = True
        elif kind == "message_stop":
            assert self.delta_seen, "message_stop without message_delta"
            self.finished = True

    def end(self) -> None:
        assert self.finished, "the stream ended without message_stop or an error event"


def check_stream(body: bytes) -> list[dict[str, Any]]:
    """Every event of a Messages stream, checked (see the module docstring); their data, in order."""
    grammar = StreamGrammar()
    seen = []
    for name, raw in sse_events(body):
        assert raw != "[DONE]", "a [DONE] line in a Messages stream"
        data = json.loads(raw)
        grammar.step(name, data)
        seen.append(data)
    grammar.end()
    return seen


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    status: int
    content_type: str
    body: bytes
    request_body: bytes = b""

    def check(self) -> None:
        """AssertionError unless the body is what Anthropic's API answers there."""
        if self.method == "HEAD" or self.path == "/":
            return
        if self.status >= 400:
            assert self.content_type.startswith("application/json"), self.content_type
            check_error(self.status, json.loads(self.body))
        elif self.path == "/v1/messages":
            if self.content_type.startswith("text/event-stream"):
                check_stream(self.body)
            else:
                assert self.content_type.startswith("application/json"), self.content_type
                check_message(json.loads(self.body))
        elif self.path == "/v1/messages/count_tokens":
            strict(MessageTokensCount, json.loads(self.body))
        elif self.path == "/v1/models":
            page = json.loads(self.body)
            assert set(page) == {"data", "has_more", "first_id", "last_id"}, page
            for model in page["data"]:
                strict(ModelInfo, model)
        elif self.path.startswith("/v1/models/"):
            strict(ModelInfo, json.loads(self.body))
        else:
            raise AssertionError(f"no model known for {self.method} {self.path}")


def check_all(exchanges: list[Exchange]) -> None:
    failures = []
    for exchange in exchanges:
        try:
            exchange.check()
        except (AssertionError, pydantic.ValidationError, ValueError) as exc:
            failures.append(f"{exchange.method} {exchange.path} -> {exchange.status}: {exc}")
    assert not failures, "client-facing bodies the anthropic SDK's models refuse:\n" + "\n".join(failures)


def _copy(response: httpx2.Response, request: httpx2.Request, body: bytes) -> httpx2.Response:
    return httpx2.Response(
        response.status_code,
        headers=response.headers,
        content=body,
        request=request,
        extensions=response.extensions,
    )


def _exchange(request: httpx2.Request, response: httpx2.Response, body: bytes) -> Exchange:
    return Exchange(
        request.method,
        request.url.path,
        response.status_code,
        response.headers.get("content-type", ""),
        body,
        request.content,
    )


class StrictTransport(httpx2.BaseTransport):
    def __init__(self) -> None:
        self._inner = httpx2.HTTPTransport()
        self.exchanges: list[Exchange] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self._inner.handle_request(request)
        try:
            body = response.read()
        finally:
            response.close()
        self.exchanges.append(_exchange(request, response, body))
        return _copy(response, request, body)

    def close(self) -> None:
        self._inner.close()


class AsyncStrictTransport(httpx2.AsyncBaseTransport):
    def __init__(self) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        self.exchanges.append(_exchange(request, response, body))
        return _copy(response, request, body)

    async def aclose(self) -> None:
        await self._inner.aclose()
