"""The OpenAI endpoints: read and validate the body, find the model's route, and serve it."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from gateway.app_keys import ACCESS, COOLDOWNS, LIMITS, REGISTRY, RNG, TRANSPORTS, VALIDATOR, AccessFields
from gateway.auth.keys import check_model
from gateway.auth.limits import enforce
from gateway.config.model import GatewayKey
from gateway.engine.registry import ModelRoute, Registry
from gateway.errors import GatewayError
from gateway.observability.keys import METRICS
from gateway.proxy.attempts import JSON_HEADERS, Exchange, serve
from gateway.proxy.request_validation import decode_json_body


def resolve_route(registry: Registry, alias: Any) -> ModelRoute:
    route = registry.routes.get(alias) if isinstance(alias, str) else None
    if route is not None:
        return route
    reason = registry.unavailable.get(alias) if isinstance(alias, str) else None
    detail = f" ({reason})" if reason else ""
    raise GatewayError(
        404,
        f"The model '{alias}' does not exist or you do not have access to it.{detail}",
        param="model",
        code="model_not_found",
    )


async def _read_body(request: web.Request, seconds: float) -> bytes:
    """The whole body, from a client given `seconds` to send it (a slow client is cut off)."""
    if request.content.is_eof():  # already all here (the usual case): no timer needed
        return await request.read()
    try:
        async with asyncio.timeout(seconds):
            return await request.read()
    except TimeoutError:
        raise GatewayError(
            408,
            "The request body was not received in time.",
            type_="invalid_request_error",
            code="request_timeout",
        ) from None


async def forward(request: web.Request, operation_name: str) -> web.StreamResponse:
    app = request.app
    registry = app[REGISTRY].current
    access: AccessFields = request[ACCESS]
    key = None if registry.keyring.open else registry.keyring.identify(request.headers.get("Authorization"))
    if key is not None:
        access["key"] = key.name
    body = decode_json_body(await _read_body(request, registry.config.limits.body_timeout))
    app[VALIDATOR].validate(operation_name, body)
    access["model"] = body["model"]
    if key is not None:
        check_model(key, body["model"])
    route = resolve_route(registry, body["model"])
    if key is not None and (key.rpm is not None or key.tpm is not None):
        return await _limited(request, key, operation_name, body, route)
    return await _serve(request, operation_name, body, route)


async def _limited(
    request: web.Request, key: GatewayKey, operation_name: str, body: dict[str, Any], route: ModelRoute
) -> web.StreamResponse:
    """Within the key's per-minute limits (429 otherwise); the tokens it used are counted after."""
    limits = request.app[LIMITS]
    access: AccessFields = request[ACCESS]
    try:
        access["response_headers"].update(enforce(key, await limits.admit(key)))
    except GatewayError as exc:
        access["rate_limited"] = exc.type
        request.app[METRICS].rate_limited(key.name, "tokens" if exc.type == "tokens" else "requests")
        raise
    try:
        return await _serve(request, operation_name, body, route)
    finally:
        usage = access.get("usage")
        if isinstance(usage, dict) and key.tpm is not None:
            await limits.spend(key, int(usage.get("total_tokens") or 0))


async def _serve(
    request: web.Request, operation_name: str, body: dict[str, Any], route: ModelRoute
) -> web.StreamResponse:
    app = request.app
    access: AccessFields = request[ACCESS]
    stream = body.get("stream") is True
    access["stream"] = stream
    exchange = Exchange(
        request=request,
        body=body,
        operation_name=operation_name,
        stream=stream,
        transports=app[TRANSPORTS],
        cooldowns=app[COOLDOWNS],
        rng=app[RNG],
        access=access,
        metrics=app[METRICS],
    )
    return await serve(exchange, route)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await forward(request, "chat")


async def completions(request: web.Request) -> web.StreamResponse:
    return await forward(request, "completions")


async def embeddings(request: web.Request) -> web.StreamResponse:
    return await forward(request, "embeddings")


async def list_models(request: web.Request) -> web.Response:
    return web.Response(body=request.app[REGISTRY].current.models_body, headers=JSON_HEADERS)


async def retrieve_model(request: web.Request) -> web.Response:
    alias = request.match_info["model"]
    registry = request.app[REGISTRY].current
    body = registry.model_body(alias)
    if body is None:
        resolve_route(registry, alias)  # raises the 404 with the reason
    return web.Response(body=body, headers=JSON_HEADERS)
