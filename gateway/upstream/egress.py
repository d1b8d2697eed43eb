"""How a provider's connections leave the gateway: which TLS context checks the upstream, and which
HTTP proxy (if any) carries them.

Decided when the registry is built (load, SIGHUP), never per request: the environment's proxy
variables are read then. Per provider `proxy:` wins (a URL, or false for a direct connection);
absent, and with `upstream.trust_env`, the environment decides the way Go (and mostly curl) does:

- `HTTPS_PROXY` / `https_proxy` for https upstreams, `HTTP_PROXY` / `http_proxy` for http ones (the
  upper-case name first); a value without a scheme is an http:// proxy;
- `NO_PROXY` / `no_proxy`: a comma (or space) separated list of `*` (no proxy at all), host names
  (`example.com` matches it and its subdomains, `.example.com` only the subdomains, `*.example.com`
  is `.example.com`), `host:port`, IP addresses and CIDR blocks;
- loopback hosts (`localhost`, 127.0.0.0/8, ::1) never go through a proxy (Go's rule).

An `Egress` is a value: two providers with the same TLS context and proxy share pooled connections,
and so does a provider before and after a reload that changed neither.
"""

from __future__ import annotations

import base64
import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class ProxyEndpoint:
    """An HTTP proxy: where it is, and the Proxy-Authorization value from its URL's userinfo."""

    scheme: str  # "http", or "https" for TLS to the proxy itself
    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)  # "Basic <base64(user:password)>"

    @property
    def label(self) -> str:
        """How the proxy is named in errors and logs: host:port, never its credentials."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"{shown}:{self.port}"


@dataclass(frozen=True, slots=True)
class Egress:
    """The TLS context for https upstreams (None: the pool's shared default) and the proxy (None:
    direct)."""

    ssl_context: ssl.SSLContext | None = None
    proxy: ProxyEndpoint | None = None


DIRECT = Egress()


def parse_proxy_url(url: str) -> ProxyEndpoint:
    """`http://[user:password@]host[:port]` (or https://; no scheme: http://). ValueError when it is
    not one: the message never repeats the URL (it may hold a password)."""
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"unsupported proxy scheme {scheme!r} (http:// or https://)")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError("the proxy URL's port is not a number") from None
    if not parts.hostname:
        raise ValueError("the proxy URL has no host")
    authorization = None
    if parts.username is not None:
        userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(userinfo.encode()).decode("ascii")
    return ProxyEndpoint(scheme, parts.hostname, port, authorization)


def proxy_for(
    base_url: str,
    setting: str | Literal[False] | None,
    environ: Mapping[str, str],
    trust_env: bool,
) -> ProxyEndpoint | None:
    """The proxy for requests to `base_url`: the provider's `proxy` setting, else the environment's.
    ValueError (naming the setting or variable, never its value) when the URL is not usable."""
    if setting is False:
        return None
    parts = urlsplit(base_url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if isinstance(setting, str):
        return parse_proxy_url(setting)  # the provider's own choice: NO_PROXY and loopback do not apply
    if not trust_env or scheme not in _DEFAULT_PORTS or not host or is_loopback(host):
        return None
    names = ("HTTPS_PROXY", "https_proxy") if scheme == "https" else ("HTTP_PROXY", "http_proxy")
    name, url = _first_set(environ, names)
    if not url:
        return None
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        return None  # the base_url's own problem, reported when it is used
    if bypasses_proxy(host, port, _first_set(environ, ("NO_PROXY", "no_proxy"))[1]):
        return None
    try:
        return parse_proxy_url(url)
    except ValueError as exc:
        raise ValueError(f"{name} (from the environment): {exc}") from None


def _first_set(environ: Mapping[str, str], names: tuple[str, str]) -> tuple[str, str]:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return names[0], ""


def is_loopback(host: str) -> bool:
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bypasses_proxy(host: str, port: int, no_proxy: str) -> bool:
    """Whether NO_PROXY says `host:port` is reached directly."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if address is not None and "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name, entry_port = _split_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        name = name.strip("[]").rstrip(".")
        if address is not None:
            try:
                if ipaddress.ip_address(name) == address:
                    return True
            except ValueError:
                pass
            continue
        if name.startswith("*."):
            name = name[1:]
        if name.startswith("."):
            if host.endswith(name):
                return True
        elif host == name or host.endswith("." + name):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    """`host:port`, `[v6]:port` -> (host, port); a bare IPv6 address has no port."""
    if entry.startswith("["):
        close = entry.find("]")
        rest = entry[close + 1 :]
        if close > 0 and rest.startswith(":") and rest[1:].isdigit():
            return entry[: close + 1], int(rest[1:])
        return entry, None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        if port.isdigit():
            return name, int(port)
    return entry, None
