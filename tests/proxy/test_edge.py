"""The edge of every request: envelopes for every error, request ids, one access event, no secrets."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, make_mocked_request

from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.log_context import merge_request_fields
from gateway.proxy import edge
from gateway.reload import RegistryHolder
from gateway.upstream.mock import MockReply
from tests.support.spec_check import spec_errors

ROUTES = """
limits: {max_body_bytes: 2048}
providers:
  mock: {dialect: mock, transport: mock}
  openai: {dialect: openai, base_url: "http://127.0.0.1:9/v1", api_key: "${OPENAI_API_KEY}"}
models:
  mock: [{provider: mock, model: mock-1}]
  gpt: [{provider: openai, model: gpt-4o}]
"""
SECRET = "sk-live-DO-NOT-LEAK-123"


@pytest.fixture
async def client(aiohttp_client: Any) -> TestClient[Any, Any]:
    registry = build_registry(config_from_text(ROUTES, "routes.yaml", {"OPENAI_API_KEY": SECRET}))
    result: TestClient[Any, Any] = await aiohttp_client(create_app(RegistryHolder("routes.yaml", registry)))
    return result


async def error_of(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = await response.json()
    assert spec_errors("ErrorResponse", body) == []
    return body["error"]  # type: ignore[no-any-return]


async def test_malformed_json_is_400(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/v1/chat/completions", data=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status == 400
    assert (await error_of(response))["type"] == "invalid_request_error"


async def test_body_that_is_not_an_object_is_400(client: TestClient[Any, Any]) -> None:
    response = await client.post("/v1/chat/completions", json=[1, 2])
    assert response.status == 400


async def test_oversize_body_is_413(client: TestClient[Any, Any]) -> None:
    big = {"model": "mock", "messages": [{"role": "user", "content": "x" * 4096}]}
    response = await client.post("/v1/chat/completions", json=big)
    assert response.status == 413
    assert (await error_of(response))["code"] == "request_too_large"


async def test_unknown_url_and_wrong_method_get_envelopes(client: TestClient[Any, Any]) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status == 404
    assert (await error_of(response))["code"] == "unknown_url"
    response = await client.get("/v1/chat/completions")
    assert response.status == 405
    assert (await error_of(response))["code"] == "method_not_allowed"


async def test_unknown_model_is_404_model_not_found(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status == 404
    error = await error_of(response)
    assert (error["code"], error["param"]) == ("model_not_found", "model")


async def test_unsupported_endpoint_for_the_dialect_is_400() -> None:
    routes = ROUTES.replace(
        "dialect: mock, transport: mock", "dialect: anthropic, base_url: 'http://127.0.0.1:9'"
    )
    registry = build_registry(config_from_text(routes, "routes.yaml", {"OPENAI_API_KEY": "k"}))
    from aiohttp.test_utils import TestServer

    async with TestClient(TestServer(create_app(RegistryHolder("r", registry)))) as client:
        response = await client.post("/v1/embeddings", json={"model": "mock", "input": "x"})
        assert response.status == 400
        assert (await error_of(response))["code"] == "unsupported_endpoint"


async def test_the_request_id_is_ours_and_a_clients_is_logged_not_echoed(
    client: TestClient[Any, Any],
) -> None:
    body = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}
    with structlog.testing.capture_logs(processors=[merge_request_fields]) as events:
        response = await client.post("/v1/chat/completions", json=body, headers={"x-request-id": "abc-123"})
        unusable = await client.post("/v1/chat/completions", json=body, headers={"x-request-id": "x" * 129})
        plain = await client.post("/v1/chat/completions", json=body)
    ours = [r.headers["x-request-id"] for r in (response, unusable, plain)]
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", request_id) for request_id in ours)
    access = [e for e in events if e["event"] == "request"]
    assert [e["request_id"] for e in access] == ours
    assert [e.get("client_request_id") for e in access] == ["abc-123", None, None]


def test_generated_request_ids_are_24_hex_digits_and_unique() -> None:
    ids = {edge.new_request_id() for _ in range(20_000)}
    assert len(ids) == 20_000
    assert all(re.fullmatch(r"req_[0-9a-f]{24}", request_id) for request_id in ids)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        pytest.param("abc-123", "abc-123", id="printable"),
        pytest.param("x" * 128, "x" * 128, id="128-chars"),
        pytest.param("x" * 129, None, id="too-long"),
        pytest.param("a\x01b", None, id="control-char"),
        pytest.param("", None, id="empty"),
    ],
)
def test_a_client_request_id_is_kept_for_the_logs_unless_unusable(given: str, kept: str | None) -> None:
    request = make_mocked_request("GET", "/", headers={"x-request-id": given})
    assert edge.client_request_id(request) == kept


def test_a_forked_child_draws_other_request_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out, whatever happens
        try:
            os.write(write, edge.new_request_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode()
    os.waitpid(pid, 0)
    assert re.fullmatch(r"req_[0-9a-f]{24}", child)
    assert child != edge.new_request_id()  # not the parent's next one


async def test_one_access_event_per_request_without_secrets(client: TestClient[Any, Any]) -> None:
    with structlog.testing.capture_logs() as events:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "mock", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {SECRET}"},
        )
        assert response.status == 200
        # an upstream that is unreachable: the provider key is configured, never logged
        failed = await client.post(
            "/v1/chat/completions", json={"model": "gpt", "messages": [{"role": "user", "content": "x"}]}
        )
        assert failed.status == 502
        assert SECRET not in await failed.text()
    access = [e for e in events if e["event"] == "request"]
    assert len(access) == 2
    first = access[0]
    assert (first["status"], first["model"], first["provider"], first["upstream_model"]) == (
        200,
        "mock",
        "mock",
        "mock-1",
    )
    assert first["usage"]["total_tokens"] > 0
    assert isinstance(first["latency_ms"], float)
    assert access[1]["status"] == 502
    assert SECRET not in repr(events)


async def test_models_list_and_retrieve(client: TestClient[Any, Any]) -> None:
    listing = await (await client.get("/v1/models")).json()
    assert spec_errors("ListModelsResponse", listing) == []
    assert [m["id"] for m in listing["data"]] == ["mock", "gpt"]
    model = await (await client.get("/v1/models/mock")).json()
    assert spec_errors("Model", model) == []
    assert model["owned_by"] == "mock"
    missing = await client.get("/v1/models/nope")
    assert missing.status == 404


# ---- nesting: 400 up front for a request, 502 for an upstream reply orjson cannot write ---------------
def _deep_chat(depth: int) -> bytes:
    nest = b"[" * (depth - 4) + b"]" * (depth - 4)
    return (
        b'{"model":"mock","messages":[{"role":"user","content":"x"}],'
        b'"tools":[{"type":"function","function":{"name":"f","parameters":' + nest + b"}}]}"
    )


@pytest.mark.parametrize("depth", [101, 255, 1000])
async def test_a_request_nested_too_deeply_is_400_naming_the_limit(aiohttp_client: Any, depth: int) -> None:
    """orjson reads up to 1024 levels and writes 254: a body nested 255-1024 deep was a 500."""
    routes = ROUTES.replace("max_body_bytes: 2048", "max_body_bytes: 65536")
    registry = build_registry(config_from_text(routes, "routes.yaml", {"OPENAI_API_KEY": SECRET}))
    client = await aiohttp_client(create_app(RegistryHolder("routes.yaml", registry)))
    response = await client.post(
        "/v1/chat/completions", data=_deep_chat(depth), headers={"content-type": "application/json"}
    )
    assert response.status == 400
    error = await error_of(response)
    assert error["code"] == "json_too_deep"
    assert "100" in error["message"] and "limits.max_json_depth" in error["message"]
    assert response.headers["x-request-id"].startswith("req_")


class _DeepReplies:
    """An upstream transport whose every reply is `status` with `body`."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.body = status, body

    @asynccontextmanager
    async def open(self, target: Any, url: str, body: bytes) -> AsyncIterator[MockReply]:
        yield MockReply(self.status, {"Content-Type": "application/json"}, [self.body])


