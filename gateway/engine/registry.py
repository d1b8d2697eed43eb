"""The compiled, immutable registry: every provider ready to send, every alias resolved.

Built whole from a GatewayConfig (load -> validate -> compile every rule) and swapped in with one
assignment; a request keeps the registry it started with until it finishes.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from gateway import json_codec
from gateway.config.model import GatewayConfig, ProviderConfig, Timeouts
from gateway.config.problems import ConfigError
from gateway.engine.dialect import Dialect, Operation, compile_dialect
from gateway.engine.dialect_sources import resolve_dialects
from gateway.rules.template import RuleError, chain_transforms, compile_transform


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    dialect: Dialect
    transport: str
    base_url: str
    headers: Mapping[str, str]
    timeouts: Timeouts
    operations: Mapping[str, Operation]

    def url(self, operation: Operation, stream: bool, model: str) -> str:
        path = operation.stream_path if stream and operation.stream_path else operation.path
        if "{model}" in path:
            path = path.replace("{model}", urllib.parse.quote(model, safe=""))
        return self.base_url + path


@dataclass(frozen=True, slots=True)
class Target:
    provider: Provider
    model: str


@dataclass(frozen=True, slots=True)
class Registry:
    config: GatewayConfig
    routes: Mapping[str, tuple[Target, ...]]
    unavailable: Mapping[str, str]
    created: int
    models_body: bytes

    def model_body(self, alias: str) -> bytes | None:
        targets = self.routes.get(alias)
        if not targets:
            return None
        return json_codec.dumps(_model_entry(alias, targets, self.created))


def _model_entry(alias: str, targets: tuple[Target, ...], created: int) -> dict[str, Any]:
    return {"id": alias, "object": "model", "created": created, "owned_by": targets[0].provider.name}


def build_registry(config: GatewayConfig) -> Registry:
    dialect_specs = resolve_dialects(config.dialects)
    problems: list[str] = []

    wanted = {p.dialect for p in config.providers.values()} | set(config.dialects)
    dialects: dict[str, Dialect] = {}
    for name in sorted(wanted):
        if name not in dialect_specs:
            continue
        where, spec = dialect_specs[name]
        try:
            dialects[name] = compile_dialect(name, spec, where)
        except RuleError as exc:
            problems.append(str(exc))

    providers: dict[str, Provider] = {}
    for name, pconf in config.providers.items():
        if pconf.dialect not in dialect_specs:
            known = ", ".join(sorted(dialect_specs))
            problems.append(f"providers.{name}.dialect: unknown dialect {pconf.dialect!r} (known: {known})")
            continue
        dialect = dialects.get(pconf.dialect)
        if dialect is None or pconf.disabled_reason is not None:
            continue
        try:
            providers[name] = _provider(pconf, dialect)
        except RuleError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(problems)

    routes: dict[str, tuple[Target, ...]] = {}
    unavailable: dict[str, str] = {}
    for alias, targets in config.models.items():
        live = tuple(Target(providers[t.provider], t.model) for t in targets if t.provider in providers)
        if live:
            routes[alias] = live
        else:
            reasons = {
                t.provider: config.providers[t.provider].disabled_reason or "disabled" for t in targets
            }
            unavailable[alias] = "; ".join(f"provider {p!r} is disabled: {r}" for p, r in reasons.items())

    created = int(time.time())
    listing = {"object": "list", "data": [_model_entry(a, t, created) for a, t in routes.items()]}
    return Registry(
        config=config,
        routes=MappingProxyType(routes),
        unavailable=MappingProxyType(unavailable),
        created=created,
        models_body=json_codec.dumps(listing),
    )


def _provider(pconf: ProviderConfig, dialect: Dialect) -> Provider:
    where = f"providers.{pconf.name}.request"
    override = compile_transform(pconf.request, dialect.compiler, where)
    operations = {
        op: Operation(
            path=operation.path,
            stream_path=operation.stream_path,
            request=chain_transforms(operation.request, override),
            response=operation.response,
            stream=operation.stream,
        )
        for op, operation in dialect.operations.items()
    }
    return Provider(
        name=pconf.name,
        dialect=dialect,
        transport=pconf.transport,
        base_url=pconf.base_url,
        headers=MappingProxyType(_headers(pconf, dialect)),
        timeouts=pconf.timeouts,
        operations=MappingProxyType(operations),
    )


def _headers(pconf: ProviderConfig, dialect: Dialect) -> dict[str, str]:
    """Dialect headers, then the provider's (null removes one), then auth; `{api_key}` filled in."""
    merged: dict[str, str | None] = {"Content-Type": "application/json", **dialect.headers, **pconf.headers}
    if dialect.auth_header and pconf.api_key:
        merged[dialect.auth_header] = dialect.auth_value
    key = pconf.api_key or ""
    return {
        name: value.replace("{api_key}", key)
        for name, value in merged.items()
        if value is not None and (key or "{api_key}" not in value)
    }
