"""The cache key of a request: exact match on what the client sent, but for the fields that do not
change the answer.

The key is the client's body in its own protocol (for an OpenAI chat client, that is the canonical
request itself), with the alias, the client operation (a Messages client and a chat client asking the
same thing each get their own protocol's answer), the client headers its protocol relays to an
upstream that speaks it (`forward_headers`: a list of betas changes the answer) and the alias's target
scope (CachePolicy.scope). It
is not made from the canonical form: the client's body is what every target is made from (so it
tells apart at least what the canonical form would, and also what only a native upstream reads), and
keying on it costs no translation. `stream` and `stream_options` stay in the key: a stream and a JSON
answer are different bytes, and so is a stream with a usage chunk and one without.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

# top-level request fields that do not change the answer: who asks (user, safety_identifier,
# metadata: the Messages API's carries user_id) and hints to the upstream's own prompt cache; `model` is
# the alias, keyed by itself
IGNORED_FIELDS = frozenset(
    ("model", "user", "metadata", "safety_identifier", "prompt_cache_key", "prompt_cache_retention")
)


def cache_key(
    scope: str,
    alias: str,
    operation: str,
    body: Mapping[str, Any],
    headers: Sequence[str | None] = (),
    owner: str | None = None,
) -> str:
    """sha256 (hex) of the request's stable JSON: keys sorted at every level, so the same request
    written in another key order is the same key. `headers`: the values of the client headers its
    protocol relays to an upstream that speaks it (a beta list changes what that upstream does).
    `owner`: the gateway key's name when the answer is that key's own (a stored response it continues
    or keeps: another key cannot see those), else None (one entry for every key)."""
    kept = {name: value for name, value in body.items() if name not in IGNORED_FIELDS}
    encoded = orjson.dumps([scope, alias, operation, kept, headers, owner], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(encoded).hexdigest()
