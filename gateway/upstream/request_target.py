"""Where a URL's request goes: the origin (the pool's key, with the egress), the Host header and the
request-target, parsed once per URL and cached by the pool."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from gateway.upstream.egress import DIRECT, Egress

if TYPE_CHECKING:
    from gateway.upstream.pool_slots import Route

_DEFAULT_PORTS = {"http": 80, "https": 443}
# characters left as they are in a request target: RFC 3986 reserved + unreserved, and '%' (already
# encoded sequences pass through byte for byte: a signed path must not change)
_TARGET_SAFE = "/:@!$&'()*+,;=-._~%?#[]"


@dataclass(slots=True, eq=False)
class RequestTarget:
    """Where a URL's request goes: the origin, the Host header, the request-target, and how the
    connection leaves (`egress`). Through a proxy a plain-HTTP request is sent in absolute form with
    the proxy's credentials."""

    scheme: str
    host: str
    port: int
    host_header: str
    path: str  # path + query, percent-encoded (absolute form through a proxy)
    egress: Egress = DIRECT
    proxy_header: bytes = b""  # b"Proxy-Authorization: ...\r\n", for a plain-HTTP request through a proxy
    route: Route | None = field(default=None, repr=False)  # the pool's, set by ConnectionPool.target


def parse_url(url: str, egress: Egress = DIRECT) -> RequestTarget:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or _DEFAULT_PORTS[scheme]
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    path = quote(parts.path or "/", safe=_TARGET_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_TARGET_SAFE)
    proxy_header = b""
    if egress.proxy is not None and scheme == "http":
        path = f"http://{host_header}{path}"
        if egress.proxy.authorization is not None:
            proxy_header = f"Proxy-Authorization: {egress.proxy.authorization}\r\n".encode("latin-1")
    return RequestTarget(scheme, host, port, host_header, path, egress, proxy_header)
