"""The configuration as frozen dataclasses: what routes.yaml says, validated, nothing compiled yet."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal


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


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 10.0
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
    disabled_reason: str | None = None


@dataclass(frozen=True, slots=True)
class TargetConfig:
    provider: str
    model: str


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    source: str
    digest: str
    listen: Listen
    log: LogSettings
    limits: Limits
    providers: Mapping[str, ProviderConfig]
    models: Mapping[str, tuple[TargetConfig, ...]]
    dialects: Mapping[str, Mapping[str, Any]]
    warnings: tuple[str, ...] = ()
