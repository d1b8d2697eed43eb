"""The edge of every request: request id, OpenAI-shaped errors for everything, one access event."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from gateway import json_codec
from gateway.app_keys import ACCESS, AccessFields
from gateway.errors import GatewayError, error_body, error_type_for_status

log = structlog.get_logger("gateway.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CLIENT_CLOSED = 499  # nginx's convention for "client closed the connection"


def _request_id(request: web.Request) -> str:
    given = request.headers.get("x-request-id", "")
    if 0 < len(given) <= 128 and given.isprintable():
        return given
    return "req_" + secrets.token_hex(12)


_HTTP_ERRORS = {
    404: (
        "Unknown request URL. Check the URL for typos; the gateway serves /v1/chat/completions, "
        "/v1/completions, /v1/embeddings and /v1/models.",
        "unknown_url",
    ),
    405: ("Method not allowed for this URL.", "method_not_allowed"),
    413: ("The request body is too large.", "request_too_large"),
}


def _http_error(exc: web.HTTPException) -> web.Response:
    """aiohttp's own errors (no route, wrong method, body too large) in OpenAI's envelope."""
    status = exc.status
    message, code = _HTTP_ERRORS.get(status, (exc.reason, None))
    body = error_body(message, error_type_for_status(status), None, code)
    headers = {"Content-Type": "application/json"}
    if "Allow" in exc.headers:
        headers["Allow"] = exc.headers["Allow"]
    return web.Response(status=status, body=json_codec.dumps(body), headers=headers)


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = _request_id(request)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    access: AccessFields = {"response_headers": {"x-request-id": request_id}}
    request[ACCESS] = access
    started = time.perf_counter()
    status = 500
    try:
        try:
            response = await handler(request)
        except GatewayError as exc:
            response = web.Response(
                status=exc.status,
                body=exc.body_bytes(),
                headers={"Content-Type": "application/json", **exc.headers},
            )
        except web.HTTPException as exc:
            response = _http_error(exc)
        if not response.prepared:
            response.headers.update(access["response_headers"])
        status = _CLIENT_CLOSED if access.get("client_closed") else response.status
        return response
    except (asyncio.CancelledError, ConnectionResetError):
        status = _CLIENT_CLOSED
        raise
    except Exception:
        log.exception("unhandled_error", path=request.path)
        body = error_body("The gateway failed to handle the request.", "server_error", None, "internal_error")
        return web.Response(
            status=500, body=json_codec.dumps(body), headers={"Content-Type": "application/json"}
        )
    finally:
        access.pop("response_headers", None)
        log.info(
            "request",
            method=request.method,
            path=request.path,
            status=status,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            **access,
        )
