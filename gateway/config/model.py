"""The configuration as frozen dataclasses: what routes.yaml says, validated, nothing compiled yet."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.prices.price import Price
from gateway.routing.cooldown import CooldownPolicy
from gateway.routing.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class Listen:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str = "info"
    format: Literal["auto", "json", "console"] = "auto"


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int = 32 * 1024 * 1024
    body_timeout: float = 30.0
    max_header_bytes: int = 8190
    max_headers: int = 128
    keepalive_timeout: float = 75.0
    drain_timeout: float = 30.0
    max_json_depth: int = 100  # request bodies nested deeper get 400 (orjson writes at most 254 levels)


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    """`upstream:` what the upstream HTTP client will accept and hold, for every provider."""

    max_header_bytes: int = 16 * 1024  # status line + all header lines of one reply
    max_headers: int = 128
    max_body_bytes: int = 64 * 1024 * 1024  # a non-streamed reply, after content decoding
    max_error_body_bytes: int = 1024 * 1024  # a reply with status >= 300
    max_event_bytes: int = 16 * 1024 * 1024  # one stream event (SSE event, NDJSON line, AWS message)
    max_connections: int = 1024  # open at once, every origin together
    max_connections_per_origin: int = 512  # (scheme, host, port): one slow provider cannot take them all
    max_pool_waiters: int = 1024  # requests waiting for a connection slot; more get 503 at once
    pool_timeout: float = 10.0  # seconds a request waits for a slot before its 503
    dns_cache_ttl: float = 10.0  # seconds a resolved address list is reused (0: resolve every time)
    trust_env: bool = True  # HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment
    user_agent: str = ""  # empty: "llm-gateway/<version>"


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 10.0
    first_byte: float = 120.0
    idle: float = 120.0
    total: float = 600.0


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    """Static keys, or (no access_key_id) botocore's credential chain, optionally from `profile`."""

    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """How a provider's TLS connections are checked and who we are to it (mutual TLS)."""

    verify: bool = True
    ca_file: str | None = None  # PEM bundle used instead of the system trust store
    cert_file: str | None = None  # client certificate (PEM)
    key_file: str | None = None  # its private key (PEM); absent: in cert_file


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    dialect: str
    transport: Literal["http", "mock"] = "http"
    base_url: str = ""
    api_key: str | None = field(default=None, repr=False)
    headers: Mapping[str, str | None] = field(default_factory=dict)
    request: Mapping[str, Any] = field(default_factory=dict)
    timeouts: Timeouts = Timeouts()
    vars: Mapping[str, str] = field(default_factory=dict)
    unsupported_params: Literal["reject", "drop"] = "reject"
    # a client's server tools (web search, code execution, ...) on a translated request: left out and
    # named (drop), or a 400 naming them (reject)
    server_tools: Literal["drop", "reject"] = "drop"
    # client headers relayed to it when its dialect speaks the client's protocol (e.g. a list of betas):
    # header -> "all" (the default), "none", or the comma-separated values allowed through
    client_headers: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    aws: AwsCredentials | None = None
    tls: TlsSettings = TlsSettings()
    # None: from the environment (upstream.trust_env); False: never through a proxy; or a proxy URL
    proxy: str | Literal[False] | None = field(default=None, repr=False)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cooldown: CooldownPolicy = field(default_factory=CooldownPolicy)
    disabled_reason: str | None = None
    prices: Mapping[str, Price] = field(default_factory=dict)  # upstream model -> price (over the shipped)


@dataclass(frozen=True, slots=True)
class TargetConfig:
    provider: str
    model: str
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """`models.<alias>.cache`: the alias's successful answers are kept `ttl` seconds and served again to
    the same request. `scope` names the alias's targets (hashed at load), so a reload that points the
    alias at other upstream models does not serve the old models' answers."""

    ttl: float
    scope: str = ""


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """`cache:` where cached answers live (this process's bounded LRU, or Redis shared by every worker
    and replica; chosen at start, a reload keeps it) and how much the memory store holds."""

    store: Literal["memory", "redis"] = "memory"
    redis_url: str | None = field(default=None, repr=False)
    max_entries: int = 10_000
    max_bytes: int = 256 * 1024 * 1024  # every entry's bytes together (memory store)
    max_entry_bytes: int = 4 * 1024 * 1024  # one answer (a stream: its frames together); larger: not kept


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """A fallback chain or a weighted pool; `retry`/`timeouts` override the providers' settings."""

    strategy: Literal["fallback", "loadbalance"]
    members: tuple[TargetConfig | RouteConfig, ...]
    weight: float = 1.0
    retry: Mapping[str, Any] = field(default_factory=dict)
    timeouts: Mapping[str, Any] = field(default_factory=dict)
    cache: CachePolicy | None = None  # the alias's own (a member route has none)

    def targets(self) -> tuple[TargetConfig, ...]:
        found: list[TargetConfig] = []
        for member in self.members:
            found += member.targets() if isinstance(member, RouteConfig) else [member]
        return tuple(found)


@dataclass(frozen=True, slots=True)
class Budget:
    """What a key may spend (USD, as priced by the gateway) per UTC day, UTC month, or ever."""

    usd: float
    period: Literal["day", "month", "total"] = "month"


@dataclass(frozen=True, slots=True)
class GatewayKey:
    name: str
    digest: str = field(repr=False)  # "sha256:<hex>" of the key
    models: tuple[str, ...] | None = None  # shell-style patterns; None: every model
    rpm: int | None = None
    tpm: int | None = None
    metrics: bool = False  # may read /metrics
    budget: Budget | None = None
    admin: bool = False  # may read any key's spend (GET /v1/gateway/keys/{name}/spend)

    @property
    def counted(self) -> bool:
        """Its requests go through the limits store (rate limits or a budget)."""
        return self.rpm is not None or self.tpm is not None or self.budget is not None


@dataclass(frozen=True, slots=True)
class AuthSettings:
    keys: tuple[GatewayKey, ...] = ()
    store: Literal["memory", "redis"] = "memory"
    redis_url: str | None = field(default=None, repr=False)
    # the store cannot be reached: serve without counting (open) or answer 503 (closed)
    store_failure: Literal["open", "closed"] = "open"
    # the same, for a key with a budget: serve it unchecked (open) or answer 503 (closed)
    budget_store_failure: Literal["open", "closed"] = "closed"


DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class ResponsesSettings:
    """`responses:` where the Responses API's stored responses live (previous_response_id continues
    one; GET/DELETE /v1/responses/{id} read and delete them). The bounds are the memory store's:
    Redis bounds itself (its maxmemory policy), every key with the TTL."""

    store: Literal["memory", "redis", "none"] = "memory"
    redis_url: str | None = field(default=None, repr=False)
    ttl: float = 30 * DAY_S  # seconds
    max_entries: int = 10_000
    max_bytes: int = 128 * 1024 * 1024  # each response's JSON with its input items


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    source: str
    digest: str
    listen: Listen
    log: LogSettings
    limits: Limits
    providers: Mapping[str, ProviderConfig]
    models: Mapping[str, RouteConfig]
    dialects: Mapping[str, Mapping[str, Any]]
    auth: AuthSettings = field(default_factory=lambda: AuthSettings())
    responses: ResponsesSettings = ResponsesSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    cache: CacheSettings = CacheSettings()
    warnings: tuple[str, ...] = ()
