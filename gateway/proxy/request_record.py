"""What one request carries between the layers that handle it, and what its access event says."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.proxy.stream_outcome import StreamOutcome


@dataclass(slots=True)
class RequestRecord:
    """Filled in as the request is handled: the edge makes it (id and Server headers, the start),
    the handler adds the key, the model and the route's outcome, the relay what the upstream did.
    `access_fields()` is the access event's content (the fields that were set, by these names)."""

    started: float
    response_headers: dict[str, str]  # added to the response (rate-limit, dropped params, ...)
    key: str | None = None  # the gateway key's name
    model: Any = None  # the alias the client asked for (whatever it sent)
    stream: bool | None = None
    provider: str | None = None  # the target tried last
    upstream_model: str | None = None
    attempts: list[dict[str, Any]] | None = None  # one record per attempt, in order
    upstream_status: int | None = None
    ttfb_ms: float | None = None  # a stream's first byte to the client
    stream_outcome: StreamOutcome | None = None
    usage: dict[str, Any] | None = None  # canonical (prompt/completion/total tokens), shown or not
    client_closed: bool = False
    rate_limited: str | None = None  # "requests", "tokens" or "budget"
    dropped_tools: str | None = None  # the client's tools a translated upstream could not run
    client_headers: dict[str, str] = field(default_factory=dict)  # the ones its protocol logs
    cost_usd: float | None = None  # priced from `usage`; None when unknown (no price), never a made-up 0
    cache: str | None = None  # the response cache's verdict: "hit" or "miss" (None: no cache)
    # for a traced request's span only (reply_summary; not logged): what answered, why it stopped
    trace_reply: bool = False
    response_model: str | None = None
    finish_reasons: list[str] | None = None

    @property
    def served(self) -> bool:
        """An API request (not /metrics, /healthz, ...): it named a model."""
        return self.model is not None

    def access_fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in _LOGGED:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if not self.client_closed:
            del out["client_closed"]
        if self.cost_usd is None and self.usage is not None:
            out["cost_usd"] = None  # counted, but its model has no price: unknown, said as null
        out.update(self.client_headers)
        return out


_LOGGED = (
    "key",
    "model",
    "stream",
    "provider",
    "upstream_model",
    "attempts",
    "upstream_status",
    "ttfb_ms",
    "stream_outcome",
    "usage",
    "cost_usd",
    "cache",
    "client_closed",
    "rate_limited",
    "dropped_tools",
)
