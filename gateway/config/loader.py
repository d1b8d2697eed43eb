"""Read routes.yaml into a GatewayConfig: parse, interpolate `${VAR}`, validate, freeze.

A variable that is unset inside `providers.<name>` disables that provider (with a warning) so the
shipped routes.yaml runs with no keys at all; an unset variable anywhere else is an error.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator

from gateway.config.interpolate import interpolate
from gateway.config.model import (
    AuthSettings,
    AwsCredentials,
    Budget,
    CachePolicy,
    CacheSettings,
    GatewayConfig,
    GatewayKey,
    Limits,
    Listen,
    LogSettings,
    ProviderConfig,
    ResponsesSettings,
    RouteConfig,
    TargetConfig,
    Timeouts,
    TlsSettings,
    UpstreamSettings,
)
from gateway.config.problems import ConfigError, format_path, schema_problems, unknown_name
from gateway.config.yaml_document import load_yaml
from gateway.config.yaml_document import parse_yaml as parse_yaml  # dialect_sources reads with it
from gateway.prices.price import Price
from gateway.routing.cooldown import CooldownPolicy
from gateway.routing.retry import RetryPolicy
from gateway.schema_files import load_schema


def routes_validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema("routes.schema.json"))


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> GatewayConfig:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [f"{source}: not UTF-8 text (byte {exc.object[exc.start]:#04x} on line {line})"]
        ) from None
    return config_from_text(text, source, os.environ if environ is None else environ)


def config_from_text(text: str, source: str, environ: Mapping[str, str]) -> GatewayConfig:
    raw, problems = load_yaml(text, source)
    if not isinstance(raw, dict):
        raise ConfigError([*problems, f"{source}: expected a mapping at the top level"])
    interpolated = interpolate(raw, environ)
    tree: dict[str, Any] = interpolated.value

    disabled: dict[str, str] = {}
    for path, name in interpolated.missing:
        what = (
            f"{name} cannot be read"
            if name.startswith("file ")
            else f"environment variable {name} is not set"
        )
        if len(path) >= 2 and path[0] == "providers":
            disabled.setdefault(str(path[1]), what)
        else:
            problems.append(f"{format_path(path)}: {what}")
    problems += schema_problems(routes_validator(), tree)
    problems += _reference_problems(tree)
    problems += _cache_problems(tree)
    if problems:
        raise ConfigError(problems)

    warnings = [f"provider {name!r} is disabled: {reason}" for name, reason in sorted(disabled.items())]
    return GatewayConfig(
        source=source,
        digest=hashlib.sha256(text.encode()).hexdigest()[:16],
        listen=Listen(**tree.get("listen", {})),
        log=LogSettings(**tree.get("log", {})),
        limits=Limits(**tree.get("limits", {})),
        providers=MappingProxyType(
            {name: _provider(name, spec, disabled.get(name)) for name, spec in tree["providers"].items()}
        ),
        models=MappingProxyType(
            {alias: _cached(_route(spec), spec) for alias, spec in tree["models"].items()}
        ),
        dialects=MappingProxyType(dict(tree.get("dialects") or {})),
        auth=_auth(tree.get("auth") or {}),
        responses=_responses(tree.get("responses") or {}),
        upstream=UpstreamSettings(**tree.get("upstream", {})),
        cache=CacheSettings(**tree.get("cache", {})),
        warnings=tuple(warnings),
    )


def _reference_problems(tree: dict[str, Any]) -> list[str]:
    providers = tree.get("providers")
    models = tree.get("models")
    if not isinstance(providers, dict) or not isinstance(models, dict):
        return []
    problems: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}[{i}]")
        elif isinstance(node, dict) and "targets" in node:
            walk(node["targets"], f"{where}.targets")
        elif isinstance(node, dict):
            name = node.get("provider")
            if isinstance(name, str) and name not in providers:
                problems.append(f"{where}.provider: {unknown_name('provider', name, providers)}")

    for alias, spec in models.items():
        walk(spec, f"models.{alias}")
    return problems


def _cache_problems(tree: dict[str, Any]) -> list[str]:
    """`cache` is the alias's: on a member of its route (a fallback, a pool's target) it would mean
    nothing, so it is refused there rather than ignored."""
    models = tree.get("models")
    if not isinstance(models, dict):
        return []
    problems: list[str] = []

    def members(node: Any, where: str) -> None:
        for i, item in enumerate(node if isinstance(node, list) else ()):
            if isinstance(item, dict) and "cache" in item:
                problems.append(
                    f"{where}[{i}].cache: the response cache is set on the alias itself "
                    f"(models.<alias>.cache), not on a member of its route"
                )
            if isinstance(item, dict):
                members(item.get("targets"), f"{where}[{i}].targets")

    for alias, spec in models.items():
        members(spec, f"models.{alias}")
        if isinstance(spec, dict):
            members(spec.get("targets"), f"models.{alias}.targets")
    return problems


def _cached(route: RouteConfig, spec: Any) -> RouteConfig:
    """The alias's route with its cache policy (`cache` on the alias's mapping), if it has one."""
    if not isinstance(spec, dict) or "cache" not in spec:
        return route
    targets = sorted({f"{t.provider}/{t.model}" for t in route.targets()})
    scope = hashlib.sha256("\n".join(targets).encode()).hexdigest()[:16]
    return replace(route, cache=CachePolicy(ttl=duration_seconds(spec["cache"]["ttl"]), scope=scope))


def _provider(name: str, spec: dict[str, Any], disabled_reason: str | None) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        dialect=spec["dialect"],
        transport=spec.get("transport", "http"),
        base_url=str(spec.get("base_url", "")).rstrip("/"),
        api_key=spec.get("api_key") or None,
        headers=MappingProxyType(dict(spec.get("headers") or {})),
        request=MappingProxyType(dict(spec.get("request") or {})),
        timeouts=Timeouts(**spec.get("timeouts", {})),
        vars=MappingProxyType({k: str(v) for k, v in (spec.get("vars") or {}).items()}),
        unsupported_params=spec.get("unsupported_params", "reject"),
        server_tools=spec.get("server_tools", "drop"),
        client_headers=MappingProxyType(
            {
                str(name).lower(): policy if isinstance(policy, str) else tuple(str(v) for v in policy)
                for name, policy in (spec.get("client_headers") or {}).items()
            }
        ),
        aws=AwsCredentials(**spec["aws"]) if spec.get("aws") is not None else None,
        tls=TlsSettings(**spec.get("tls", {})),
        proxy=spec.get("proxy"),
        retry=RetryPolicy().overridden(spec.get("retry")),
        cooldown=CooldownPolicy(**spec.get("cooldown", {})),
        disabled_reason=disabled_reason,
        prices=MappingProxyType(
            {str(model): Price.from_spec(price) for model, price in (spec.get("prices") or {}).items()}
        ),
    )


def key_digest(key: str) -> str:
    """How a gateway key is stored: `sha256:<hex>` (keys are long random tokens, so a fast hash
    is enough; the key itself never stays in memory)."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _auth(spec: dict[str, Any]) -> AuthSettings:
    keys = tuple(
        GatewayKey(
            name=item["name"],
            digest=item["hash"] if "hash" in item else key_digest(item["key"]),
            models=tuple(item["models"]) if "models" in item else None,
            rpm=item.get("rpm"),
            tpm=item.get("tpm"),
            metrics=item.get("metrics", False),
            budget=Budget(float(item["budget"]["usd"]), item["budget"].get("period", "month"))
            if "budget" in item
            else None,
            admin=item.get("admin", False),
        )
        for item in spec.get("keys") or ()
    )
    return AuthSettings(
        keys=keys,
        store=spec.get("store", "memory"),
        redis_url=spec.get("redis_url"),
        store_failure=spec.get("store_failure", "open"),
        budget_store_failure=spec.get("budget_store_failure", "closed"),
    )


