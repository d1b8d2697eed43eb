"""The configuration as frozen dataclasses: what routes.yaml says, validated, nothing compiled yet."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

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


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 10.0
    first_byte: float = 120.0
    idle: float = 120.0
    total: float = 600.0


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


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
    aws: AwsCredentials | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cooldown: CooldownPolicy = field(default_factory=CooldownPolicy)
    disabled_reason: str | None = None


@dataclass(frozen=True, slots=True)
class TargetConfig:
    provider: str
    model: str
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """A fallback chain or a weighted pool; `retry`/`timeouts` override the providers' settings."""

    strategy: Literal["fallback", "loadbalance"]
    members: tuple[TargetConfig | RouteConfig, ...]
    weight: float = 1.0
    retry: Mapping[str, Any] = field(default_factory=dict)
    timeouts: Mapping[str, Any] = field(default_factory=dict)

    def targets(self) -> tuple[TargetConfig, ...]:
        found: list[TargetConfig] = []
        for member in self.members:
            found += member.targets() if isinstance(member, RouteConfig) else [member]
        return tuple(found)


@dataclass(frozen=True, slots=True)
class GatewayKey:
    name: str
    digest: str = field(repr=False)  # "sha256:<hex>" of the key
    models: tuple[str, ...] | None = None  # shell-style patterns; None: every model
    rpm: int | None = None
    tpm: int | None = None


@dataclass(frozen=True, slots=True)
class AuthSettings:
    keys: tuple[GatewayKey, ...] = ()
    store: Literal["memory", "redis"] = "memory"
    redis_url: str | None = field(default=None, repr=False)


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
    warnings: tuple[str, ...] = ()
