"""The Redis client every shared store uses (rate limits and spend, stored responses, cached answers),
made one way: short socket timeouts and one retry at once — a pooled connection the server closed is
replaced; a server that is down is not waited for (the client's default is three tries, with
backoff). Each call is also bounded by REDIS_CALL_TIMEOUT_S by its caller, so a Redis that hangs
cannot hold a request."""

from __future__ import annotations

from typing import Any

REDIS_SOCKET_TIMEOUT_S = 0.5  # connecting to Redis, and each read or write on its socket
REDIS_CALL_TIMEOUT_S = 1.0  # one call, its one reconnect-and-retry included


def redis_client(url: str, setting: str) -> Any:
    """An asyncio Redis client for `url`; `setting` (e.g. `auth.store`) names what needs it when the
    `redis` extra is not installed."""
    try:
        import redis.asyncio as redis_asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise RuntimeError(
            f"{setting}: redis needs the redis package: pip install 'llm-gateway[redis]'"
        ) from exc
    return redis_asyncio.from_url(
        url,
        socket_timeout=REDIS_SOCKET_TIMEOUT_S,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT_S,
        retry=Retry(NoBackoff(), 1),
    )
