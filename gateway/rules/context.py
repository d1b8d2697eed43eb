"""What an expression can see besides its input: the client request, stream state, the clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class EvalContext:
    """Per-request evaluation context.

    `request()` in an expression returns `request`, `state()` returns `state`, `now()` returns `created`
    (fixed once per request so every chunk of a stream carries the same timestamp).
    `upstream_header(name)` reads `upstream_headers`: the upstream reply's headers, once it has replied.
    `memo` keeps what was computed from the request alone, once (see request_constants.py).
    `client()` returns `client_request`: the client's own body when it spoke another protocol than
    the canonical one (`request()` is then the canonical form of it); else the same as `request()`.
    """

    request: Any = None
    state: dict[str, Any] = field(default_factory=dict)
    created: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    upstream_headers: Mapping[str, str] = field(default_factory=dict)
    memo: dict[object, Any] | None = None  # made on first use: most requests never need one
    client_request: Any = None
