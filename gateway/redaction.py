"""Keeping secrets out of what the gateway relays: upstream text on its way to a client or a log.

An upstream's error body can echo the request it received, auth headers included. Before such text
leaves the gateway, `Redactor.redact` replaces

- every configured secret (provider API keys, AWS secret keys and session tokens, the Redis URL's
  password, secret header values) wherever it appears, as it is or URL-encoded, and
- anything shaped like an auth header value, whatever the secret: `Bearer <token>` (a token has
  something besides letters in its first 65 characters: "Bearer tokens expire" is a sentence), AWS
  SigV4 `Credential=`/`Signature=` values, the value after a key-carrying header or field name
  (`x-api-key`, `api-key`, `x-goog-api-key`, `authorization`, `api_key`, ... and any `names` given,
  e.g. the auth headers of the configured dialects) in `name: value`, `"name": "value"`,
  `\\"name\\": \\"value\\"` (JSON inside a JSON string) or `name=value` form, a `?key=` query
  parameter, and keys in the formats providers hand out (`sk-...` with a digit in its first 64
  characters, `AIza` + 35).

The name of a header or field is kept, its value becomes MASK. Secrets shorter than
`MIN_SECRET_LENGTH` are not searched for (a one-letter "key" would blank out text at random); the
shape rules still apply. Redaction runs only on error paths: successful bodies and stream events are
relayed untouched. Every pattern is linear in the text: a lookahead looks at most 64 characters on
(an unbounded one made 300 KB of "sk-sk-sk-..." take minutes).
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 8

_KEY_NAMES = (
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "api_key",
    "apikey",
    "access_token",
    "x-amz-security-token",
    "secret_access_key",
    "session_token",
)
_TOKEN = r"[A-Za-z0-9._~+/=:-]"


@functools.lru_cache(maxsize=32)
def _shapes(names: tuple[str, ...]) -> re.Pattern[str]:
    """The shape rules, with `names` as extra key-carrying header or field names."""
    key_names = "|".join(re.escape(name) for name in (*_KEY_NAMES, *names))
    return re.compile(
        # 1, 2: `Bearer <token>` / `Basic <token>` anywhere, the token not letters only
        rf"\b(?i:(bearer|basic))(\s+)(?={_TOKEN}{{0,64}}?[0-9._~+/=:-]){_TOKEN}{{6,}}"
        # 3, 4: SigV4: Credential=AKIA.../..., Signature=hex (X-Amz-Credential= in a query too)
        r"|\b(Credential|Signature)(=)[^\s,\"'&]+"
        # 5, 6: name: value, "name": "value", name=value (the name's value, whatever it looks like)
        rf"|(?i:(?<![\w-])({key_names}))(\\?[\"']?\s*[:=]\s*\\?[\"']?)"
        r"(?i:(?:bearer|basic|aws4-hmac-sha256)\s+)?[^\s\"',;&}\]\\]+"
        # 7, 8: ?key=... / &key=...
        r"|([?&]key)(=)[^\s\"'&#]+"
        # 9, 10: keys as providers hand them out
        r"|()()\b(?:sk-(?=[A-Za-z_-]{0,64}[0-9])[A-Za-z0-9_-]{16,}|AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-]))"
    )


def _mask_shape(match: re.Match[str]) -> str:
    for name_group in (1, 3, 5, 7, 9):
        if match.group(name_group) is not None:
            return match.group(name_group) + match.group(name_group + 1) + MASK
    return MASK  # pragma: no cover - every alternative has a name group


class Redactor:
    """Replaces known secrets and auth-shaped values in text; build once per registry."""

    __slots__ = ("_names", "_secrets", "_shapes")

    def __init__(self, secrets: Iterable[str | None] = (), names: Iterable[str] = ()) -> None:
        found = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH}
        found |= {urllib.parse.quote(s, safe="") for s in found}  # as it appears in a URL
        # longest first: a secret that contains another is replaced whole
        self._secrets = tuple(sorted(found, key=len, reverse=True))
        extra = {name.lower() for name in names if name and name.lower() not in _KEY_NAMES}
        self._shapes = _shapes(tuple(sorted(extra)))
        self._names = frozenset((*_KEY_NAMES, *extra))

    def redact(self, text: str) -> str:
        text = self._shapes.sub(_mask_shape, text)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def redact_bytes(self, data: bytes) -> bytes:
        """`redact` for UTF-8 bytes (bytes that are not UTF-8 are decoded with replacement)."""
        text = data.decode("utf-8", errors="replace")
        redacted = self.redact(text)
        return data if redacted == text else redacted.encode()

    def redact_json(self, value: Any) -> Any:
        """`value` with every string in it, keys included, at any depth, redacted (JSON-safe, unlike
        redacting its text: a mask never breaks the quoting); a string under a key-carrying name
        (`{"x-api-key": "..."}`) is masked whole, whatever it looks like."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {
                self.redact(str(key)): (
                    MASK
                    if isinstance(item, str) and item and str(key).lower() in self._names
                    else self.redact_json(item)
                )
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self.redact_json(item) for item in value]
        return value
