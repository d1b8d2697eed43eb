"""Recognising a gateway key: hash what the client sent, compare with every stored hash in
constant time, and answer with the key's settings (never the key)."""

from __future__ import annotations

import fnmatch
import hashlib
import hmac

from gateway.config.model import GatewayKey
from gateway.errors import GatewayError


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class KeyRing:
    """The configured keys. Empty: the gateway is open."""

    __slots__ = ("_keys",)

    def __init__(self, keys: tuple[GatewayKey, ...]) -> None:
        self._keys = tuple((key, key.digest.encode()) for key in keys)

    @property
    def open(self) -> bool:
        return not self._keys

    def identify(self, authorization: str | None) -> GatewayKey:
        """The key the request carries, or 401 in OpenAI's envelope."""
        token = bearer_token(authorization)
        if token is None:
            raise GatewayError(
                401,
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
                type_="invalid_request_error",
                code="missing_api_key",
            )
        # aiohttp decodes header bytes that are not UTF-8 as surrogates: encoded back to the bytes sent,
        # they hash to a digest no configured (text) key has, and are an invalid key like any other
        raw = token.encode("utf-8", "surrogateescape")
        presented = ("sha256:" + hashlib.sha256(raw).hexdigest()).encode()
        found: GatewayKey | None = None
        for key, digest in self._keys:  # every key compared, no early exit: timing says nothing
            if hmac.compare_digest(presented, digest):
                found = key
        if found is None:
            raise GatewayError(
                401, "Incorrect API key provided.", type_="invalid_request_error", code="invalid_api_key"
            )
        return found


def check_model(key: GatewayKey, model: str) -> None:
    if key.models is None or any(fnmatch.fnmatchcase(model, pattern) for pattern in key.models):
        return
    raise GatewayError(
        403,
        f"The key '{key.name}' may not use model '{model}'.",
        type_="permission_error",
        param="model",
        code="model_not_allowed",
    )
