"""Serving the app: aiohttp's server, with a client error below the API answered like any other error
(OpenAI's envelope, an `x-request-id`) and nothing of the raw request in any log.

aiohttp answers what it cannot parse (a bare LF, a NUL, a line too long, broken chunked framing) in
`RequestHandler.handle_error`: text/plain quoting the raw request head, after logging "Error handling
request" with a traceback whose message quotes it too, gateway key included. `GatewayRequestHandler`
answers with a JSON 4xx instead and logs `bad_http_request` with the status, the error's class and
the peer; `GatewayRunner` serves an app with it. The CLI and the test servers both serve through
`GatewayRunner`, so the tests exercise what production runs.
"""

from __future__ import annotations

import traceback
from typing import Any

import structlog
from aiohttp import web
from aiohttp.helpers import set_exception
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler, _ErrInfo

from gateway.config.model import Limits
from gateway.errors import GatewayError
from gateway.proxy.edge import SERVER, new_request_id
from gateway.proxy.http_errors import reason, unparsable_request

log = structlog.get_logger("gateway.http")

_CLIENT_AT_FAULT = (HttpProcessingError, web.RequestPayloadError)
_parse = RequestHandler.data_received


def safe_stack(exc: BaseException) -> str:
    """The frames of a traceback (file, line, code) without the exception's message, which may quote
    request bytes."""
    return "".join(traceback.format_tb(exc.__traceback__)) + type(exc).__name__


class GatewayRequestHandler(RequestHandler):
    """aiohttp's per-connection protocol, with our answers and log lines for what it handles itself."""

    __slots__ = ()

    def data_received(self, data: bytes) -> None:
        # on every read of every connection: the base method called directly (no super() object),
        # ~80 ns in all
        messages = self._messages
        queued = len(messages)
        _parse(self, data)
        if len(messages) > queued and type(messages[-1][0]) is _ErrInfo:
            self._fail_body_in_flight()

    def _fail_body_in_flight(self) -> None:
        """The parser failed inside a request's body (e.g. a bad chunk size sent after the headers):
        aiohttp queues an error answer for later and leaves that request's handler waiting for the
        rest of a body that will never come (until limits.body_timeout). End the body with the error
        instead, so that its handler answers now, and close the connection after that answer: its
        framing is lost. The body is the one of the request queued just before the error, or else of
        the request being handled."""
        messages = self._messages
        current = self._current_request
        if len(messages) > 1 and not messages[-2][1].is_eof():
            body = messages[-2][1]
        elif current is not None and not current.content.is_eof():
            body = current.content
        else:
            return  # the fault is in a request of its own: the queued answer is its answer
        error = messages.pop()[0]
        assert isinstance(error, _ErrInfo)
        set_exception(body, web.RequestPayloadError("the request body is malformed"), error.exc)
        self.close()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """What aiohttp could not parse or a handler let escape, in OpenAI's envelope; never `message`
        (aiohttp's words, quoting the raw request) nor the exception's."""
        if request.writer.output_size > 0:  # a response has started: no other can be sent
            raise ConnectionError("Response is sent already, cannot send another response")
        request_id = new_request_id()
        if status == 400 or isinstance(exc, _CLIENT_AT_FAULT):
            error = unparsable_request(exc)
            log.info(
                "bad_http_request",
                status=error.status,
                reason=reason(exc),
                peer=request.remote,
                request_id=request_id,
            )
        else:  # a handler's exception the edge did not turn into a response (it turns every one)
            error = GatewayError(
                status,
                "The gateway failed to handle the request.",
                type_="server_error",
                code="internal_error",
            )
            if not isinstance(exc, ConnectionError):
                log.error("unhandled_error", status=status, reason=reason(exc), request_id=request_id)
        response = web.Response(
            status=error.status,
            body=error.body_bytes(),
            headers={"Content-Type": "application/json", "x-request-id": request_id, "Server": SERVER},
        )
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's own error log lines ("Unhandled exception", ...) without the exception's message.
        A client's broken body met again when aiohttp drains it after the answer (a 400 already, or a
        route that never reads a body) is a debug line; anything else an error with the frames of its
        traceback."""
        exc = kw.get("exc_info")
        detail = args[0][:200] if args and isinstance(args[0], str) else ""
        if isinstance(exc, _CLIENT_AT_FAULT):
            log.debug("bad_http_request_body", reason=reason(exc.__cause__ or exc), detail=detail)
        elif isinstance(exc, BaseException):
            log.error("http_server_error", reason=reason(exc), detail=detail, stack=safe_stack(exc))
        else:
            log.error("http_server_error", detail=detail)


class GatewayServer(web.Server):
    """aiohttp's low-level server, making a GatewayRequestHandler for each connection."""

    def __call__(self) -> RequestHandler:
        return GatewayRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """web.AppRunner serving the app through GatewayServer (what `aiohttp.web` sets up, otherwise)."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return GatewayServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **made._kwargs,
        )


def gateway_runner(app: web.Application, limits: Limits, **overrides: Any) -> GatewayRunner:
    """The runner the gateway is served with (the CLI; the test servers, which may override a
    setting such as `shutdown_timeout`)."""
    settings: dict[str, Any] = {
        "handler_cancellation": True,  # a client that goes away cancels its handler: the upstream closes
        "access_log": None,  # one structlog access event per request instead
        "shutdown_timeout": limits.drain_timeout,  # SIGTERM: in-flight requests and streams get this long
        "keepalive_timeout": limits.keepalive_timeout,
        "max_line_size": limits.max_header_bytes,
        "max_field_size": limits.max_header_bytes,
        "max_headers": limits.max_headers,
    }
    return GatewayRunner(app, **{**settings, **overrides})
