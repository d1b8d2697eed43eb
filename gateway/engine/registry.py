"""The compiled, immutable registry: every provider ready to send, every alias resolved.

Built whole from a GatewayConfig (load -> validate -> compile every rule) and swapped in with one
assignment; a request keeps the registry it started with until it finishes.
"""

from __future__ import annotations

import os
import re
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Protocol

from gateway import __version__, json_codec
from gateway.auth.keys import KeyRing
from gateway.config.model import (
    AwsCredentials,
    CachePolicy,
    GatewayConfig,
    ProviderConfig,
    RouteConfig,
    Timeouts,
    UpstreamSettings,
)
from gateway.config.problems import ConfigError, unknown_name
from gateway.engine.bridges import with_bridges
from gateway.engine.dialect import Dialect, Operation, compile_dialect
from gateway.engine.dialect_sources import resolve_dialects
from gateway.prices.table import NO_PRICES, Prices, target_prices
from gateway.redaction import Redactor
from gateway.routing.cooldown import CooldownPolicy
from gateway.routing.plan import RouteNode
from gateway.routing.retry import RetryPolicy
from gateway.rules.template import IDENTITY, RuleError, chain_transforms, compile_transform
from gateway.upstream.aws_credentials import CredentialChain, botocore_chain
from gateway.upstream.egress import DIRECT, Egress, proxy_for
from gateway.upstream.signing import SigV4Signer
from gateway.upstream.tls import TlsProblem, ssl_context_for, tls_warning


class Signer(Protocol):
    async def sign(self, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    dialect: Dialect
    transport: str
    base_url: str
    headers: Mapping[str, str]
    timeouts: Timeouts
    operations: Mapping[str, Operation]
    # client operations (`protocol.operation`) its dialect speaks itself: relayed, not translated
    native: Mapping[str, Operation] = field(default_factory=dict)
    unsupported_params: str = "reject"
    # a client header relayed to a native upstream -> "all", "none" or the values let through
    client_headers: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    server_tools: str = "drop"  # or "reject": a translated request's server tools
    signer: Signer | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cooldown: CooldownPolicy = field(default_factory=CooldownPolicy)
    redactor: Redactor = field(default_factory=Redactor)  # the registry's: every configured secret
    egress: Egress = DIRECT  # TLS context and proxy of its connections
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)  # caps its replies are read within

    def url(self, operation: Operation, stream: bool, model: str) -> str:
        path = operation.stream_path if stream and operation.stream_path else operation.path
        if "{model}" in path:
            path = path.replace("{model}", urllib.parse.quote(model, safe=""))
        return self.base_url + path


@dataclass(frozen=True, slots=True)
class Target:
    """One (provider, upstream model) a route can send to, with its effective timeouts and retry."""

    provider: Provider
    model: str
    timeouts: Timeouts
    retry: RetryPolicy

    @property
    def key(self) -> tuple[str, str]:
        return (self.provider.name, self.model)


@dataclass(frozen=True, slots=True)
class ModelRoute:
    alias: str
    root: RouteNode[Target]
    prices: Prices = field(default_factory=lambda: NO_PRICES)  # (provider, upstream model) -> price
    cache: CachePolicy | None = None  # the alias's response cache (models.<alias>.cache), when it caches

    @property
    def first(self) -> Target:
        return next(self.root.targets())


@dataclass(frozen=True, slots=True)
class Registry:
    config: GatewayConfig
    routes: Mapping[str, ModelRoute]
    unavailable: Mapping[str, str]
    created: int
    models_body: bytes
    keyring: KeyRing
    redactor: Redactor = field(default_factory=Redactor)  # every configured secret, for upstream text

    def model_body(self, alias: str) -> bytes | None:
        route = self.routes.get(alias)
        if route is None:
            return None
        return json_codec.dumps(_model_entry(route, self.created))


def _model_entry(route: ModelRoute, created: int) -> dict[str, Any]:
    return {"id": route.alias, "object": "model", "created": created, "owned_by": route.first.provider.name}


def _route_node(
    config: RouteConfig,
    providers: Mapping[str, Provider],
    retry: Mapping[str, Any],
    timeouts: Mapping[str, Any],
) -> RouteNode[Target] | None:
    """The route with disabled providers left out (None when nothing is left); a route's retry and
    timeouts settings apply to every target below it, the innermost setting winning."""
    retry = {**retry, **config.retry}
    timeouts = {**timeouts, **config.timeouts}
    children: list[RouteNode[Target]] = []
    for member in config.members:
        if isinstance(member, RouteConfig):
            child = _route_node(member, providers, retry, timeouts)
            if child is not None:
                children.append(child)
        elif member.provider in providers:
            provider = providers[member.provider]
            target = Target(
                provider,
                member.model,
                replace(provider.timeouts, **timeouts),
                provider.retry.overridden(retry),
            )
            children.append(RouteNode.leaf(target, member.weight))
    if not children:
        return None
    if len(children) == 1:  # one member (the usual alias): the member itself, in this node's place
        only = children[0]
        return RouteNode(only.strategy, only.children, only.target, weight=config.weight)
    return RouteNode(config.strategy, tuple(children), weight=config.weight)


