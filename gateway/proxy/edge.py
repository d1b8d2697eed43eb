"""The edge of every request: request id, OpenAI-shaped errors for everything, one access event."""

from __future__ import annotations

import asyncio
import functools
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway import json_codec
from gateway.app_keys import ACCESS, CLIENT_PROTOCOL
from gateway.errors import GatewayError, error_body, error_type_for_status
from gateway.log_context import start_request
from gateway.logging_setup import AccessLog
from gateway.observability.keys import METRICS
from gateway.observability.metrics import GatewayMetrics
from gateway.proxy.request_record import RequestRecord

log = structlog.get_logger("gateway.access")
access_log = AccessLog("gateway.access")  # the one `request` event per request, on the direct JSON path

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CLIENT_CLOSED = 499  # nginx's convention for "client closed the connection"


# Request ids must be unique, not secret: 96 bits from a Mersenne Twister seeded from os.urandom
# (reseeded in a forked child) cost no syscall per request, unlike secrets.token_hex, and collide with
# odds of about n**2 / 2**97.
_ids = random.Random(os.urandom(32))
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


def new_request_id() -> str:
    """Ours, always (`req_` and 24 hex digits): what the x-request-id response header and our logs
    carry. An id a client sends could collide with another's or be chosen to confuse the logs."""
    return f"req_{_ids.getrandbits(96):024x}"


def client_request_id(request: web.Request) -> str | None:
    """The client's own x-request-id, when it is printable and at most 128 characters: logged as
    `client_request_id` next to ours, so that the two can be matched; never echoed back."""
    given = request.headers.get("x-request-id")
    if given and len(given) <= 128 and given.isprintable():
        return given
    return None


UNMATCHED = "unmatched"  # the catch-all route's name: no URL the gateway serves (a 404 leaves it out)
SERVER = "llm-gateway"  # every answer's Server header: aiohttp's default names Python's and its own versions
_QUOTED_PATH_MAX = 200  # characters of an unknown URL's path quoted back to the client


def served_urls(app: web.Application) -> str:
    """What the app serves, as `METHOD /path` in the order its routes were added (HEAD, which
    aiohttp adds to every GET, left out): read from the router, so it cannot drift from it."""
    served = [
        f"{route.method} {route.resource.canonical}"
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None and route.resource.name != UNMATCHED
    ]
    return ", ".join(dict.fromkeys(served))


def _quoted_path(request: web.Request) -> str:
    """The path as the client wrote it (percent-encoding kept; no query string, where keys travel),
    cut at _QUOTED_PATH_MAX characters."""
    path = request.rel_url.raw_path
    return path if len(path) <= _QUOTED_PATH_MAX else path[:_QUOTED_PATH_MAX] + "…"


def _http_error_message(request: web.Request, exc: web.HTTPException) -> tuple[str, str | None]:
    if isinstance(exc, web.HTTPNotFound):
        wrong = f"{request.method} {_quoted_path(request)}"
        served = served_urls(request.app)
        return f"Unknown request URL: {wrong}. The gateway serves {served}.", "unknown_url"
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        path = _quoted_path(request)
        return f"Method {exc.method} is not allowed for {path}; it takes {allowed}.", "method_not_allowed"
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return "The request body is too large.", "request_too_large"
    return exc.reason, None


