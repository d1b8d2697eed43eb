"""Client errors below the API: a request aiohttp cannot parse, a body it cannot read or decode, as the
4xx GatewayError the client sees.

The words are ours and fixed. aiohttp's own messages quote the raw request bytes around the fault (a
gateway key among them, in an `Authorization` line), so they are never shown to anyone or logged; the
error's class says enough (`reason`).
"""

from __future__ import annotations

from aiohttp.compression_utils import HAS_BROTLI, HAS_ZSTD
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    BadStatusLine,
    ContentEncodingError,
    ContentLengthError,
    DecompressSizeError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
    TransferEncodingError,
)

from gateway.errors import GatewayError

# request Content-Encodings aiohttp decodes (br and zstd only with their optional packages installed)
DECODED_CODINGS = frozenset(
    {"identity", "gzip", "deflate", *(["br"] if HAS_BROTLI else []), *(["zstd"] if HAS_ZSTD else [])}
)

# most specific first: the first class the error is an instance of gives the words
_WHAT_IS_WRONG: tuple[tuple[type[Exception], str], ...] = (
    (BadHttpMethod, "the method is not a valid HTTP token"),
    (BadStatusLine, "the request line is malformed (a bare LF ends lines that need CRLF?)"),
    (LineTooLong, "a request or header line is too long"),
    (InvalidHeader, "a header name or value is malformed"),
    (InvalidURLError, "the URL is malformed"),
    (TransferEncodingError, "the chunked transfer encoding is malformed"),
    (ContentLengthError, "the body ended before its Content-Length"),
    (DecompressSizeError, "the body decompresses to more than the gateway accepts"),
    (BadHttpMessage, "the message is malformed (a bare CR or LF, a NUL or another control byte?)"),
)


def reason(exc: BaseException | None) -> str:
    """The error's class name only (e.g. `BadStatusLine`): what logs may say about a bad request."""
    return type(exc).__name__ if exc is not None else "unknown"


def what_is_wrong(exc: BaseException | None) -> str:
    return next((words for kind, words in _WHAT_IS_WRONG if isinstance(exc, kind)), "it cannot be parsed")


def unsupported_encoding(coding: str | None = None) -> GatewayError:
    named = f" {coding[:40]!r}" if coding else ""
    supported = ", ".join(sorted(DECODED_CODINGS - {"identity"}))
    return GatewayError(
        415,
        f"Unsupported Content-Encoding{named}: send the body uncompressed, or encoded with {supported}.",
        code="unsupported_content_encoding",
    )


def unparsable_request(exc: BaseException | None) -> GatewayError:
    """What aiohttp could not parse (the request line, a header, the framing) as a 4xx."""
    if isinstance(exc, ContentEncodingError):  # at the headers: a coding whose decoder is not installed
        return unsupported_encoding()
    if isinstance(exc, LineTooLong):
        return GatewayError(
            431,
            "A request line or header line is longer than the gateway accepts (limits.max_header_bytes).",
            code="header_too_large",
        )
    return GatewayError(
        400, f"The request is not valid HTTP/1.1: {what_is_wrong(exc)}.", code="invalid_http_request"
    )


def unreadable_body(exc: BaseException | None) -> GatewayError:
    """A body whose framing or Content-Encoding broke while it was read, as a 400."""
    if isinstance(exc, ContentEncodingError):
        return GatewayError(
            400,
            "The request body could not be decoded as its Content-Encoding says (e.g. gzip that is not "
            "gzip).",
            code="invalid_content_encoding",
        )
    return GatewayError(
        400, f"The request body could not be read: {what_is_wrong(exc)}.", code="invalid_request_body"
    )