_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration_seconds(value: float | str) -> float:
    """Seconds, from a number of them or a number with its unit (`30d`, `12h`, `90m`, `45s`; the
    schema has checked the form)."""
    if isinstance(value, str):
        return float(value[:-1]) * _DURATION_UNITS[value[-1]]
    return float(value)


def _responses(spec: dict[str, Any]) -> ResponsesSettings:
    defaults = ResponsesSettings()
    return ResponsesSettings(
        store=spec.get("store", defaults.store),
        redis_url=spec.get("redis_url"),
        ttl=duration_seconds(spec["ttl"]) if "ttl" in spec else defaults.ttl,
        max_entries=spec.get("max_entries", defaults.max_entries),
        max_bytes=spec.get("max_bytes", defaults.max_bytes),
    )


def _route(spec: Any) -> RouteConfig:
    """A target, a list (fallback order) or a route mapping, as one RouteConfig tree."""
    if isinstance(spec, list):
        return RouteConfig("fallback", tuple(_member(item) for item in spec))
    if "targets" not in spec:
        return RouteConfig("fallback", (_member(spec),))
    return RouteConfig(
        strategy=spec.get("strategy", "fallback"),
        members=tuple(_member(item) for item in spec["targets"]),
        weight=float(spec.get("weight", 1.0)),
        retry=MappingProxyType(dict(spec.get("retry") or {})),
        timeouts=MappingProxyType(dict(spec.get("timeouts") or {})),
    )


def _member(spec: dict[str, Any]) -> TargetConfig | RouteConfig:
    if "targets" in spec:
        return _route(spec)
    return TargetConfig(provider=spec["provider"], model=spec["model"], weight=float(spec.get("weight", 1.0)))
