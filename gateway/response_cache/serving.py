"""A request to an alias that caches: served from the cache, or by its route and then kept.

- `x-gateway-cache: hit|miss|skip` on every answer of such an alias (`skip`: the client's
  `Cache-Control: no-cache` or `max-age=0`; the cache was not read, the fresh answer is still kept).
  `Cache-Control: no-store`: the answer is not kept (a kept one may still be served). The same verdict
  is the access log's `cache` and `gateway_cache_requests_total{alias, result}`.
- Only complete successful answers are kept: a 200 JSON reply (no finish_reason `error`, no `error`,
  no status other than `completed`), or a stream that ended `ok` (no finish_reason `error` in it). A
  stream is kept as the frames the client got and served again as a stream; a stream request finds
  only a stream (and a JSON one only JSON): `stream` is part of the key (key.py).
- One entry serves every gateway key, but for a stored response (the Responses API's `store`, or a
  request continuing one): those are their key's own, so such an entry is too.
- A hit costs nothing: `cost_usd` 0 (and `x-gateway-cost-usd: 0` on a JSON answer), no usage counted
  (no tokens were used); its provider and upstream model are those that first answered, with no
  attempt. Identical requests that arrive together are each a miss (no coalescing).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from aiohttp import web

from gateway import json_codec
from gateway.config.model import CachePolicy
from gateway.engine.registry import ModelRoute
from gateway.prices.price import cost_text
from gateway.proxy.attempts import DROPPED_PARAMS, DROPPED_TOOLS, serve
from gateway.proxy.stream_relay import SSE_HEADERS
from gateway.proxy.target_request import Exchange
from gateway.response_cache.cache import RESPONSE_CACHE
from gateway.response_cache.entry import CachedReply
from gateway.response_cache.key import cache_key
from gateway.response_cache.recording import RecordingStreamResponse
from gateway.spend.cost import COST_HEADER

CACHE_HEADER = "x-gateway-cache"
Verdict = Literal["hit", "miss", "skip"]

# headers of the first answer that a hit carries again: what the target left out of the request
_KEPT_HEADERS = (DROPPED_PARAMS, DROPPED_TOOLS)
_ERROR_FINISH = b'"finish_reason":"error"'
_FREE = cost_text(0.0)


async def serve_cached(
    exchange: Exchange, route: ModelRoute, operation: str, policy: CachePolicy
) -> web.StreamResponse:
    """`operation`: the client operation's key (its protocol's answer is what is kept)."""
    request = exchange.request
    cache = request.app[RESPONSE_CACHE]
    no_cache, no_store = _directives(request.headers.get("Cache-Control"))
    protocol = exchange.protocol
    relayed = [request.headers.get(name) for name in protocol.forward_headers] if protocol else []
    # stored responses are their key's own: a request that continues one, or whose answer is kept (its
    # id then names a response of that key), is cached for that key alone
    stored = exchange.keep is not None or exchange.continued is not None
    owner = exchange.access.key if stored else None
    key = cache_key(policy.scope, route.alias, operation, exchange.body, relayed, owner)
    verdict: Verdict = "skip"
    if not no_cache:
        kept = await cache.get(key)
        if kept is not None and kept.stream == exchange.stream:
            _say(exchange, route.alias, "hit")
            return await _replay(exchange, kept)
        verdict = "miss"
    _say(exchange, route.alias, verdict)
    response = await serve(exchange, route)
    if not no_store:
        reply = _keepable(exchange, response)
        if reply is not None:
            await cache.put(key, reply, policy.ttl)
    return response


def _directives(header: str | None) -> tuple[bool, bool]:
    """(no-cache, no-store) from a request's Cache-Control (RFC 9111: no-cache, or max-age=0, asks
    for an answer not served from a cache; no-store, for nothing of the exchange to be kept)."""
    if not header:
        return False, False
    names = {part.strip().lower().replace(" ", "") for part in header.split(",")}
    return "no-cache" in names or "max-age=0" in names, "no-store" in names


def _say(exchange: Exchange, alias: str, verdict: Verdict) -> None:
    access = exchange.access
    access.cache = verdict
    access.response_headers[CACHE_HEADER] = verdict
    exchange.metrics.cache_request(alias, verdict)


async def _replay(exchange: Exchange, kept: CachedReply) -> web.StreamResponse:
    access = exchange.access
    access.provider, access.upstream_model = kept.provider, kept.upstream_model
    access.attempts = []
    access.cost_usd = 0.0
    if not kept.stream:
        return web.Response(body=kept.body, headers={**dict(kept.headers), COST_HEADER: _FREE})
    headers = {**SSE_HEADERS, **dict(kept.headers), **access.response_headers}
    response = web.StreamResponse(status=200, headers=headers)
    try:
        await response.prepare(exchange.request)
        access.ttfb_ms = round((time.perf_counter() - access.started) * 1000, 3)
        await response.write(kept.body)
        await response.write_eof()
        access.stream_outcome = "ok"
    except ConnectionResetError:  # the client went away
        access.client_closed = True
        access.stream_outcome = "client_closed"
    return response


def _keepable(exchange: Exchange, response: web.StreamResponse) -> CachedReply | None:
    """The answer as it may be kept, or None: not a complete success."""
    access = exchange.access
    if response.status != 200:
        return None
    kept = tuple(
        (name, access.response_headers[name]) for name in _KEPT_HEADERS if name in access.response_headers
    )
    if isinstance(response, RecordingStreamResponse):
        frames = response.recorded()
        if frames is None or access.stream_outcome != "ok" or _ERROR_FINISH in frames:
            return None
        return CachedReply(True, frames, kept, access.provider, access.upstream_model)
    if not isinstance(response, web.Response) or response.prepared or not isinstance(response.body, bytes):
        return None
    body = response.body
    if len(body) > exchange.request.app[RESPONSE_CACHE].max_entry_bytes or not _complete(body):
        return None
    own = tuple((name, value) for name, value in response.headers.items() if name.lower() != "content-length")
    return CachedReply(False, body, own + kept, access.provider, access.upstream_model)


def _complete(body: bytes) -> bool:
    """A JSON answer that is a success through and through, in any client protocol's form: no error
    member, no status but `completed`, no choice that finished with an error."""
    try:
        reply: Any = json_codec.loads(body)
    except json_codec.JSONDecodeError:
        return False
    if not isinstance(reply, dict) or reply.get("error") or reply.get("type") == "error":
        return False
    status = reply.get("status")
    if status is not None and status != "completed":
        return False
    choices = reply.get("choices")
    if isinstance(choices, list):
        return not any(isinstance(c, dict) and c.get("finish_reason") == "error" for c in choices)
    return True
