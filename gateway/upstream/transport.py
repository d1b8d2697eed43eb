"""Sending a body upstream and reading what comes back, over HTTP (or the built-in mock).

Transport never looks at bodies: auth headers were fixed when the registry was built, rules run
elsewhere. Upstream failures become `UpstreamFailure` (502 unreachable/broken, 504 timed out).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import aiohttp
from yarl import URL

from gateway.config.model import Timeouts
from gateway.engine.registry import Target
from gateway.routing.retry import Failure


class UpstreamFailure(Exception):
    """The upstream could not be reached (`connect`), broke off (`broken`), or timed out (`timeout`)."""

    def __init__(self, status: int, message: str, code: str, kind: Failure) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.kind: Failure = kind


def _failure(provider: str, exc: BaseException) -> UpstreamFailure:
    if isinstance(exc, TimeoutError):
        return UpstreamFailure(
            504, f"upstream provider {provider!r} timed out", "upstream_timeout", "timeout"
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamFailure(
            502, f"upstream provider {provider!r} is unreachable", "upstream_unreachable", "connect"
        )
    return UpstreamFailure(
        502,
        f"upstream provider {provider!r} failed: {type(exc).__name__}",
        "upstream_connection_error",
        "broken",
    )


class UpstreamReply(Protocol):
    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    def abort(self) -> None:
        """Close the upstream connection now (the reply was not read to the end)."""


class Transport(Protocol):
    def open(self, target: Target, url: str, body: bytes) -> AbstractAsyncContextManager[UpstreamReply]: ...


class HttpReply:
    __slots__ = ("_provider", "_response", "headers", "status")

    def __init__(self, provider: str, response: aiohttp.ClientResponse) -> None:
        self._provider = provider
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _failure(self._provider, exc) from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _failure(self._provider, exc) from exc

    def abort(self) -> None:
        self._response.close()


class HttpTransport:
    """One shared ClientSession (keep-alive pool) for every provider."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}  # built once per distinct setting

    @asynccontextmanager
    async def open(self, target: Target, url: str, body: bytes) -> AsyncIterator[UpstreamReply]:
        """Send; yields once the response headers are in. Connect, first-byte, idle (between reads)
        and total timeouts come from the target."""
        provider = target.provider
        limits = target.timeouts
        timeout = self._timeouts.get(limits)
        if timeout is None:
            # sock_read covers the wait for the response headers (first byte); once they are in,
            # the connection's read timeout becomes the idle gap allowed between body reads
            timeout = aiohttp.ClientTimeout(
                total=limits.total, sock_connect=limits.connect, sock_read=limits.first_byte
            )
            self._timeouts[limits] = timeout
        try:
            destination: str | URL = url
            headers = provider.headers
            if provider.signer is not None:
                headers = provider.signer.sign(url, headers, body)
                # the path goes out byte for byte as signed: no requoting (`%3A` must not become `:`)
                destination = URL(url, encoded=True)
            response = await self._session.post(
                destination, data=body, headers=headers, timeout=timeout, allow_redirects=False
            )
            if response.connection is not None and response.connection.protocol is not None:
                response.connection.protocol.read_timeout = limits.idle
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _failure(provider.name, exc) from exc
        completed = False
        try:
            yield HttpReply(provider.name, response)
            completed = True
        finally:
            if completed:
                response.release()
            else:
                response.close()  # cancelled, client gone, or failed: never reuse a half-read connection
