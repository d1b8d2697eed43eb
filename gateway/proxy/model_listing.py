"""GET /v1/models and /v1/models/{id}: the aliases a caller may use, in the caller's protocol.

The listing is made once per configuration (Registry.models_body, OpenAI's shape); a client of
another protocol (told by a header only its clients send: the protocol's `models.header`) gets it
in that protocol's shape, and its errors in that protocol's envelope. With gateway keys, a key sees
only the aliases its `models` allow.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway import json_codec
from gateway.app_keys import ACCESS, CLIENT_PROTOCOL, REGISTRY
from gateway.auth.keys import check_model
from gateway.config.model import GatewayKey
from gateway.engine.protocol import ClientProtocol, protocols
from gateway.engine.registry import Registry
from gateway.errors import GatewayError
from gateway.proxy.forward import model_not_found, presented_key, resolve_route
from gateway.proxy.json_reply import JSON_HEADERS
from gateway.rules.context import EvalContext


def _listing_protocol(request: web.Request) -> ClientProtocol | None:
    """The protocol whose clients' listing this is, when not the canonical one."""
    for protocol in _LISTING_PROTOCOLS:
        if protocol.models_header in request.headers:
            request[CLIENT_PROTOCOL] = protocol  # (errors in its envelope)
            return protocol
    return None


_LISTING_PROTOCOLS = tuple(p for p in protocols().values() if p.models_header is not None)


def _caller(request: web.Request, registry: Registry, protocol: ClientProtocol | None) -> GatewayKey | None:
    """The gateway key of the request (401 without a valid one once keys are configured), or None
    when the gateway is open."""
    if registry.keyring.open:
        return None
    value = presented_key(request, protocol) if protocol is not None else request.headers.get("Authorization")
    key = registry.keyring.identify(value)
    request[ACCESS].key = key.name
    return key


def _may_use(key: GatewayKey | None, alias: str) -> bool:
    if key is None or key.models is None:
        return True
    try:
        check_model(key, alias)
    except GatewayError:
        return False
    return True


def _reply(body: bytes | dict[str, Any], protocol: ClientProtocol | None, shape: str) -> web.Response:
    if protocol is not None:
        canonical = json_codec.loads(body) if isinstance(body, bytes) else body
        rule = protocol.models_list if shape == "list" else protocol.models_entry
        assert rule is not None
        body = rule(canonical, EvalContext())
    return web.Response(
        body=body if isinstance(body, bytes) else json_codec.dumps(body), headers=JSON_HEADERS
    )


async def list_models(request: web.Request) -> web.Response:
    """The available aliases; with gateway keys, only to a key and only those its `models` allow."""
    registry = request.app[REGISTRY].current
    protocol = _listing_protocol(request)
    key = _caller(request, registry, protocol)
    if key is None or key.models is None:
        return _reply(registry.models_body, protocol, "list")
    listing = json_codec.loads(registry.models_body)
    listing["data"] = [entry for entry in listing["data"] if _may_use(key, entry["id"])]
    return _reply(listing, protocol, "list")


async def retrieve_model(request: web.Request) -> web.Response:
    """One alias. A model the key may not use does not exist, for that key (OpenAI's answer too): the
    same 404 as an unknown one, without the reason a disabled one gives."""
    alias = request.match_info["model"]
    registry = request.app[REGISTRY].current
    protocol = _listing_protocol(request)
    key = _caller(request, registry, protocol)
    if not _may_use(key, alias):
        raise model_not_found(alias)
    body = registry.model_body(alias)
    if body is None:
        resolve_route(registry, alias)  # raises the 404 with the reason
        raise AssertionError("unreachable")  # pragma: no cover
    return _reply(body, protocol, "entry")
