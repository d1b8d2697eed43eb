"""An upstream's error reply, whatever its shape, turned into OpenAI's envelope and status.

An error body can echo the request the upstream received, the provider's key included: everything
taken from it on its way to the client (every string of the error, headers the dialect derives) or to
the logs goes through the provider's redactor. Headers relayed by name (retry-after, ...) are not.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from gateway import json_codec
from gateway.engine.protocol import ClientProtocol
from gateway.engine.registry import Provider
from gateway.errors import normalize_error
from gateway.rules.context import EvalContext
from gateway.upstream.transport import UpstreamReply

log = structlog.get_logger("gateway.upstream")

_PASSED_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")
_MAX_ERROR_TEXT = 2000


async def error_response(
    reply: UpstreamReply, provider: Provider, ctx: EvalContext, protocol: ClientProtocol | None = None
) -> web.Response:
    """The upstream's error in OpenAI's envelope, or in `protocol`'s when the client speaks another."""
    raw = await reply.read()
    text = raw[:_MAX_ERROR_TEXT].decode("utf-8", errors="replace")
    body: Any
    try:
        body = json_codec.loads(raw)
    except json_codec.JSONDecodeError:
        body = None
    spec = provider.dialect.errors
    redactor = provider.redactor
    upstream_status = reply.status
    status = spec.status_map.get(upstream_status, upstream_status if upstream_status >= 400 else 502)
    produced = None
    upstream_headers = {name.lower(): value for name, value in reply.headers.items()}
    source = {"status": upstream_status, "body": body, "text": text, "headers": upstream_headers}
    if spec.error is not None:
        try:
            produced = spec.error(source, ctx)
        except Exception as exc:
            log.warning("error_rule_failed", provider=provider.name, error=redactor.redact(repr(exc)))
    error = normalize_error(
        produced, status, f"upstream provider {provider.name!r} returned HTTP {upstream_status}"
    )
    error = redactor.redact_json(error)
    headers = {"Content-Type": "application/json"}
    for name in _PASSED_HEADERS:
        value = reply.headers.get(name)
        if value is not None:
            headers[name] = value
    for name, rule in spec.headers:  # headers the dialect derives, unless the upstream sent them
        if name.lower() in upstream_headers:
            continue
        try:
            derived = rule(source, ctx)
            if derived is None:
                continue
            text = derived if isinstance(derived, str) else json_codec.dumps_str(derived)
        except Exception as exc:  # a rule that met data it was not written for, or a value too deep
            error_text = redactor.redact(repr(exc))
            log.warning("error_header_rule_failed", provider=provider.name, header=name, error=error_text)
            continue
        headers[name] = redactor.redact(text)
    envelope: dict[str, Any] = {"error": error}
    if protocol is not None and not protocol.canonical:
        status, envelope = protocol.error(status, error)
    return web.Response(status=status, body=json_codec.dumps(envelope), headers=headers)


async def native_error_response(reply: UpstreamReply, provider: Provider) -> web.Response:
    """An error from an upstream that speaks the client's protocol: its status and body as they are
    (the client's SDK knows them), every configured secret redacted; Retry-After and the like kept."""
    raw = await reply.read()
    text = provider.redactor.redact(raw.decode("utf-8", errors="replace"))
    headers = {"Content-Type": reply.headers.get("Content-Type", "application/json")}
    for name in _PASSED_HEADERS:
        value = reply.headers.get(name)
        if value is not None:
            headers[name] = value
    status = reply.status if reply.status >= 400 else 502
    return web.Response(status=status, body=text.encode(), headers=headers)
