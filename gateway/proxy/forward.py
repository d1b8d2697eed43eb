"""The client operations: read and validate the body (in the client's protocol), make it canonical,
find the model's route, and serve it; and the models listing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.app_keys import (
    ACCESS,
    CLIENT_PROTOCOL,
    COOLDOWNS,
    LIMITS,
    REGISTRY,
    RESPONSES,
    RNG,
    TRANSPORTS,
    VALIDATOR,
)
from gateway.auth.keys import check_model
from gateway.auth.limits import enforce
from gateway.config.model import GatewayKey
from gateway.engine.protocol import ClientOperation, ClientProtocol, protocols
from gateway.engine.registry import ModelRoute, Registry
from gateway.errors import GatewayError
from gateway.observability.keys import METRICS
from gateway.observability.metrics import RateLimitKind
from gateway.proxy.attempts import serve
from gateway.proxy.http_errors import DECODED_CODINGS, unreadable_body, unsupported_encoding
from gateway.proxy.off_loop import run_sized
from gateway.proxy.request_validation import RequestValidator, decode_json_body
from gateway.proxy.target_request import Exchange
from gateway.response_cache.serving import serve_cached
from gateway.responses_store.conversation import continue_and_keep
from gateway.responses_store.handlers import LOCAL_HANDLERS
from gateway.rules.context import EvalContext
from gateway.spend.budget import Charge, enforce_budget
from gateway.spend.cost import charge

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def model_not_found(alias: Any, reason: str | None = None) -> GatewayError:
    detail = f" ({reason})" if reason else ""
    return GatewayError(
        404,
        f"The model '{alias}' does not exist or you do not have access to it.{detail}",
        param="model",
        code="model_not_found",
    )


def resolve_route(registry: Registry, alias: Any) -> ModelRoute:
    route = registry.routes.get(alias) if isinstance(alias, str) else None
    if route is not None:
        return route
    raise model_not_found(alias, registry.unavailable.get(alias) if isinstance(alias, str) else None)


async def _read_body(request: web.Request, seconds: float) -> bytes:
    """The whole body, decoded, from a client given `seconds` to send it (a slow client is cut off).
    A Content-Encoding aiohttp does not decode is a 415 (the bytes would reach the JSON parser as
    they are); a body whose encoding or framing breaks while it is read is a 400."""
    coding = request.headers.get("Content-Encoding")
    if coding is not None and coding.lower() not in DECODED_CODINGS:
        raise unsupported_encoding(coding)
    try:
        if request.content.is_eof():  # already all here (the usual case): no timer needed
            return await request.read()
        async with asyncio.timeout(seconds):
            return await request.read()
    except TimeoutError:
        raise GatewayError(
            408,
            "The request body was not received in time.",
            type_="invalid_request_error",
            code="request_timeout",
        ) from None
    except web.RequestPayloadError as exc:
        raise unreadable_body(exc.__cause__) from None


def _checked_body(
    validator: RequestValidator, operation: ClientOperation, raw: bytes, max_depth: int
) -> dict[str, Any]:
    """The client's body, validated against its operation's schema (made canonical later, by the
    first target that needs it: see Exchange.canonical)."""
    body = decode_json_body(raw, max_depth)
    validator.validate(operation.key, body)
    return body


def presented_key(request: web.Request, protocol: ClientProtocol) -> str | None:
    """The gateway key as an Authorization value, from the first of the protocol's key headers the
    request has (`x-api-key: k` counts as `Bearer k`)."""
    for name in protocol.keys:
        value = request.headers.get(name)
        if value is not None:
            return value if name == "authorization" else f"Bearer {value}"
    return None


async def forward(
    request: web.Request, operation: ClientOperation, protocol: ClientProtocol
) -> web.StreamResponse:
    app = request.app
    registry = app[REGISTRY].current
    access = request[ACCESS]
    if not protocol.canonical:
        request[CLIENT_PROTOCOL] = protocol
        if protocol.request_id_header is not None:  # the gateway's own id, where the client's SDK reads one
            access.response_headers[protocol.request_id_header] = access.response_headers["x-request-id"]
        for name in protocol.log_headers:
            value = request.headers.get(name)
            if value is not None and len(value) <= 128 and value.isprintable():
                access.client_headers[name.replace("-", "_")] = value
    key = None if registry.keyring.open else registry.keyring.identify(presented_key(request, protocol))
    if key is not None:
        access.key = key.name
    limits = registry.config.limits
    raw = await _read_body(request, limits.body_timeout)
    body = await run_sized(len(raw), _checked_body, app[VALIDATOR], operation, raw, limits.max_json_depth)
    access.model = body["model"]
    if key is not None:
        check_model(key, body["model"])
    route = resolve_route(registry, body["model"])
    if key is not None and key.counted:  # rate limits or a budget
        return await _limited(request, key, operation, body, route, len(raw))
    return await _serve(request, operation, body, route, len(raw))


def handler_for(operation: ClientOperation) -> Handler:
    """The aiohttp handler of one client operation (one row of the operations table)."""

    protocol = protocols()[operation.protocol]  # looked up once, not per request
    if operation.handler is not None:
        return _local_handler(operation, protocol)

    async def handle(request: web.Request) -> web.StreamResponse:
        return await forward(request, operation, protocol)

    handle.__name__ = f"handle_{operation.key.replace('.', '_')}"
    return handle


def _local_handler(operation: ClientOperation, protocol: ClientProtocol) -> Handler:
    """An operation the gateway serves itself (stored responses), for the key the request presents
    (its owner; None when the gateway is open)."""
    local = LOCAL_HANDLERS[str(operation.handler)]

    async def handle(request: web.Request) -> web.StreamResponse:
        if not protocol.canonical:
            request[CLIENT_PROTOCOL] = protocol
        registry = request.app[REGISTRY].current
        key = None if registry.keyring.open else registry.keyring.identify(presented_key(request, protocol))
        if key is not None:
            request[ACCESS].key = key.name
        return await local(request, key.name if key is not None else None)

    handle.__name__ = f"handle_{operation.key.replace('.', '_')}"
    return handle


async def _limited(
    request: web.Request,
    key: GatewayKey,
    operation: ClientOperation,
    body: dict[str, Any],
    route: ModelRoute,
    body_size: int,
) -> web.StreamResponse:
    """Within the key's per-minute limits and its budget (429 otherwise, before any upstream call); the
    tokens it used and what it cost are counted after, in the background. A store that cannot answer
    serves the request uncounted, or refuses it with a 503 (`auth.store_failure`,
    `auth.budget_store_failure`)."""
    limits = request.app[LIMITS]
    access = request[ACCESS]
    window = await limits.admit(key)
    if window is None:  # the store failed and failure is open: no counting, no rate headers
        return await _serve(request, operation, body, route, body_size)
    try:
        access.response_headers.update(enforce(key, window))
        enforce_budget(key, window.spent_usd, time.time())
    except GatewayError as exc:
        kind: RateLimitKind = (
            "budget" if exc.code == "insufficient_quota" else "tokens" if exc.type == "tokens" else "requests"
        )
        access.rate_limited = kind
        request.app[METRICS].rate_limited(key.name, kind)
        raise
    try:
        return await _serve(request, operation, body, route, body_size)
    finally:
        usage = access.usage
        if usage is not None and key.tpm is not None:
            limits.spend_later(key, int(usage.get("total_tokens") or 0))
        if usage is not None and key.budget is not None:  # (priced by _serve; no price: 0 USD)
            tokens_in, tokens_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
            limits.charge_later(
                key,
                Charge(
                    access.cost_usd or 0.0,
                    tokens_in if isinstance(tokens_in, int) else 0,
                    tokens_out if isinstance(tokens_out, int) else 0,
                ),
            )


async def _serve(
    request: web.Request,
    operation: ClientOperation,
    body: dict[str, Any],
    route: ModelRoute,
    body_size: int,
) -> web.StreamResponse:
    app = request.app
    access = request[ACCESS]
    stream = body.get("stream") is True
    access.stream = stream
    translated = operation.request is not None
    dropped_tools = ""
    if translated and operation.dropped_tools is not None and "tools" in body:
        names = operation.dropped_tools(body, EvalContext(request=body))
        if isinstance(names, list) and names:
            dropped_tools = ",".join(str(name) for name in names)
    exchange = Exchange(
        request=request,
        body=body,
        operation_name=operation.canonical,
        stream=stream,
        transports=app[TRANSPORTS],
        cooldowns=app[COOLDOWNS],
        rng=app[RNG],
        access=access,
        metrics=app[METRICS],
        body_size=body_size,
        client=operation if translated else None,
        protocol=request[CLIENT_PROTOCOL] if translated else None,  # (set by forward: not canonical)
        dropped_tools=dropped_tools,
    )
    if operation.stored_events and translated and (store := app.get(RESPONSES)) is not None:
        # previous_response_id rebuilt into the conversation; the response made handed to the store
        await continue_and_keep(exchange, store, operation, route)
    try:
        if route.cache is not None:  # (the registry the request started with: a reload changes nothing)
            return await serve_cached(exchange, route, operation.key, route.cache)
        return await serve(exchange, route)
    finally:
        if access.usage is not None:  # priced (log, metric, header) before any budget is charged
            charge(access, route.alias, route.prices, app[METRICS].spend)
