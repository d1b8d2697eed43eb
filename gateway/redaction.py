"""Keeping secrets out of what the gateway relays: upstream text on its way to a client or a log.

An upstream's error body can echo the request it received, auth headers included. Before such text
leaves the gateway, `Redactor.redact` replaces

- every configured secret (provider API keys, AWS secret keys and session tokens, the Redis URL's
  password, secret header values) wherever it appears, and
- anything shaped like an auth header value, whatever the secret: `Bearer <token>`, AWS SigV4
  `Credential=`/`Signature=` values, and the value after a key-carrying header or field name
  (`x-api-key`, `api-key`, `x-goog-api-key`, `authorization`, `api_key`, ...) in `name: value`,
  `"name": "value"` or `name=value` form.

Secrets shorter than `MIN_SECRET_LENGTH` are not searched for (a one-letter "key" would blank out
text at random); the shape rules still apply. Redaction runs only on error paths: successful bodies
and stream events are relayed untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 8

_KEY_NAMES = (
    r"authorization|proxy-authorization|x-api-key|api-key|x-goog-api-key|api_key|apikey|access_token"
    r"|x-amz-security-token|secret_access_key|session_token"
)
_SHAPES = re.compile(
    # `Bearer <token>` / `Basic <token>` anywhere
    r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=:-]{6,}"
    # SigV4: Credential=AKIA.../..., Signature=hex
    r"|\b(Credential|Signature)(=)[^\s,\"']+"
    # name: value, "name": "value", name=value (the name's value, whatever it looks like)
    rf"|(?i:\b({_KEY_NAMES}))(\\?[\"']?\s*[:=]\s*\\?[\"']?)"
    r"(?i:(?:bearer|basic|aws4-hmac-sha256)\s+)?[^\s\"',;&}\]\\]+"
)


def _mask_shape(match: re.Match[str]) -> str:
    for name_group in (1, 3, 5):
        if match.group(name_group) is not None:
            return match.group(name_group) + match.group(name_group + 1) + MASK
    return MASK  # pragma: no cover - every alternative has a name group


class Redactor:
    """Replaces known secrets and auth-shaped values in text; build once per registry."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        found = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
        # longest first: a secret that contains another is replaced whole
        self._secrets = tuple(sorted(found, key=len, reverse=True))

    def redact(self, text: str) -> str:
        text = _SHAPES.sub(_mask_shape, text)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def redact_bytes(self, data: bytes) -> bytes:
        """`redact` for UTF-8 bytes (bytes that are not UTF-8 are decoded with replacement)."""
        text = data.decode("utf-8", errors="replace")
        redacted = self.redact(text)
        return data if redacted == text else redacted.encode()
