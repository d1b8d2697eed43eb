"""The aiohttp application factory."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING

from aiohttp import web

from gateway import __version__
from gateway.app_keys import COOLDOWNS, LIMITS, REGISTRY, RNG, TRANSPORTS, VALIDATOR
from gateway.auth.limits import Limits, MemoryLimits, RedisLimits
from gateway.auth.rate_limiter import RateLimiter
from gateway.engine.protocol import operations as client_operations
from gateway.observability import endpoints
from gateway.observability.keys import METRICS, READINESS, Readiness
from gateway.observability.metrics import FLUSH_INTERVAL_S, GatewayMetrics
from gateway.proxy import forward, model_listing
from gateway.proxy.edge import UNMATCHED, at_the_edge, unmatched
from gateway.proxy.request_validation import RequestValidator
from gateway.reload import RegistryHolder
from gateway.response_cache.cache import CacheStore, cache_context
from gateway.responses_store.backends import ResponseBackend
from gateway.responses_store.lifecycle import responses_context
from gateway.routing.cooldown import Cooldowns
from gateway.spend.endpoint import key_spend
from gateway.tracing.settings import tracing_from_environment
from gateway.upstream.dialer import Dialer
from gateway.upstream.mock import MockTransport
from gateway.upstream.pool import ConnectionPool
from gateway.upstream.resolver import Resolver
from gateway.upstream.tls import default_ssl_context
from gateway.upstream.transport import HttpTransport, Transport

if TYPE_CHECKING:
    from gateway.tracing.tracing import Tracing

UPSTREAM_KEEPALIVE_S = 60.0  # an idle upstream connection is closed after this


def _track_config(holder: RegistryHolder, metrics: GatewayMetrics) -> None:
    def loaded(ok: bool) -> None:
        if ok:
            config = holder.current.config
            metrics.config_loaded(config.digest, __version__, float(holder.current.created))
        metrics.config_reload(ok)

    config = holder.current.config
    metrics.config_loaded(config.digest, __version__, float(holder.current.created))
    holder.listeners.append(loaded)


async def _flush_metrics(app: web.Application) -> AsyncIterator[None]:
    """Multi-process mode: this worker's figures reach the shared files every FLUSH_INTERVAL_S (and at
    shutdown), where any worker's /metrics reads them; one process renders its own on every scrape."""
    metrics = app[METRICS]
    timer: asyncio.TimerHandle | None = None
    if metrics.multiprocess_dir is not None:
        loop = asyncio.get_running_loop()

        def tick() -> None:
            nonlocal timer
            metrics.flush()
            timer = loop.call_later(FLUSH_INTERVAL_S, tick)

        timer = loop.call_later(FLUSH_INTERVAL_S, tick)
    yield
    if timer is not None:
        timer.cancel()
    metrics.flush()


def _connection_pool(holder: RegistryHolder) -> tuple[ConnectionPool, Callable[[bool], None]]:
    """The upstream pool, sized by `upstream:` (the shared TLS context is built here, at start, not
    on the first request), and the reload listener that applies new limits and DNS cache TTL to it."""
    settings = holder.current.config.upstream
    resolver = Resolver(settings.dns_cache_ttl)
    pool = ConnectionPool(
        settings.max_connections,
        UPSTREAM_KEEPALIVE_S,
        per_origin=settings.max_connections_per_origin,
        max_waiters=settings.max_pool_waiters,
        pool_timeout=settings.pool_timeout,
        dialer=Dialer(resolver, default_ssl_context()),
    )

    def reloaded(ok: bool) -> None:
        if ok:
            now = holder.current.config.upstream
            resolver.ttl = now.dns_cache_ttl
            pool.configure(
                now.max_connections, now.max_connections_per_origin, now.max_pool_waiters, now.pool_timeout
            )

    return pool, reloaded


