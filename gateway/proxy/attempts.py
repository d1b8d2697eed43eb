"""One request against its route: targets in order, retries with backoff, cooldowns, fallbacks.

A retry or a fallback happens only before the first byte reaches the client; once a response has
started, a failure becomes an error event in the stream (stream_relay). Every attempt is recorded
for the access log. A stream that started and then failed because of its upstream (stream_outcome)
still counts against the target's cooldown, and its outcome goes to the attempt's record and to the
`gateway_stream_outcomes_total` metric.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from gateway import json_codec
from gateway.app_keys import REGISTRY, AccessFields
from gateway.engine.dialect import Operation
from gateway.engine.registry import ModelRoute, Target
from gateway.errors import GatewayError
from gateway.observability.metrics import GatewayMetrics
from gateway.proxy.json_reply import UpstreamReplyInvalid, json_reply
from gateway.proxy.off_loop import run_sized
from gateway.proxy.stream_outcome import UPSTREAM_FAULTS, StreamOutcome
from gateway.proxy.stream_relay import relay_stream
from gateway.proxy.upstream_errors import error_response
from gateway.routing.cooldown import Cooldowns
from gateway.routing.retry import FALLBACK_STATUSES
from gateway.rules.compiler import is_false
from gateway.rules.context import EvalContext
from gateway.rules.functions import RuleFailure
from gateway.rules.template import pop_path
from gateway.upstream.transport import Transport, UpstreamFailure

log = structlog.get_logger("gateway.proxy")

# the reply names the request's parameters the upstream did not get (see _prepare)
DROPPED_PARAMS = "x-gateway-dropped-params"

ENDPOINTS = {"chat": "/v1/chat/completions", "completions": "/v1/completions", "embeddings": "/v1/embeddings"}


@dataclass(slots=True)
class Failed:
    """An attempt that produced no client response; `error` is what the client gets if none does."""

    error: GatewayError | web.Response
    outcome: str
    retryable: bool = False
    fallback: bool = True  # another target may do better
    target_at_fault: bool = True  # counts towards the target's cooldown
    retry_after: str | None = None


@dataclass(slots=True)
class Exchange:
    request: web.Request
    body: dict[str, Any]
    operation_name: str
    stream: bool
    transports: dict[str, Transport]
    cooldowns: Cooldowns
    rng: random.Random
    access: AccessFields
    metrics: GatewayMetrics
    body_size: int = 0  # bytes of the client's body: a large one is translated off the loop (off_loop)


async def serve(exchange: Exchange, route: ModelRoute) -> web.StreamResponse:
    attempts: list[dict[str, Any]] = []
    exchange.access["attempts"] = attempts
    last: Failed | None = None
    tried = 0
    for target, probe in _candidates(exchange, route, attempts):
        # a probe is claimed only now, when the target is really about to be tried
        if probe and not exchange.cooldowns.available(target.key, target.provider.cooldown):
            continue
        if tried:
            exchange.metrics.fallback(route.alias)
        tried += 1
        exchange.access.update(provider=target.provider.name, upstream_model=target.model)
        result = await _serve_target(exchange, target, attempts)
        if isinstance(result, web.StreamResponse):
            return result
        last = result
        if not result.fallback:
            break
    if last is None:  # every target was claimed by other requests' probes in the meantime
        raise GatewayError(
            503,
            f"Model '{route.alias}' is recovering from failures; try again shortly.",
            code="targets_cooling_down",
        )
    if isinstance(last.error, GatewayError):
        raise last.error
    return last.error


def _candidates(
    exchange: Exchange, route: ModelRoute, attempts: list[dict[str, Any]]
) -> list[tuple[Target, bool]]:
    """The route's targets in try order, each with whether trying it claims a probe. Resting ones
    are left out while any other remains; when all are resting they are tried anyway (the
    upstream's own answer beats an invented one). Asking claims nothing."""
    cooldowns = exchange.cooldowns
    single = route.root.target
    if single is not None:  # one target (the usual route): tried whatever its state
        return [(single, cooldowns.status(single.key, single.provider.cooldown) == "probe")]
    ordered = [(t, cooldowns.status(t.key, t.provider.cooldown)) for t in route.root.order(exchange.rng)]
    if all(status == "resting" for _, status in ordered):
        return [(target, False) for target, _ in ordered]
    kept = []
    for target, status in ordered:
        if status == "resting":
            attempts.append(
                {"provider": target.provider.name, "model": target.model, "outcome": "cooling_down"}
            )
        else:
            kept.append((target, status == "probe"))
    return kept


async def _serve_target(exchange: Exchange, target: Target, attempts: list[dict[str, Any]]) -> Any:
    """A response, or the Failed that ends this target's turn (after its retries)."""
    policy = target.retry
    prepared = await run_sized(exchange.body_size, _prepare, exchange, target)
    if isinstance(prepared, Failed):
        attempts.append(
            {"provider": target.provider.name, "model": target.model, "outcome": prepared.outcome}
        )
        return prepared
    operation, payload, ctx, dropped = prepared
    headers = exchange.access["response_headers"]
    if dropped:  # said for the target that answers (a fallback's own, or none)
        headers[DROPPED_PARAMS] = dropped
    elif DROPPED_PARAMS in headers:
        del headers[DROPPED_PARAMS]
    for attempt in range(1, policy.attempts + 1):
        started = time.perf_counter()
        record: dict[str, Any] = {
            "provider": target.provider.name,
            "model": target.model,
            "outcome": "abandoned",
        }
        attempts.append(record)  # recorded before it ends: a client that leaves still leaves a trace
        try:
            result = await _attempt(exchange, target, operation, payload, ctx)
            record["outcome"] = "ok" if isinstance(result, web.StreamResponse) else result.outcome
        finally:
            record["ms"] = round((time.perf_counter() - started) * 1000, 3)
            streamed: StreamOutcome | None = exchange.access.get("stream_outcome")
            if streamed is not None:  # this attempt's stream started (so no other attempt follows)
                record["stream_outcome"] = streamed
                exchange.metrics.stream_outcome(exchange.body["model"], target.provider.name, streamed)
        if isinstance(result, web.StreamResponse):
            if streamed in UPSTREAM_FAULTS:  # the 200 went out, then the upstream failed the stream
                _count_failure(exchange, target)
            elif streamed != "internal_error":  # (the gateway's own failure says nothing of the target)
                exchange.cooldowns.succeeded(target.key)
            return result
        if result.target_at_fault:
            _count_failure(exchange, target)
        if not result.retryable or attempt == policy.attempts:
            return result
        delay = policy.delay(attempt, result.retry_after, exchange.rng)
        if delay is None:  # the upstream asks for a longer wait than we will make the client sit through
            return result
        exchange.metrics.retry(target.provider.name, target.model)
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _count_failure(exchange: Exchange, target: Target) -> None:
    if exchange.cooldowns.failed(target.key, target.provider.cooldown):
        log.warning("target_cooling_down", provider=target.provider.name, model=target.model)
        exchange.metrics.cooldown(target.provider.name, target.model)


def _prepare(exchange: Exchange, target: Target) -> tuple[Operation, bytes, EvalContext, str] | Failed:
    """The upstream body for this target, and the parameters left out of it (comma-separated: those
    the dialect ignores, and unsupported ones under `unsupported_params: drop`), or why this target
    cannot take the request at all."""
    provider = target.provider
    alias = exchange.body["model"]
    operation = provider.operations.get(exchange.operation_name)
    if operation is None:
        error = GatewayError(
            400,
            f"Model '{alias}' (provider '{provider.name}', dialect '{provider.dialect.name}') "
            f"does not support {ENDPOINTS[exchange.operation_name]}.",
            param="model",
            code="unsupported_endpoint",
        )
        return Failed(error, "unsupported_endpoint", target_at_fault=False)
    if operation.models:  # limits and edits of its own for some upstream models
        operation = operation.for_model(target.model)
    ctx = EvalContext(request=exchange.body, created=int(time.time()))
    source = dict(exchange.body)
    source["model"] = target.model
    dropped = ""
    try:
        if operation.unsupported:
            dropped = _screen_unsupported(operation, source, ctx, target)
        if operation.ignored:
            dropped = ",".join(filter(None, (dropped, *(p for p, _ in operation.ignored if p in source))))
        payload = source if operation.request.is_identity else operation.request.apply(source, ctx)
    except GatewayError as exc:
        return Failed(exc, exc.code if isinstance(exc.code, str) else "rejected", target_at_fault=False)
    except RuleFailure as exc:
        error = GatewayError(400, str(exc), code="unsupported_value")
        return Failed(error, "unsupported_value", target_at_fault=False)
    except Exception as exc:
        log.warning("request_translation_error", provider=provider.name, error=repr(exc))
        error = GatewayError(
            400,
            f"The request could not be translated for provider '{provider.name}'.",
            code="translation_failed",
        )
        return Failed(error, "translation_failed", target_at_fault=False)
    return operation, json_codec.dumps(payload), ctx, dropped


def _screen_unsupported(
    operation: Operation, source: dict[str, Any], ctx: EvalContext, target: Target
) -> str:
    """Parameters the dialect cannot honour: a 400 naming the first, or dropped (provider's choice;
    the dropped ones are returned, comma-separated). Conditions see the body as request rules do:
    `model` is the target's (a parameter may be unsupported by one upstream model only)."""
    provider = target.provider
    dropped: list[str] = []
    for unsupported in operation.unsupported:
        # a request that does not have the parameter does not use it (and most do not: no condition
        # is evaluated for them)
        if unsupported.path[0] not in source or is_false(unsupported.when(source, ctx)):
            continue
        if provider.unsupported_params == "drop":
            pop_path(source, unsupported.path)
            dropped.append(unsupported.param)
            continue
        param = unsupported.param
        why = f": {unsupported.why}" if unsupported.why else ""
        raise GatewayError(
            400,
            f"Unsupported parameter: '{param}' is not supported by model '{ctx.request.get('model')}' "
            f"(provider '{provider.name}'){why}. Remove it, or set unsupported_params: drop on the provider.",
            param=param,
            code="unsupported_parameter",
        )
    return ",".join(dropped)


async def _attempt(
    exchange: Exchange, target: Target, operation: Operation, payload: bytes, ctx: EvalContext
) -> web.StreamResponse | Failed:
    provider = target.provider
    policy = target.retry
    transport = exchange.transports[provider.transport]
    access = exchange.access
    url = provider.url(operation, exchange.stream, target.model)
    try:
        async with transport.open(target, url, payload) as reply:
            access["upstream_status"] = reply.status
            ctx.upstream_headers = reply.headers  # for upstream_header(name) in rules
            if reply.status >= 300:
                response = await error_response(reply, provider, ctx)
                retryable = policy.retryable("status", reply.status)
                return Failed(
                    response,
                    f"status:{reply.status}",
                    retryable=retryable,
                    fallback=retryable or reply.status in FALLBACK_STATUSES,
                    target_at_fault=retryable or reply.status in FALLBACK_STATUSES,
                    retry_after=reply.headers.get("retry-after"),
                )
            if exchange.stream:
                upstream = exchange.request.app[REGISTRY].current.config.upstream
                return await relay_stream(
                    exchange.request,
                    reply,
                    operation,
                    ctx,
                    access,
                    access["response_headers"],
                    max_event_bytes=upstream.max_event_bytes,
                    redactor=provider.redactor,
                )
            raw = await reply.read()
            return await run_sized(len(raw), json_reply, raw, operation, ctx, access, provider.redactor)
    except UpstreamFailure as failure:
        error = GatewayError(failure.status, failure.message, type_="server_error", code=failure.code)
        # a saturated pool is the gateway's state, not the target's: no cooldown (another target may do)
        at_fault = failure.kind != "saturated"
        return Failed(error, failure.kind, retryable=policy.retryable(failure.kind), target_at_fault=at_fault)
    except UpstreamReplyInvalid as invalid:
        return Failed(invalid.error, "invalid_reply", retryable=policy.retryable("broken"))