def build_registry(config: GatewayConfig, environ: Mapping[str, str] | None = None) -> Registry:
    """The registry for `config`. The proxy variables are read from `environ` (default: the process
    environment) now, once; TLS files are read now (a bad one is a problem listed with its path)."""
    environ = os.environ if environ is None else environ
    dialect_specs = resolve_dialects(config.dialects)
    problems: list[str] = []
    warnings: list[str] = []

    wanted = {p.dialect for p in config.providers.values()} | set(config.dialects)
    dialects: dict[str, Dialect] = {}
    for name in sorted(wanted):
        if name not in dialect_specs:
            continue
        where, spec = dialect_specs[name]
        try:
            dialects[name] = with_bridges(compile_dialect(name, spec, where))
        except RuleError as exc:
            problems.append(str(exc))

    redactor = Redactor(
        configured_secrets(config) + _environment_proxy_passwords(config, environ),
        names=[d.auth_header for d in dialects.values() if d.auth_header],
    )
    providers: dict[str, Provider] = {}
    for name, pconf in config.providers.items():
        if pconf.dialect not in dialect_specs:
            unknown = unknown_name("dialect", pconf.dialect, dialect_specs, listed_as="known")
            problems.append(f"providers.{name}.dialect: {unknown}")
            continue
        dialect = dialects.get(pconf.dialect)
        if dialect is None or pconf.disabled_reason is not None:
            continue
        try:
            provider = _provider(pconf, dialect, config.upstream)
            egress = _egress(provider, pconf, config.upstream, environ)
        except (RuleError, TlsProblem) as exc:
            problems.append(str(exc))
            continue
        providers[name] = replace(provider, redactor=redactor, egress=egress, upstream=config.upstream)
        if pconf.transport == "http" and (warning := tls_warning(pconf.tls, f"providers.{name}")):
            warnings.append(warning)
    if problems:
        raise ConfigError(problems)
    if warnings:
        config = replace(config, warnings=config.warnings + tuple(warnings))

    routes: dict[str, ModelRoute] = {}
    unavailable: dict[str, str] = {}
    for alias, route in config.models.items():
        root = _route_node(route, providers, {}, {})
        if root is not None:
            routes[alias] = ModelRoute(alias, root, cache=route.cache)
        else:
            reasons = {
                t.provider: config.providers[t.provider].disabled_reason or "disabled"
                for t in route.targets()
            }
            unavailable[alias] = "; ".join(f"provider {p!r} is disabled: {r}" for p, r in reasons.items())

    prices, price_warnings = target_prices(
        config, (t.key for route in routes.values() for t in route.root.targets())
    )
    routes = {alias: replace(route, prices=prices) for alias, route in routes.items()}
    if price_warnings:
        config = replace(config, warnings=config.warnings + tuple(price_warnings))

    created = int(time.time())
    listing = {"object": "list", "data": [_model_entry(route, created) for route in routes.values()]}
    return Registry(
        config=config,
        routes=MappingProxyType(routes),
        unavailable=MappingProxyType(unavailable),
        created=created,
        models_body=json_codec.dumps(listing),
        keyring=KeyRing(config.auth.keys),
        redactor=redactor,
    )


def configured_secrets(config: GatewayConfig) -> list[str | None]:
    """Every secret the config holds, for the redactor: keys, AWS secrets, secret header values and
    `vars`, proxy and Redis URL passwords."""
    secrets: list[str | None] = []
    for pconf in config.providers.values():
        secrets.append(pconf.api_key)
        if pconf.aws is not None:
            secrets += [pconf.aws.secret_access_key, pconf.aws.session_token]
        secrets += [value for name, value in pconf.headers.items() if _secret_header(name)]
        secrets += [value for name, value in pconf.vars.items() if _secret_header(name)]
        if isinstance(pconf.proxy, str):
            secrets.append(urllib.parse.urlsplit(pconf.proxy).password)
    if config.auth.redis_url:
        secrets.append(urllib.parse.urlsplit(config.auth.redis_url).password)
    return secrets


