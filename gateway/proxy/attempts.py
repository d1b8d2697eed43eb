"""One request against its route: targets in order, retries with backoff, cooldowns, fallbacks.

A retry or a fallback happens only before the first byte reaches the client; once a response has
started, a failure becomes an error event in the stream (stream_relay). Every attempt is recorded
for the access log. A stream that started and then failed because of its upstream (stream_outcome)
still counts against the target's cooldown, and its outcome goes to the attempt's record and to the
`gateway_stream_outcomes_total` metric.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aiohttp import web

from gateway import json_codec
from gateway.app_keys import REGISTRY
from gateway.engine.client_stream import CANONICAL_SINK, sink_for
from gateway.engine.registry import ModelRoute, Target
from gateway.errors import GatewayError
from gateway.proxy.json_reply import JSON_HEADERS, UpstreamReplyInvalid, json_reply
from gateway.proxy.local_answers import ESTIMATE_HEADER, LOCAL_ANSWERS
from gateway.proxy.off_loop import run_sized
from gateway.proxy.stream_outcome import UPSTREAM_FAULTS, StreamOutcome
from gateway.proxy.stream_relay import relay_stream
from gateway.proxy.target_request import (
    Exchange,
    Failed,
    Prepared,
    forwarded_headers,
    prepare,
    upstream_serves,
)
from gateway.proxy.upstream_errors import error_response, native_error_response
from gateway.routing.retry import FALLBACK_STATUSES
from gateway.upstream.transport import UpstreamFailure

log = structlog.get_logger("gateway.proxy")

# the reply names the request's parameters the upstream did not get (see _prepare), and the
# client's tools a translated upstream cannot run (server tools: web search, code execution, ...)
DROPPED_PARAMS = "x-gateway-dropped-params"
DROPPED_TOOLS = "x-gateway-dropped-tools"


async def serve(exchange: Exchange, route: ModelRoute) -> web.StreamResponse:
    attempts: list[dict[str, Any]] = []
    exchange.access.attempts = attempts
    last: Failed | None = None
    tried = 0
    for target, probe in _candidates(exchange, route, attempts):
        # a probe is claimed only now, when the target is really about to be tried
        if probe and not exchange.cooldowns.available(target.key, target.provider.cooldown):
            continue
        if tried:
            exchange.metrics.fallback(route.alias)
        tried += 1
        exchange.access.provider = target.provider.name
        exchange.access.upstream_model = target.model
        result = await _serve_target(exchange, target, attempts)
        if not isinstance(result, Failed):  # (a response: StreamResponse's isinstance is an ABC's, slower)
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


async def _serve_target(
    exchange: Exchange, target: Target, attempts: list[dict[str, Any]]
) -> web.StreamResponse | Failed:
    """A response, or the Failed that ends this target's turn (after its retries)."""
    policy = target.retry
    local = LOCAL_ANSWERS.get(exchange.operation_name)
    if local is not None and not upstream_serves(exchange, target):  # the gateway answers it itself
        answer = await run_sized(exchange.body_size, lambda: local(exchange.canonical()))
        attempts.append({"provider": target.provider.name, "model": target.model, "outcome": "local"})
        headers = {**JSON_HEADERS, ESTIMATE_HEADER: "estimate"}
        return web.Response(body=json_codec.dumps(answer), headers=headers)
    prepared = await run_sized(exchange.body_size, prepare, exchange, target)
    if isinstance(prepared, Failed):
        attempts.append(
            {"provider": target.provider.name, "model": target.model, "outcome": prepared.outcome}
        )
        return prepared
    refused = _left_out(exchange, target, prepared)
    if refused is not None:
        attempts.append({"provider": target.provider.name, "model": target.model, "outcome": refused.outcome})
        return refused
    for attempt in range(1, policy.attempts + 1):
        started = time.perf_counter()
        record: dict[str, Any] = {
            "provider": target.provider.name,
            "model": target.model,
            "outcome": "abandoned",
        }
        attempts.append(record)  # recorded before it ends: a client that leaves still leaves a trace
        try:
            result = await _attempt(exchange, target, prepared)
            record["outcome"] = result.outcome if isinstance(result, Failed) else "ok"
        finally:
            record["ms"] = round((time.perf_counter() - started) * 1000, 3)
            streamed: StreamOutcome | None = exchange.access.stream_outcome
            if streamed is not None:  # this attempt's stream started (so no other attempt follows)
                record["stream_outcome"] = streamed
                exchange.metrics.stream_outcome(exchange.body["model"], target.provider.name, streamed)
        if not isinstance(result, Failed):
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


