"""/metrics, /healthz and /readyz. Register them on an app that has METRICS and READINESS set.

With gateway keys configured, /metrics is for keys with `metrics: true` only (Prometheus sends one
as `authorization: {credentials_file: ...}`): its labels name models, providers and keys. Without
keys it is as open as the API (a sidecar on loopback). /healthz and /readyz stay open for probes.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway import json_codec
from gateway.app_keys import REGISTRY
from gateway.errors import GatewayError
from gateway.observability.keys import METRICS, READINESS

_NO_STORE = "no-store"


def require_metrics_key(request: web.Request) -> None:
    """Return if the request may read /metrics: no keys configured (or no registry: a bare app), or
    a key with `metrics: true`; else 401 (no key, or not a known one) or 403 (a key without it)."""
    holder = request.app.get(REGISTRY)
    if holder is None or holder.current.keyring.open:
        return
    key = holder.current.keyring.identify(request.headers.get("Authorization"))
    if not key.metrics:
        raise GatewayError(
            403,
            f"The key '{key.name}' may not read /metrics (give a key `metrics: true` for scrapers).",
            type_="permission_error",
            code="metrics_not_allowed",
        )


async def metrics_handler(request: web.Request) -> web.Response:
    """The Prometheus exposition, gzipped when the scraper accepts it. Rendering is pure Python and
    grows with the label sets (~100 ms for 60 model/provider pairs): it runs in a thread so that
    the event loop keeps serving requests during a scrape."""
    require_metrics_key(request)
    body, content_type = await asyncio.to_thread(request.app[METRICS].render)
    response = web.Response(body=body, headers={"Content-Type": content_type, "Cache-Control": _NO_STORE})
    response.enable_compression()
    return response


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: 200 `ok` for as long as the process answers at all."""
    return web.Response(text="ok", headers={"Cache-Control": _NO_STORE})


async def root(_request: web.Request) -> web.Response:
    """`GET /` and `HEAD /`: 200, for clients that probe the base URL before using it (agent CLIs do)."""
    return web.Response(text="ok", headers={"Cache-Control": _NO_STORE})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 while a config is loaded and the process is not draining; otherwise 503 with
    `{"status": "not_ready", "reasons": [...]}` (`config_not_loaded`, `draining`)."""
    reasons = request.app[READINESS].reasons()
    body = {"status": "not_ready", "reasons": reasons} if reasons else {"status": "ready"}
    return web.Response(
        status=503 if reasons else 200,
        body=json_codec.dumps(body),
        headers={"Content-Type": "application/json", "Cache-Control": _NO_STORE},
    )