def create_app(
    holder: RegistryHolder,
    *,
    transports: Mapping[str, Transport] | None = None,
    cooldowns: Cooldowns | None = None,
    rng: random.Random | None = None,
    limits_store: Limits | None = None,
    cache_store: CacheStore | None = None,
    responses_backend: ResponseBackend | None = None,
    tracing: Tracing | None = None,
) -> web.Application:
    """The gateway app around a loaded registry. `transports`, `cooldowns` (with its clock), `rng`,
    `limits_store` (the rate-limit counters), `cache_store` (the response cache's) and
    `responses_backend` (stored responses') replace the real ones in tests; `tracing`, the one the
    OTEL_* environment asks for (none: no tracing code on the request path at all)."""
    limits = holder.current.config.limits
    tracing = tracing or tracing_from_environment()
    # no aiohttp middleware: the edge (and tracing inside it) wraps every route (proxy/edge.py)
    inner = () if tracing is None else (tracing.middleware(),)
    app = web.Application(client_max_size=limits.max_body_bytes)
    app[REGISTRY] = holder
    app[VALIDATOR] = RequestValidator()
    app[COOLDOWNS] = cooldowns or Cooldowns()
    app[RNG] = rng or random.Random()
    app[READINESS] = Readiness()
    app[METRICS] = metrics = GatewayMetrics()
    _track_config(holder, metrics)
    auth = holder.current.config.auth

    async def upstream_session(app: web.Application) -> AsyncIterator[None]:
        pool, reloaded = _connection_pool(holder)
        holder.listeners.append(reloaded)
        metrics.watch_pool(pool.stats)
        chosen: dict[str, Transport] = {"http": HttpTransport(pool), "mock": MockTransport()}
        used = dict(transports) if transports is not None else chosen
        app[TRANSPORTS] = used if tracing is None else tracing.transports(used)  # traced: attempts are spans
        # the counter store is chosen at start (a reload keeps it, and its store_failure): Redis shares
        # limits across processes
        store = limits_store or (
            RedisLimits(auth.redis_url) if auth.store == "redis" and auth.redis_url else MemoryLimits()
        )
        app[LIMITS] = RateLimiter(
            store,
            auth.store_failure,
            metrics.rate_limit_store_error,
            redact=lambda text: holder.current.redactor.redact(text),
            budget_failure=auth.budget_store_failure,
            budget_used=metrics.spend.budget_used,
        )
        yield
        await app[LIMITS].close()  # pending spends get a few seconds
        holder.listeners.remove(reloaded)
        await pool.close()
        if tracing is not None:  # the spans still batched are exported (at most the exporter's timeout)
            await tracing.close()

    app.cleanup_ctx.append(upstream_session)
    app.cleanup_ctx.append(cache_context(holder, cache_store))  # the response cache's store (`cache:`)
    # stored responses (`responses:`)
    app.cleanup_ctx.append(responses_context(holder, responses_backend, metrics.response_store_error))
    app.cleanup_ctx.append(_flush_metrics)
    for operation in client_operations():  # the one table of client operations (gateway/protocols/)
        handler = at_the_edge(forward.handler_for(operation), inner)
        for path in operation.paths:
            app.router.add_route(operation.method, path, handler)
    app.router.add_get("/v1/models", at_the_edge(model_listing.list_models, inner))
    app.router.add_get("/v1/models/{model:.+}", at_the_edge(model_listing.retrieve_model, inner))
    app.router.add_get("/healthz", at_the_edge(endpoints.healthz, inner))
    app.router.add_get("/readyz", at_the_edge(endpoints.readyz, inner))
    app.router.add_get("/metrics", at_the_edge(endpoints.metrics_handler, inner))
    app.router.add_get("/v1/gateway/keys/{name}/spend", at_the_edge(key_spend, inner))  # admin keys only
    app.router.add_get("/", at_the_edge(endpoints.root, inner))  # (and HEAD): clients probe it
    # last: what no route serves (404) or serves for other methods (405), in the client's envelope
    app.router.add_route("*", r"/{path:[\s\S]*}", at_the_edge(unmatched, inner), name=UNMATCHED)
    return app
