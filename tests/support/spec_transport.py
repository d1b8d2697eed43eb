"""HTTP transports for the openai SDK that keep a copy of every response body the gateway sent, so a
fixture can check each one against the OpenAI spec after the test, whatever the test itself asserted.

The body is read whole before the SDK sees it (a stream still reaches the SDK as the same SSE bytes).
"""

from __future__ import annotations

import array
import base64
import json
from dataclasses import dataclass
from typing import Any

import httpx2

from tests.support.openai_spec import (
    CHAT,
    CHUNK,
    COMPLETION,
    EMBEDDINGS,
    ERROR,
    MODEL,
    MODELS,
    assert_valid,
    assert_valid_stream,
)
from tests.support.responses_spec import (
    assert_valid_response,
    assert_valid_response_stream,
    assert_valid_stored,
)


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    status: int
    content_type: str
    body: bytes

    def check(self) -> None:
        """AssertionError unless the body is what the spec says this endpoint answers."""
        if self.status >= 400:
            assert_valid(ERROR, json.loads(self.body))
            return
        stream = self.content_type.startswith("text/event-stream")
        path = self.path.removeprefix("/v1")
        if path == "/chat/completions":
            if stream:
                assert_valid_stream(self.body, CHUNK, allow_error=True)
            else:
                assert_valid(CHAT, json.loads(self.body))
        elif path == "/completions":
            if stream:
                assert_valid_stream(self.body, COMPLETION, allow_error=True)
            else:
                assert_valid(COMPLETION, json.loads(self.body))
        elif path == "/embeddings":
            assert_valid(EMBEDDINGS, _embeddings_as_floats(json.loads(self.body)))
        elif path == "/responses":
            if stream:
                assert_valid_response_stream(self.body)
            else:
                assert_valid_response(json.loads(self.body))
        elif path.startswith("/responses/"):  # stored responses (the gateway's own)
            assert_valid_stored(self.method, path, json.loads(self.body))
        elif path == "/models":
            assert_valid(MODELS, json.loads(self.body))
        elif path.startswith("/models/"):
            assert_valid(MODEL, json.loads(self.body))
        else:
            raise AssertionError(f"no schema known for {self.method} {self.path}")


def _embeddings_as_floats(body: Any) -> Any:
    """The spec knows embeddings only as float arrays; `encoding_format: base64` answers (little-endian
    float32, what the SDK asks for by default) are checked decoded."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return body
    data = [
        {**item, "embedding": list(array.array("f", base64.b64decode(item["embedding"], validate=True)))}
        if isinstance(item, dict) and isinstance(item.get("embedding"), str)
        else item
        for item in body["data"]
    ]
    return {**body, "data": data}


def check_all(exchanges: list[Exchange]) -> None:
    failures = []
    for exchange in exchanges:
        try:
            exchange.check()
        except AssertionError as exc:
            failures.append(f"{exchange.method} {exchange.path} -> {exchange.status}: {exc}")
    assert not failures, "client-facing bodies that break the OpenAI spec:\n" + "\n".join(failures)


def _copy(response: httpx2.Response, request: httpx2.Request, body: bytes) -> httpx2.Response:
    return httpx2.Response(
        response.status_code,
        headers=response.headers,
        content=body,
        request=request,
        extensions=response.extensions,
    )


class RecordingTransport(httpx2.BaseTransport):
    def __init__(self) -> None:
        self._inner = httpx2.HTTPTransport()
        self.exchanges: list[Exchange] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self._inner.handle_request(request)
        try:
            body = response.read()
        finally:
            response.close()
        self.exchanges.append(
            Exchange(
                request.method,
                request.url.path,
                response.status_code,
                response.headers.get("content-type", ""),
                body,
            )
        )
        return _copy(response, request, body)

    def close(self) -> None:
        self._inner.close()


class AsyncRecordingTransport(httpx2.AsyncBaseTransport):
    def __init__(self) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        self.exchanges.append(
            Exchange(
                request.method,
                request.url.path,
                response.status_code,
                response.headers.get("content-type", ""),
                body,
            )
        )
        return _copy(response, request, body)

    async def aclose(self) -> None:
        await self._inner.aclose()
