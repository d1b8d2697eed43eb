"""The OpenAI endpoints: validate, route by model, translate, send, translate back."""

from __future__ import annotations

import time
from typing import Any

import structlog
from aiohttp import web

from gateway import json_codec
from gateway.app_keys import ACCESS, REGISTRY, TRANSPORTS, VALIDATOR, AccessFields
from gateway.engine.dialect import Operation
from gateway.engine.registry import Registry, Target
from gateway.errors import GatewayError
from gateway.proxy.request_validation import decode_json_body
from gateway.proxy.stream_relay import relay_stream
from gateway.proxy.upstream_errors import error_response
from gateway.rules.compiler import is_false
from gateway.rules.context import EvalContext
from gateway.rules.functions import RuleFailure
from gateway.rules.template import pop_path
from gateway.upstream.transport import UpstreamFailure

log = structlog.get_logger("gateway.proxy")

ENDPOINTS = {"chat": "/v1/chat/completions", "completions": "/v1/completions", "embeddings": "/v1/embeddings"}
JSON_HEADERS = {"Content-Type": "application/json"}


def resolve_target(registry: Registry, alias: Any) -> Target:
    targets = registry.routes.get(alias) if isinstance(alias, str) else None
    if targets:
        return targets[0]
    reason = registry.unavailable.get(alias) if isinstance(alias, str) else None
    detail = f" ({reason})" if reason else ""
    raise GatewayError(
        404,
        f"The model '{alias}' does not exist or you do not have access to it.{detail}",
        param="model",
        code="model_not_found",
    )


def _operation_for(target: Target, operation: str, alias: str) -> Operation:
    found = target.provider.operations.get(operation)
    if found is None:
        raise GatewayError(
            400,
            f"Model '{alias}' (provider '{target.provider.name}', dialect '{target.provider.dialect.name}') "
            f"does not support {ENDPOINTS[operation]}.",
            param="model",
            code="unsupported_endpoint",
        )
    return found


def _screen_unsupported(
    operation: Operation, source: dict[str, Any], ctx: EvalContext, target: Target
) -> None:
    """Parameters the dialect cannot honour: a 400 naming the first, or dropped (provider's choice)."""
    provider = target.provider
    for path, condition in operation.unsupported:
        if is_false(condition(ctx.request, ctx)):
            continue
        if provider.unsupported_params == "drop":
            pop_path(source, path)
            continue
        param = ".".join(path)
        raise GatewayError(
            400,
            f"Unsupported parameter: '{param}' is not supported by model '{ctx.request.get('model')}' "
            f"(provider '{provider.name}'). Remove it, or set unsupported_params: drop on the provider.",
            param=param,
            code="unsupported_parameter",
        )


def _translate_request(operation: Operation, source: dict[str, Any], ctx: EvalContext, provider: str) -> Any:
    try:
        return operation.request.apply(source, ctx)
    except RuleFailure as exc:
        raise GatewayError(400, str(exc), code="unsupported_value") from None
    except Exception as exc:
        log.warning("request_translation_error", provider=provider, error=repr(exc))
        raise GatewayError(
            400, f"The request could not be translated for provider '{provider}'.", code="translation_failed"
        ) from None


def _json_reply(raw: bytes, operation: Operation, ctx: EvalContext, access: AccessFields) -> web.Response:
    try:
        data = json_codec.loads(raw)
    except json_codec.JSONDecodeError:
        raise GatewayError(
            502,
            "The upstream provider returned a body that is not valid JSON.",
            code="upstream_invalid_response",
        ) from None
    if operation.response.is_identity:
        if isinstance(data, dict):
            access["usage"] = data.get("usage")
        return web.Response(body=raw, headers=JSON_HEADERS)  # the upstream's bytes, as they are
    try:
        out = operation.response.apply(data, ctx)
    except RuleFailure as exc:  # fail(message) in a response rule: a reply the dialect refuses
        raise GatewayError(502, str(exc), type_="server_error", code="translation_failed") from None
    except Exception as exc:
        log.warning("response_translation_error", error=repr(exc))
        raise GatewayError(
            502, "The upstream provider's response could not be translated.", code="translation_failed"
        ) from None
    if isinstance(out, dict):
        access["usage"] = out.get("usage")
    return web.Response(body=json_codec.dumps(out), headers=JSON_HEADERS)


async def forward(request: web.Request, operation_name: str) -> web.StreamResponse:
    app = request.app
    access: AccessFields = request[ACCESS]
    body = decode_json_body(await request.read())
    app[VALIDATOR].validate(operation_name, body)
    alias = body["model"]
    access["model"] = alias
    target = resolve_target(app[REGISTRY].current, alias)
    provider = target.provider
    operation = _operation_for(target, operation_name, alias)
    stream = body.get("stream") is True
    access.update(provider=provider.name, upstream_model=target.model, stream=stream)

    ctx = EvalContext(request=body, created=int(time.time()))
    source = dict(body)
    source["model"] = target.model
    if operation.unsupported:
        _screen_unsupported(operation, source, ctx, target)
    payload = json_codec.dumps(_translate_request(operation, source, ctx, provider.name))
    transport = app[TRANSPORTS][provider.transport]
    started = time.perf_counter()
    try:
        async with transport.open(provider, provider.url(operation, stream, target.model), payload) as reply:
            access["upstream_status"] = reply.status
            ctx.upstream_headers = reply.headers  # for upstream_header(name) in response/stream rules
            if reply.status >= 300:
                return await error_response(reply, provider, ctx)
            if stream:
                return await relay_stream(request, reply, operation, ctx, access, access["response_headers"])
            raw = await reply.read()
            return _json_reply(raw, operation, ctx, access)
    except UpstreamFailure as failure:
        raise GatewayError(failure.status, failure.message, type_="server_error", code=failure.code) from None
    finally:
        access["upstream_ms"] = round((time.perf_counter() - started) * 1000, 3)


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
        resolve_target(registry, alias)  # raises the 404 with the reason
    return web.Response(body=body, headers=JSON_HEADERS)


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")
