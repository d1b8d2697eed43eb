"""What a client that asks for the wrong thing is told: an unknown URL names its method and path and
lists what is served (from the app's router); with gateway keys, /v1/models needs a key and lists
only that key's models; and no answer carries the server's software versions (over raw HTTP, as
production serves it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config.loader import config_from_text, key_digest
from gateway.engine.registry import build_registry
from gateway.proxy.edge import UNMATCHED, at_the_edge
from gateway.reload import RegistryHolder
from gateway.server import gateway_runner
from tests.support.spec_check import spec_errors

OPEN_ROUTES = """
providers:
  mock: {dialect: mock, transport: mock}
  openai: {dialect: openai, base_url: "http://127.0.0.1:9/v1", api_key: "${OPENAI_API_KEY}"}
models:
  mock: [{provider: mock, model: mock-1}]
  mock-mini: [{provider: mock, model: mock-2}]
  echo: [{provider: mock, model: mock-3}]
  gpt: [{provider: openai, model: gpt-4o}]
"""
ALL_KEY = "gw-all-models-0123456789abcdef"
SOME_KEY = "gw-some-models-0123456789abcdef"
NONE_KEY = "gw-no-models-0123456789abcdef"
KEYED_ROUTES = (
    OPEN_ROUTES
    + f"""
auth:
  keys:
    - {{name: all, hash: "{key_digest(ALL_KEY)}"}}
    - {{name: some, hash: "{key_digest(SOME_KEY)}", models: ["mock*", gpt]}}
    - {{name: none, hash: "{key_digest(NONE_KEY)}", models: [], metrics: true}}
"""
)
SERVED = (
    "POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings, POST /v1/messages, "
    "POST /v1/messages/count_tokens, POST /v1/responses, GET /v1/responses/{response_id}, "
    "DELETE /v1/responses/{response_id}, GET /v1/responses/{response_id}/input_items, "
    "GET /v1/models, GET /v1/models/{model}, "
    "GET /healthz, GET /readyz, GET /metrics, GET /v1/gateway/keys/{name}/spend, GET /"
)


def _app(routes: str) -> web.Application:
    registry = build_registry(config_from_text(routes, "routes.yaml", {}))  # OPENAI_API_KEY unset
    return create_app(RegistryHolder("routes.yaml", registry))


@pytest.fixture
async def open_client(aiohttp_client: Any) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await aiohttp_client(_app(OPEN_ROUTES))
    return client


@pytest.fixture
async def keyed_client(aiohttp_client: Any) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await aiohttp_client(_app(KEYED_ROUTES))
    return client


async def error_of(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = await response.json()
    assert spec_errors("ErrorResponse", body) == []
    return body["error"]  # type: ignore[no-any-return]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ---- unknown URLs and methods ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/assistants"),
        ("POST", "/v1/messages/batches"),
        ("GET", "/v2/models"),
        ("DELETE", "/v1/models/"),
    ],
)
async def test_an_unknown_url_names_its_method_and_path_and_lists_what_is_served(
    open_client: TestClient[Any, Any], method: str, path: str
) -> None:
    response = await open_client.request(method, path, json={"model": "mock"})
    assert response.status == 404
    error = await error_of(response)
    assert error == {
        "message": f"Unknown request URL: {method} {path}. The gateway serves {SERVED}.",
        "type": "invalid_request_error",
        "param": None,
        "code": "unknown_url",
    }


async def test_an_unknown_url_is_quoted_as_sent_and_cut_when_long(open_client: TestClient[Any, Any]) -> None:
    """The path as the client wrote it (percent-encoding kept, no query string: it may hold a key),
    at most 200 characters of it."""
    response = await open_client.get("/v1/caf%C3%A9%0A?api_key=sk-secret-in-the-query")
    message = (await error_of(response))["message"]
    assert message.startswith("Unknown request URL: GET /v1/caf%C3%A9%0A. The gateway serves ")
    assert "sk-secret" not in message
    long_path = "/v1/" + "x" * 500
    message = (await error_of(await open_client.get(long_path))).get("message", "")
    assert message.startswith(f"Unknown request URL: GET {long_path[:200]}…. The gateway serves ")


async def test_the_list_of_what_is_served_comes_from_the_router(aiohttp_client: Any) -> None:
    app = _app(OPEN_ROUTES)

    async def assistants(_request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_post("/v1/assistants", assistants)
    client = await aiohttp_client(app)
    message = (await error_of(await client.post("/v1/nothing")))["message"]
    assert message.endswith(f"{SERVED}, POST /v1/assistants.")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("POST", "/v1/models", "GET, HEAD"),
        ("PUT", "/healthz", "GET, HEAD"),
    ],
)
async def test_a_wrong_method_names_it_and_the_methods_the_url_takes(
    open_client: TestClient[Any, Any], method: str, path: str, allowed: str
) -> None:
    response = await open_client.request(method, path)
    assert response.status == 405
    assert response.headers["Allow"] == allowed.replace(" ", "")
    assert await error_of(response) == {
        "message": f"Method {method} is not allowed for {path}; it takes {allowed}.",
        "type": "invalid_request_error",
        "param": None,
        "code": "method_not_allowed",
    }


# ---- /v1/models with and without gateway keys -----------------------------------------------------------
async def test_without_keys_models_are_listed_to_anyone(open_client: TestClient[Any, Any]) -> None:
    listing = await (await open_client.get("/v1/models")).json()
    assert spec_errors("ListModelsResponse", listing) == []
    assert [m["id"] for m in listing["data"]] == ["mock", "mock-mini", "echo"]
    assert (await open_client.get("/v1/models/echo")).status == 200


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/mock"])
@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        (bearer("gw-not-a-key"), "invalid_api_key"),
        ({"Authorization": "Basic x"}, "missing_api_key"),
    ],
)
async def test_with_keys_the_models_endpoints_need_a_key(
    keyed_client: TestClient[Any, Any], path: str, headers: dict[str, str], code: str
) -> None:
    response = await keyed_client.get(path, headers=headers)
    assert response.status == 401
    assert (await error_of(response))["code"] == code


@pytest.mark.parametrize(
    ("key", "listed"),
    [(ALL_KEY, ["mock", "mock-mini", "echo"]), (SOME_KEY, ["mock", "mock-mini"]), (NONE_KEY, [])],
)
async def test_a_key_is_listed_only_the_models_it_may_use(
    keyed_client: TestClient[Any, Any], key: str, listed: list[str]
) -> None:
    response = await keyed_client.get("/v1/models", headers=bearer(key))
    assert response.status == 200
    listing = await response.json()
    assert spec_errors("ListModelsResponse", listing) == []
    assert [m["id"] for m in listing["data"]] == listed
    for alias in ["mock", "mock-mini", "echo"]:
        one = await keyed_client.get(f"/v1/models/{alias}", headers=bearer(key))
        if alias in listed:
            assert one.status == 200
            assert (await one.json())["id"] == alias
        else:
            # as OpenAI answers for a model the key cannot access: it does not exist, for this key
            assert one.status == 404
            assert await error_of(one) == {
                "message": f"The model '{alias}' does not exist or you do not have access to it.",
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_found",
            }


async def test_a_disabled_model_says_why_only_to_a_key_that_may_use_it(
    keyed_client: TestClient[Any, Any],
) -> None:
    allowed = await error_of(await keyed_client.get("/v1/models/gpt", headers=bearer(SOME_KEY)))
    assert "OPENAI_API_KEY" in allowed["message"]
    refused = await error_of(await keyed_client.get("/v1/models/gpt", headers=bearer(NONE_KEY)))
    assert refused["message"] == "The model 'gpt' does not exist or you do not have access to it."


# ---- no software versions on the wire (raw HTTP, the production runner) --------------------------------
async def _fail(request: web.Request) -> web.StreamResponse:
    raise RuntimeError("a handler's own failure")


@asynccontextmanager
async def serving(routes: str) -> AsyncIterator[int]:
    registry = build_registry(config_from_text(routes, "routes.yaml", {}))
    app = create_app(RegistryHolder("routes.yaml", registry))
    app.router.add_get("/v1/fail", at_the_edge(_fail))  # (a route like the app's own: behind the edge)
    runner = gateway_runner(app, registry.config.limits, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str]]:
    """Send `raw` and read everything until the server closes: the status and the header fields."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10.0)
    finally:
        writer.close()
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1")
    status_line, *lines = head.split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        assert name.lower() not in headers, f"{name} sent twice"
        headers[name.lower()] = value.strip()
    return int(status_line.split()[1]), headers