def _environment_proxy_passwords(config: GatewayConfig, environ: Mapping[str, str]) -> list[str | None]:
    """Passwords in the proxy URLs of the environment, when providers may use them."""
    if not config.upstream.trust_env:
        return []
    passwords: list[str | None] = []
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        url = environ.get(name, "")
        if "@" in url:
            passwords.append(urllib.parse.urlsplit(url if "://" in url else "http://" + url).password)
    return passwords


def _secret_header(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in ("auth", "key", "token", "secret"))


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill_placeholders(text: str, values: Mapping[str, str], where: str) -> str:
    """Replace `{name}` from `values`; `{model}` is kept for each request; anything else is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "model":
            return match.group(0)
        if name not in values:
            raise RuleError(where, f"{{{name}}} has no value: set it under the provider's `vars`")
        return values[name]

    return _PLACEHOLDER.sub(replace, text)


def _egress(
    provider: Provider, pconf: ProviderConfig, upstream: UpstreamSettings, environ: Mapping[str, str]
) -> Egress:
    """The provider's TLS context (built now) and proxy (its own, or the environment's now)."""
    if pconf.transport != "http":
        return DIRECT
    where = f"providers.{pconf.name}"
    try:
        proxy = proxy_for(provider.base_url, pconf.proxy, environ, upstream.trust_env)
    except ValueError as exc:
        raise RuleError(f"{where}.proxy", str(exc)) from None
    context = ssl_context_for(pconf.tls, where)
    return DIRECT if context is None and proxy is None else Egress(context, proxy)


def _provider(pconf: ProviderConfig, dialect: Dialect, upstream: UpstreamSettings) -> Provider:
    where = f"providers.{pconf.name}"
    values = {**dialect.vars, **pconf.vars}
    override = compile_transform(pconf.request, dialect.compiler, f"{where}.request")
    operations = {
        op: replace(
            operation,
            path=fill_placeholders(operation.path, values, f"{where} (path of {op})"),
            stream_path=(
                fill_placeholders(operation.stream_path, values, f"{where} (stream_path of {op})")
                if operation.stream_path
                else None
            ),
            request=chain_transforms(operation.request, override),
        )
        for op, operation in dialect.operations.items()
    }
    headers = _headers(pconf, dialect, upstream)
    native = {
        key: Operation(
            path=fill_placeholders(path, values, f"{where} (native path of {key})"),
            stream_path=None,
            request=IDENTITY,
            response=IDENTITY,
            stream=None,
        )
        for key, path in dialect.native.items()
    }
    return Provider(
        name=pconf.name,
        dialect=dialect,
        transport=pconf.transport,
        base_url=fill_placeholders(pconf.base_url, values, f"{where}.base_url"),
        headers=MappingProxyType(
            {k: fill_placeholders(v, values, f"{where}.headers.{k}") for k, v in headers.items()}
        ),
        timeouts=pconf.timeouts,
        operations=MappingProxyType(operations),
        native=MappingProxyType(native),
        unsupported_params=pconf.unsupported_params,
        client_headers=pconf.client_headers,
        server_tools=pconf.server_tools,
        retry=pconf.retry,
        cooldown=pconf.cooldown,
        signer=_signer(pconf, dialect, values, where),
    )


def _signer(pconf: ProviderConfig, dialect: Dialect, values: Mapping[str, str], where: str) -> Signer | None:
    if dialect.sigv4_service is None or pconf.api_key or pconf.transport != "http":
        return None
    region = fill_placeholders(dialect.sigv4_region, values, f"{where}.vars.region")
    aws = pconf.aws or AwsCredentials()
    try:
        if aws.access_key_id:
            return SigV4Signer(dialect.sigv4_service, region, aws)
        # botocore's chain, resolved on first use (no I/O while the registry is built)
        chain = CredentialChain(pconf.name, botocore_chain(aws.profile))
        return SigV4Signer(dialect.sigv4_service, region, chain=chain)
    except RuntimeError as exc:
        raise RuleError(where, str(exc)) from None


def _headers(pconf: ProviderConfig, dialect: Dialect, upstream: UpstreamSettings) -> dict[str, str]:
    """Our User-Agent and `Accept-Encoding: identity` (no decoding work, no compressed stream to
    buffer), then dialect headers, then the provider's (null removes one), then auth; `{api_key}`
    filled in."""
    merged: dict[str, str | None] = {
        "Content-Type": "application/json",
        "User-Agent": upstream.user_agent or f"llm-gateway/{__version__}",
        "Accept-Encoding": "identity",
        **dialect.headers,
        **pconf.headers,
    }
    if dialect.auth_header and dialect.auth_value and pconf.api_key:
        merged[dialect.auth_header] = dialect.auth_value
    key = pconf.api_key or ""
    return {
        name: value.replace("{api_key}", key)
        for name, value in merged.items()
        if value is not None and (key or "{api_key}" not in value)
    }