DEEP = b"[" * 300 + b"]" * 300
DIALECTS = """
providers:
  openai: {dialect: openai, base_url: "http://127.0.0.1:9/v1", api_key: k}
  anthropic: {dialect: anthropic, base_url: "http://127.0.0.1:9", api_key: k}
  gemini: {dialect: gemini, base_url: "http://127.0.0.1:9", api_key: k}
  cohere: {dialect: cohere, base_url: "http://127.0.0.1:9", api_key: k}
models:
  openai: [{provider: openai, model: m}]
  anthropic: [{provider: anthropic, model: m}]
  gemini: [{provider: gemini, model: m}]
  cohere: [{provider: cohere, model: m}]
"""


@pytest.mark.parametrize("model", ["openai", "anthropic", "gemini", "cohere"])
@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(400, b'{"error":{"message":' + DEEP + b"}}", id="error-message"),
        pytest.param(400, b'{"error":' + DEEP + b"}", id="error"),
        pytest.param(400, b'{"message":' + DEEP + b"}", id="message"),
    ],
)
async def test_an_upstream_reply_too_deep_to_write_is_a_clean_502_or_its_own_error(
    aiohttp_client: Any, model: str, status: int, body: bytes
) -> None:
    registry = build_registry(config_from_text(DIALECTS, "routes.yaml", {}))
    app = create_app(RegistryHolder("routes.yaml", registry), transports={"http": _DeepReplies(status, body)})
    client = await aiohttp_client(app)
    with structlog.testing.capture_logs() as events:
        response = await client.post(
            "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "x"}]}
        )
    assert response.status in (400, 502)  # the upstream's error relayed, or 502 when it cannot be written
    error = await error_of(response)
    if response.status == 502:
        assert error["code"] == "upstream_invalid_response"
    assert not [e for e in events if e["event"] == "unhandled_error"]