def request(method: str, path: str, body: bytes = b"", extra: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n{extra}"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


CHAT = b'{"model":"mock","messages":[{"role":"user","content":"hi"}]}'
STREAM = b'{"model":"mock","stream":true,"messages":[{"role":"user","content":"hi"}]}'
ALL = f"Authorization: Bearer {ALL_KEY}\r\n"
METRICS = f"Authorization: Bearer {NONE_KEY}\r\n"
ANSWERS = [
    pytest.param(request("POST", "/v1/chat/completions", CHAT, ALL), 200, id="chat"),
    pytest.param(request("POST", "/v1/chat/completions", STREAM, ALL), 200, id="stream"),
    pytest.param(request("GET", "/v1/models", extra=ALL), 200, id="models"),
    pytest.param(request("GET", "/healthz"), 200, id="healthz"),
    pytest.param(request("GET", "/readyz"), 200, id="readyz"),
    pytest.param(request("GET", "/metrics", extra=METRICS), 200, id="metrics"),
    pytest.param(request("POST", "/v1/chat/completions", CHAT), 401, id="no-key"),
    pytest.param(request("POST", "/v1/assistants", CHAT), 404, id="unknown-url"),
    pytest.param(request("GET", "/v1/chat/completions"), 405, id="wrong-method"),
    pytest.param(request("POST", "/v1/chat/completions", b"{" * 3000, ALL), 413, id="too-large"),
    pytest.param(request("GET", "/v1/fail"), 500, id="handler-failed"),
    pytest.param(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nBad Header: x\r\n\r\n", 400, id="unparsable"),
    pytest.param(b"GET /" + b"x" * 3000 + b" HTTP/1.1\r\nHost: gw\r\n\r\n", 431, id="line-too-long"),
]


@pytest.mark.parametrize(("raw", "status"), ANSWERS)
async def test_no_answer_names_the_server_software_or_its_version(raw: bytes, status: int) -> None:
    """aiohttp sends `Server: Python/3.11 aiohttp/3.x` unless told otherwise: a versionless
    `Server: llm-gateway` on every answer, the gateway's own and aiohttp's."""
    routes = KEYED_ROUTES + "limits: {max_body_bytes: 2048, max_header_bytes: 2048}\n"
    async with serving(routes) as port:
        got, headers = await exchange(port, raw)
    assert got == status
    assert headers["server"] == "llm-gateway"
    assert not any(word in value for value in headers.values() for word in ("aiohttp", "Python", "python"))


def test_the_served_list_is_the_apps_router_in_order() -> None:
    """The routes the app registers, in that order, HEAD and the catch-all left out: what SERVED spells."""
    app = _app(OPEN_ROUTES)
    served = [
        f"{route.method} {route.resource.canonical}"
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None and route.resource.name != UNMATCHED
    ]
    assert ", ".join(served) == SERVED
