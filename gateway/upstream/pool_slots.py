"""What the connection pool counts its limits on: origins (scheme, host, port) with their open
connections and waiters, routes (an origin through one egress) with their idle connections, and
the requests waiting for a slot. Plain records: the pool (gateway/upstream/pool.py) keeps them right."""

from __future__ import annotations

import asyncio
from collections import deque

from gateway.upstream.dialer import ConnectError
from gateway.upstream.egress import Egress
from gateway.upstream.http1 import Http1Connection


class PoolSaturated(ConnectError):
    """No connection slot came free within `pool_timeout`, or too many requests were waiting already:
    the gateway is busy, the upstream is not at fault."""

    def __init__(self, origin: str, reason: str) -> None:
        super().__init__(f"no connection to {origin}: {reason}")
        self.origin = origin
        self.reason = reason


class Origin:
    """One (scheme, host, port): its connection count (for the per-origin limit) and its waiters."""

    __slots__ = ("label", "open", "opening", "routes", "waiters")

    def __init__(self, label: str) -> None:
        self.label = label
        self.open = 0  # connections open, idle or busy
        self.opening = 0  # slots taken by connections being opened
        self.routes: list[Route] = []
        self.waiters: deque[Waiter] = deque()

    def has_idle(self) -> bool:
        return any(route.idle for route in self.routes)


class Route:
    """One origin through one egress: its idle connections, most recently used last."""

    __slots__ = ("egress", "idle", "open", "origin", "pool")

    def __init__(self, pool: object, origin: Origin, egress: Egress) -> None:
        self.pool = pool  # None once pruned: a target still holding it looks its route up again
        self.origin = origin
        self.egress = egress
        self.idle: list[Http1Connection] = []
        self.open = 0


class Waiter:
    """A request waiting for a slot: its future gets an idle connection, or None for a reservation
    (a slot counted in `opening`, to open a new connection with)."""

    __slots__ = ("fresh", "future", "route", "seq", "timer")

    def __init__(
        self, route: Route, fresh: bool, future: asyncio.Future[Http1Connection | None], seq: int
    ) -> None:
        self.route = route
        self.fresh = fresh
        self.future = future
        self.seq = seq
        self.timer: asyncio.TimerHandle | None = None
