"""What one target is sent: the exchange a request makes with its route, the body for a target
(translated through the target's dialect, or the client's own for a dialect that speaks its
protocol), the parameters it cannot honour (a 400, or dropped), and the client headers relayed."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from gateway import json_codec
from gateway.engine.dialect import Operation
from gateway.engine.protocol import ClientOperation, ClientProtocol, operations
from gateway.engine.registry import Provider, Target
from gateway.errors import GatewayError
from gateway.observability.metrics import GatewayMetrics
from gateway.proxy.request_record import RequestRecord
from gateway.routing.cooldown import Cooldowns
from gateway.rules.compiler import is_false
from gateway.rules.context import EvalContext
from gateway.rules.functions import RuleFailure
from gateway.rules.template import pop_path
from gateway.upstream.transport import Transport

if TYPE_CHECKING:
    from gateway.responses_store.conversation import Keeper

log = structlog.get_logger("gateway.proxy")


def _endpoint(exchange: Exchange) -> str:
    """The path the client called (from the operations table)."""
    if exchange.client is not None:
        return exchange.client.paths[0]
    return next(op.paths[0] for op in operations() if op.key == exchange.operation_name)


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
    body: dict[str, Any]  # as the client sent it (the canonical form itself for OpenAI's protocol)
    operation_name: str
    stream: bool
    transports: dict[str, Transport]
    cooldowns: Cooldowns
    rng: random.Random
    access: RequestRecord
    metrics: GatewayMetrics
    body_size: int = 0  # bytes of the client's body: a large one is translated off the loop (off_loop)
    # the client's protocol and operation, when it is not the canonical one (its body is translated)
    client: ClientOperation | None = None
    protocol: ClientProtocol | None = None
    dropped_tools: str = ""  # the client's tools a translated upstream cannot run (comma-separated)
    translated: dict[str, Any] | None = None  # the body in the canonical form, once a target needed it
    # the body with the stored conversation it continues (previous_response_id), sent in its place;
    # `body` stays what the client sent (the reply echoes it)
    continued: dict[str, Any] | None = None
    keep: Keeper | None = None  # hands the reply to the response store (translated replies)

    def canonical(self) -> dict[str, Any]:
        """The request in the canonical form: made from the client's body the first time a target
        needs it (an upstream that speaks the client's protocol never does); what cannot be made
        canonical is a 400 naming why."""
        if self.client is None or self.client.request is None:
            return self.body
        if self.translated is None:
            try:
                body = self.body if self.continued is None else self.continued
                self.translated = self.client.request.apply(body, EvalContext(request=body))
            except RuleFailure as exc:
                raise GatewayError(400, str(exc), code="unsupported_value") from None
        return self.translated


@dataclass(slots=True)
class Prepared:
    """What a target is sent: `native` when its dialect speaks the client's protocol (the client's
    body with the target's model, relayed back as it comes)."""

    operation: Operation
    payload: bytes
    ctx: EvalContext
    dropped: str
    native: bool = False


def upstream_serves(exchange: Exchange, target: Target) -> bool:
    """Whether the target's dialect has the operation, or speaks the client's protocol itself."""
    provider = target.provider
    if exchange.operation_name in provider.operations:
        return True
    return exchange.client is not None and exchange.client.key in provider.native


def prepare(exchange: Exchange, target: Target) -> Prepared | Failed:
    """The upstream body for this target, and the parameters left out of it (comma-separated: those
    the dialect ignores, and unsupported ones under `unsupported_params: drop`), or why this target
    cannot take the request at all."""
    provider = target.provider
    client, protocol = exchange.client, exchange.protocol
    if client is not None and protocol is not None and client.request is not None:
        native = provider.native.get(client.key)
        if native is not None:  # the upstream speaks the client's protocol: its body, its model
            body = dict(exchange.body if exchange.continued is None else exchange.continued)
            body["model"] = target.model
            ctx = EvalContext(request=exchange.body, created=int(time.time()))
            return Prepared(native, json_codec.dumps(body), ctx, "", native=True)
    try:
        canonical = exchange.canonical()
    except GatewayError as exc:
        return Failed(exc, "unsupported_value", target_at_fault=False)
    alias = canonical["model"]
    operation = provider.operations.get(exchange.operation_name)
    if operation is None:
        error = GatewayError(
            400,
            f"Model '{alias}' (provider '{provider.name}', dialect '{provider.dialect.name}') "
            f"does not support {_endpoint(exchange)}.",
            param="model",
            code="unsupported_endpoint",
        )
        return Failed(error, "unsupported_endpoint", target_at_fault=False)
    if operation.models:  # limits and edits of its own for some upstream models
        operation = operation.for_model(target.model)
    client_request = exchange.body if client is not None else None
    ctx = EvalContext(request=canonical, created=int(time.time()), client_request=client_request)
    source = dict(canonical)
    source["model"] = target.model
    dropped = ""
    try:
        if operation.unsupported:
            dropped = screen_unsupported(operation, source, ctx, target, client.params if client else None)
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
    if client is not None:  # named as the client names them, with its own that no translation carries
        dropped = ",".join(filter(None, (client.client_names(dropped), *client.ignored_in(exchange.body))))
    return Prepared(operation, json_codec.dumps(payload), ctx, dropped)


def screen_unsupported(
    operation: Operation,
    source: dict[str, Any],
    ctx: EvalContext,
    target: Target,
    client_names: Mapping[str, str] | None = None,
) -> str:
    """Parameters the dialect cannot honour: a 400 naming the first (by the client's name for it,
    when its protocol gives it another), or dropped (provider's choice; the dropped ones are
    returned, comma-separated). Conditions see the body as request rules do: `model` is the
    target's (a parameter may be unsupported by one upstream model only)."""
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
        param = client_names.get(unsupported.param, unsupported.param) if client_names else unsupported.param
        why = f": {unsupported.why}" if unsupported.why else ""
        raise GatewayError(
            400,
            f"Unsupported parameter: '{param}' is not supported by model '{ctx.request.get('model')}' "
            f"(provider '{provider.name}'){why}. Remove it, or set unsupported_params: drop on the provider.",
            param=param,
            code="unsupported_parameter",
        )
    return ",".join(dropped)


def forwarded_headers(exchange: Exchange, provider: Provider) -> dict[str, str] | None:
    """The client's headers its protocol relays to an upstream that speaks it (e.g. a beta list), as
    the provider's `client_headers` allows: all (the default), none, or the listed values only."""
    protocol = exchange.protocol
    if protocol is None or not protocol.forward_headers:
        return None
    sent = exchange.request.headers
    policies = provider.client_headers
    found: dict[str, str] = {}
    for name in protocol.forward_headers:
        value = sent.get(name)
        if value is None:
            continue
        if not policies:  # (the usual provider: every one relayed as sent)
            found[name] = value
            continue
        policy = policies.get(name, "all")
        if policy == "none":
            continue
        if not isinstance(policy, str):  # an allow-list of comma-separated values
            value = ",".join(v for v in (item.strip() for item in value.split(",")) if v in policy)
            if not value:
                continue
        found[name] = value
    return found or None
