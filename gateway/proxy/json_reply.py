"""A non-streamed upstream reply, as the client's JSON response."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from gateway import json_codec
from gateway.engine.dialect import Operation
from gateway.engine.protocol import ClientOperation, ClientProtocol
from gateway.errors import GatewayError
from gateway.proxy.reply_summary import canonical_reply, native_reply
from gateway.proxy.request_record import RequestRecord
from gateway.redaction import Redactor
from gateway.rules.context import EvalContext
from gateway.rules.functions import RuleFailure

if TYPE_CHECKING:
    from gateway.responses_store.conversation import Keeper

log = structlog.get_logger("gateway.proxy")

JSON_HEADERS = {"Content-Type": "application/json"}


class UpstreamReplyInvalid(Exception):
    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


def json_reply(
    raw: bytes,
    operation: Operation,
    ctx: EvalContext,
    access: RequestRecord,
    redactor: Redactor,
    client: ClientOperation | None = None,
    native: ClientProtocol | None = None,
    keep: Keeper | None = None,
) -> web.Response:
    """The client's response to a non-streamed upstream reply: its bytes as they are (identity
    dialects, or an upstream that speaks the client's protocol: `native`) or translated (by the
    dialect to the canonical form, then by the client's operation, when it has rules, to its own);
    a reply that is not JSON, that the rules refuse or cannot translate, or that is nested too
    deeply to write, is UpstreamReplyInvalid (a 502). `keep` takes a translated reply the client gets
    (the response store's)."""
    try:
        data = json_codec.loads(raw)
    except json_codec.JSONDecodeError:
        raise UpstreamReplyInvalid(
            GatewayError(
                502,
                "The upstream provider returned a body that is not valid JSON.",
                code="upstream_invalid_response",
            )
        ) from None
    if native is not None:  # the client's own protocol: its bytes, its usage made canonical
        if isinstance(data, dict) and native.passthrough_usage is not None:
            usage = native.passthrough_usage(data, ctx)
            access.usage = usage if isinstance(usage, dict) else None
        if access.trace_reply:
            native_reply(access, native, data)
        return web.Response(body=raw, headers=JSON_HEADERS)
    back = client.response if client is not None else None  # the client protocol's own form
    if operation.response.is_identity and back is None:
        if isinstance(data, dict):
            access.usage = _usage(data)
        if access.trace_reply:
            canonical_reply(access, data)
        return web.Response(body=raw, headers=JSON_HEADERS)  # the upstream's bytes, as they are
    try:
        out = data if operation.response.is_identity else operation.response.apply(data, ctx)
        if isinstance(out, dict):
            access.usage = _usage(out)  # canonical, whatever the client is shown
        if access.trace_reply:
            canonical_reply(access, out)
        if back is not None:
            out = back.apply(out, ctx)
    except RuleFailure as exc:  # fail(message) in a response rule: a reply the dialect refuses
        raise UpstreamReplyInvalid(
            GatewayError(502, redactor.redact(str(exc)), type_="server_error", code="translation_failed")
        ) from None
    except Exception as exc:
        log.warning("response_translation_error", error=redactor.redact(repr(exc)))
        raise UpstreamReplyInvalid(
            GatewayError(
                502, "The upstream provider's response could not be translated.", code="translation_failed"
            )
        ) from None
    try:
        encoded = json_codec.dumps(out)
    except json_codec.JSONEncodeError:  # orjson writes 254 levels: what the upstream nested deeper
        raise UpstreamReplyInvalid(
            GatewayError(
                502,
                "The upstream provider's reply is nested too deeply to be relayed (over 254 levels).",
                code="upstream_invalid_response",
            )
        ) from None
    if keep is not None:
        keep.reply(out, encoded)
    return web.Response(body=encoded, headers=JSON_HEADERS)


def _usage(reply: dict[str, Any]) -> dict[str, Any] | None:
    usage = reply.get("usage")
    return usage if isinstance(usage, dict) else None