def _left_out(exchange: Exchange, target: Target, prepared: Prepared) -> Failed | None:
    """Say what this target will not get, for the target that answers (a fallback's own, or none):
    parameters (x-gateway-dropped-params) and the client's server tools (x-gateway-dropped-tools),
    unless the provider refuses those (`server_tools: reject`: this target's Failed)."""
    headers = exchange.access.response_headers
    if prepared.dropped:
        headers[DROPPED_PARAMS] = prepared.dropped
    else:
        headers.pop(DROPPED_PARAMS, None)
    tools = exchange.dropped_tools if not prepared.native else ""
    if tools and target.provider.server_tools == "reject":
        error = GatewayError(
            400,
            f"Server tools cannot run on provider '{target.provider.name}' (it is reached by translation): "
            f"{tools}. Remove them, or set server_tools: drop on the provider.",
            param="tools",
            code="unsupported_server_tools",
        )
        return Failed(error, "server_tools", target_at_fault=False)
    if tools:
        headers[DROPPED_TOOLS] = tools
    else:
        headers.pop(DROPPED_TOOLS, None)
    exchange.access.dropped_tools = tools or None
    return None


def _count_failure(exchange: Exchange, target: Target) -> None:
    if exchange.cooldowns.failed(target.key, target.provider.cooldown):
        log.warning("target_cooling_down", provider=target.provider.name, model=target.model)
        exchange.metrics.cooldown(target.provider.name, target.model)


async def _attempt(exchange: Exchange, target: Target, prepared: Prepared) -> web.StreamResponse | Failed:
    provider = target.provider
    policy = target.retry
    transport = exchange.transports[provider.transport]
    access = exchange.access
    operation, payload, ctx = prepared.operation, prepared.payload, prepared.ctx
    url = provider.url(operation, exchange.stream, target.model)
    native = exchange.protocol if prepared.native else None
    forwarded = forwarded_headers(exchange, provider) if native is not None else None
    try:
        opened = (
            transport.open(target, url, payload)
            if forwarded is None
            else (transport.open(target, url, payload, forwarded))
        )
        async with opened as reply:
            access.upstream_status = reply.status
            ctx.upstream_headers = reply.headers  # for upstream_header(name) in rules
            if reply.status >= 300:
                if native is not None:  # the upstream's own error is the client's protocol already
                    response = await native_error_response(reply, provider)
                else:
                    response = await error_response(reply, provider, ctx, exchange.protocol)
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
                client, protocol = exchange.client, exchange.protocol
                sink = (
                    sink_for(client, protocol, ctx.request, exchange.body, exchange.keep)
                    if client and protocol and not native
                    else CANONICAL_SINK
                )
                return await relay_stream(
                    exchange.request,
                    reply,
                    operation,
                    ctx,
                    access,
                    access.response_headers,
                    max_event_bytes=upstream.max_event_bytes,
                    redactor=provider.redactor,
                    sink=sink,
                    native=native,
                    keeper=exchange.keep,
                )
            raw = await reply.read()
            response = await run_sized(
                len(raw),
                json_reply,
                raw,
                operation,
                ctx,
                access,
                provider.redactor,
                exchange.client,
                native,
                exchange.keep,
            )
            if exchange.keep is not None and exchange.keep.kept is not None:
                await exchange.keep.landed()  # stored before the client has it (any replica finds it)
            return response
    except UpstreamFailure as failure:
        error = GatewayError(failure.status, failure.message, type_="server_error", code=failure.code)
        # a saturated pool is the gateway's state, not the target's: no cooldown (another target may do)
        at_fault = failure.kind != "saturated"
        return Failed(error, failure.kind, retryable=policy.retryable(failure.kind), target_at_fault=at_fault)
    except UpstreamReplyInvalid as invalid:
        return Failed(invalid.error, "invalid_reply", retryable=policy.retryable("broken"))
