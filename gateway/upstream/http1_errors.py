"""What the upstream HTTP/1.1 client raises besides TimeoutError and the peer's ConnectionError."""

from __future__ import annotations


class UpstreamProtocolError(Exception):
    """The upstream's reply is not HTTP we can read."""


class ResponseTooLarge(UpstreamProtocolError):
    """A reply past one of the `upstream:` caps. `part`: "headers" (status line, header fields,
    trailers) or "response" (the body)."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part


class RequestNotSent(ConnectionError):
    """The pooled connection was found closed before any byte of the request was written on it:
    sending the request on another connection cannot make the upstream see it twice."""