def _error_response(request: web.Request, exc: GatewayError) -> web.Response:
    """A gateway error in the envelope of the client's protocol (OpenAI's unless it spoke another)."""
    headers = {"Content-Type": "application/json", **exc.headers}
    protocol = request.get(CLIENT_PROTOCOL)
    if protocol is None or protocol.canonical:
        return web.Response(status=exc.status, body=exc.body_bytes(), headers=headers)
    status, body = protocol.error(exc.status, exc.body()["error"])
    return web.Response(status=status, body=json_codec.dumps(body), headers=headers)


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own errors (no route, wrong method, body too large) in OpenAI's envelope: an unknown
    URL names the method and path it was asked for and lists what is served; a wrong method names
    the methods the URL takes."""
    status = exc.status
    message, code = _http_error_message(request, exc)
    body = error_body(message, error_type_for_status(status), None, code)
    headers = {"Content-Type": "application/json"}
    if "Allow" in exc.headers:
        headers["Allow"] = exc.headers["Allow"]
    return web.Response(status=status, body=json_codec.dumps(body), headers=headers)


def at_the_edge(handler: Handler, inner: Sequence[Middleware] = ()) -> Handler:
    """`handler` behind the edge (and the `inner` middlewares, e.g. tracing, between the two): what
    every route of the app serves. The edge wraps each route rather than being an aiohttp middleware:
    an app without middlewares skips aiohttp's middleware chain and its current-app wrapper on every
    request (1.4% of a relayed request's instructions)."""
    for middleware in reversed(inner):
        handler = functools.partial(middleware, handler=handler)
    behind = handler

    async def served(request: web.Request) -> web.StreamResponse:
        return await edge_middleware(request, behind)

    return served


async def unmatched(request: web.Request) -> web.StreamResponse:
    """The catch-all route (UNMATCHED, added last): a path no route serves is a 404, one served for
    other methods a 405 naming them, as aiohttp's router says, but answered behind the edge."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.name != UNMATCHED:
            _, methods = await resource.resolve(request)
            allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = new_request_id()
    given = client_request_id(request)
    start_request(
        {"request_id": request_id}
        if given is None
        else {"request_id": request_id, "client_request_id": given}
    )
    started = time.perf_counter()
    access = RequestRecord(started=started, response_headers={"x-request-id": request_id, "Server": SERVER})
    request[ACCESS] = access
    status = 500
    try:
        try:
            response = await handler(request)
        except GatewayError as exc:
            response = _error_response(request, exc)
        except web.HTTPException as exc:
            response = _http_error(request, exc)
        if not response.prepared:
            response.headers.update(access.response_headers)
        status = _CLIENT_CLOSED if access.client_closed else response.status
        return response
    except (asyncio.CancelledError, ConnectionResetError):
        status = _CLIENT_CLOSED
        raise
    except Exception:
        log.exception("unhandled_error", path=request.path)
        if request.writer.output_size > 0:
            # the handler's response is on the wire (a stream's 200 and some of its body): a second
            # response written into that body would corrupt it. Cut the connection instead; aiohttp,
            # seeing bytes already sent, writes nothing more either.
            if request.transport is not None:
                request.transport.close()
            raise
        body = error_body("The gateway failed to handle the request.", "server_error", None, "internal_error")
        return web.Response(
            status=500,
            body=json_codec.dumps(body),
            headers={"Content-Type": "application/json", **access.response_headers},
        )
    finally:
        elapsed = time.perf_counter() - started
        head = {
            "method": request.method,
            "path": request.path,
            "status": status,
            "latency_ms": int(elapsed * 1_000_000 + 0.5) / 1000,  # (rounded to 1 µs; cheaper than round())
        }
        access_log.event("request", access.access_fields(head))
        if access.served:
            _observe(request.app[METRICS], access, status, elapsed)


def _observe(metrics: GatewayMetrics, access: RequestRecord, status: int, elapsed: float) -> None:
    """One request's figures; model labels only for served (configured) aliases, so label values
    stay bounded whatever clients send."""
    provider = access.provider
    attempts = access.attempts
    upstream_s = None
    if attempts:
        upstream_ms = 0.0
        for attempt in attempts:
            upstream_ms += attempt.get("ms", 0.0)
        upstream_s = upstream_ms / 1000
    usage = access.usage
    tokens_in = tokens_out = None
    if type(usage) is dict:
        tokens_in, tokens_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
    ttfb_ms = access.ttfb_ms
    metrics.observe_request(  # (positional: once per request)
        access.model if provider else "",
        provider or "",
        status,
        bool(access.stream),
        elapsed,
        upstream_s,
        None if ttfb_ms is None else ttfb_ms / 1000,
        tokens_in,
        tokens_out,
    )
