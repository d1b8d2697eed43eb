"""A non-streamed upstream reply, as the client's JSON response."""

from __future__ import annotations

import structlog
from aiohttp import web

from gateway import json_codec
from gateway.app_keys import AccessFields
from gateway.engine.dialect import Operation
from gateway.errors import GatewayError
from gateway.redaction import Redactor
from gateway.rules.context import EvalContext
from gateway.rules.functions import RuleFailure

log = structlog.get_logger("gateway.proxy")

JSON_HEADERS = {"Content-Type": "application/json"}


class UpstreamReplyInvalid(Exception):
    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


def json_reply(
    raw: bytes, operation: Operation, ctx: EvalContext, access: AccessFields, redactor: Redactor
) -> web.Response:
    """The client's response to a non-streamed upstream reply: its bytes as they are (identity
    dialects) or translated; a reply that is not JSON, that the rules refuse or cannot translate, or
    that is nested too deeply to write, is UpstreamReplyInvalid (a 502)."""
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
    if operation.response.is_identity:
        if isinstance(data, dict):
            access["usage"] = data.get("usage")
        return web.Response(body=raw, headers=JSON_HEADERS)  # the upstream's bytes, as they are
    try:
        out = operation.response.apply(data, ctx)
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
    if isinstance(out, dict):
        access["usage"] = out.get("usage")
    return web.Response(body=encoded, headers=JSON_HEADERS)
