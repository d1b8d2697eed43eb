"""What one request carries between the layers that handle it, and what its access event says."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.proxy.stream_outcome import StreamOutcome


@dataclass(slots=True)
class RequestRecord:
    """Filled in as the request is handled: the edge makes it (id and Server headers, the start),
    the handler adds the key, the model and the route's outcome, the relay what the upstream did.
    `access_fields()` adds the access event's content (the fields that were set, by these names)."""

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

    def access_fields(self, out: dict[str, Any]) -> dict[str, Any]:
        """`out` with the fields that were set added, in this order (explicit, not a loop over
        names: it runs once per request)."""
        if self.key is not None:
            out["key"] = self.key
        if self.model is not None:
            out["model"] = self.model
        if self.stream is not None:
            out["stream"] = self.stream
        if self.provider is not None:
            out["provider"] = self.provider
        if self.upstream_model is not None:
            out["upstream_model"] = self.upstream_model
        if self.attempts is not None:
            out["attempts"] = self.attempts
        if self.upstream_status is not None:
            out["upstream_status"] = self.upstream_status
        if self.ttfb_ms is not None:
            out["ttfb_ms"] = self.ttfb_ms
        if self.stream_outcome is not None:
            out["stream_outcome"] = self.stream_outcome
        if self.usage is not None:
            out["usage"] = self.usage
            out["cost_usd"] = self.cost_usd  # null: counted, but its model has no price (unknown)
        elif self.cost_usd is not None:
            out["cost_usd"] = self.cost_usd
        if self.cache is not None:
            out["cache"] = self.cache
        if self.client_closed:
            out["client_closed"] = True
        if self.rate_limited is not None:
            out["rate_limited"] = self.rate_limited
        if self.dropped_tools is not None:
            out["dropped_tools"] = self.dropped_tools
        if self.client_headers:
            out.update(self.client_headers)
        return out
