"""Keep-alive connections to upstreams, shared by every provider of one app.

Connections are kept per route: the origin (scheme, host, port) and the egress (TLS context, proxy),
since two connections are interchangeable only when all of these match. Reuse is most recently used
first; a connection idle longer than `keepalive` seconds, or closed by the upstream meanwhile, is
never handed out.

Limits, so that no buffer of waiting requests grows without bound and one provider cannot take
every connection:

- at most `limit` connections open at once (all origins together), and at most `per_origin` to one
  (scheme, host, port): a slow provider holding its streams leaves room for the others. Past a
  limit an idle connection is closed to make room (any origin's for the global limit, one of the
  same origin for the per-origin limit), or the request waits for a slot;
- at most `max_waiters` requests wait, each at most `pool_timeout` seconds (its own budget, not the
  connect timeout: a busy pool is not a slow upstream). Past either: `PoolSaturated`, which the
  transport turns into a 503 that does not count against the upstream;
- a freed slot is handed over when it is freed, to the oldest waiter that can use it (all origins
  together, first come first served): the idle connection itself, or a reservation to open a new
  one. A request arriving meanwhile cannot take it, and a waiter cancelled after being handed one
  passes it on (the wake-up that CPython's `asyncio.Semaphore` used to lose, bpo-45997/gh-90155).

TLS and proxies are the `Dialer`'s: name resolution with a short cache, happy eyeballs, CONNECT.
`stats()` gives what the metrics show (open, idle, waiting per origin); nothing is counted per
request for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from gateway.upstream.dialer import ConnectError as ConnectError
from gateway.upstream.dialer import Dialer
from gateway.upstream.egress import DIRECT, Egress
from gateway.upstream.http1 import Http1Connection
from gateway.upstream.pool_slots import Origin, Route, Waiter
from gateway.upstream.pool_slots import PoolSaturated as PoolSaturated
from gateway.upstream.request_target import RequestTarget as RequestTarget
from gateway.upstream.request_target import parse_url as parse_url

_URL_CACHE_SIZE = 4096


class ConnectionPool:
    def __init__(
        self,
        limit: int = 1024,
        keepalive: float = 60.0,
        *,
        per_origin: int = 512,
        max_waiters: int = 1024,
        pool_timeout: float = 10.0,
        dialer: Dialer | None = None,
    ) -> None:
        self._limit = limit
        self._per_origin = per_origin
        self._max_waiters = max_waiters
        self._pool_timeout = pool_timeout
        self._keepalive = keepalive
        self._dialer = dialer or Dialer()
        self._origins: dict[tuple[str, str, int], Origin] = {}
        self._routes: dict[tuple[str, str, int, Egress], Route] = {}
        self._open: set[Http1Connection] = set()
        self._opening = 0
        self._waiting = 0
        self._seq = 0
        self._targets: dict[str, RequestTarget] = {}
        self._other_targets: dict[tuple[str, Egress], RequestTarget] = {}  # a URL used through 2+ egresses
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    def target(self, url: str, egress: Egress = DIRECT) -> RequestTarget:
        """`url` parsed, from a cache (a config has few distinct upstream URLs)."""
        found = self._targets.get(url)
        if found is not None and found.egress is egress:
            return found
        if found is not None:  # the same URL through another egress (two providers, two proxies)
            other = self._other_targets.get((url, egress))
            if other is not None:
                return other
        if len(self._targets) + len(self._other_targets) >= _URL_CACHE_SIZE:
            self._targets.clear()
            self._other_targets.clear()
        made = parse_url(url, egress)
        made.route = self._route(made)
        if found is None:
            self._targets[url] = made
        else:
            self._other_targets[(url, egress)] = made
        return made

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def configure(self, limit: int, per_origin: int, max_waiters: int, pool_timeout: float) -> None:
        """New limits for the live pool (a reload). Connections over a lowered limit are closed as
        they are released; waiters that a raised one lets through go now. Routes nothing uses any
        more are forgotten (a reload may have replaced a provider's TLS context)."""
        self._limit = limit
        self._per_origin = per_origin
        self._max_waiters = max_waiters
        self._pool_timeout = pool_timeout
        self._targets.clear()
        self._other_targets.clear()
        for key, route in list(self._routes.items()):
            if not route.open and not any(w.route is route for w in route.origin.waiters):
                del self._routes[key]
                route.origin.routes.remove(route)
                route.pool = None  # a connection still being opened on it is closed when released
        for place, origin in list(self._origins.items()):
            if not (origin.routes or origin.waiters or origin.open or origin.opening):
                del self._origins[place]
        self._grant()

    async def acquire(
        self, target: RequestTarget, connect_timeout: float | None, fresh: bool = False
    ) -> Http1Connection:
        """A connection to `target`'s origin: an idle one (unless `fresh`), or a new one once a slot is
        free (within `pool_timeout`) and it is open (within `connect_timeout`)."""
        route = target.route
        if route is None or route.pool is not self:
            route = self._route(target)
        if not fresh:
            conn = self._take_idle(route)
            if conn is not None:
                return conn
        if self._closed:
            raise ConnectError("the connection pool is closed")
        if not self._reserve(route.origin):
            conn = await self._wait(route, fresh)
            if conn is not None:
                return conn
        return await self._connect(route, target, connect_timeout)

    def release(self, conn: Http1Connection, reusable: bool) -> None:
        """An exchange on `conn` is over; keep it for the next request if it can carry one."""
        if not reusable or self._closed:
            conn.close()
            self._forget(conn)
            return
        self._keep(conn, time.monotonic())

    def stats(self) -> list[tuple[str, int, int, int]]:
        """(origin, open, idle, waiting) for every origin: read at scrape time, possibly from another
        thread, so only whole-object reads (a list of a dict's values, a length)."""
        figures = []
        for origin in list(self._origins.values()):
            idle = sum(len(route.idle) for route in list(origin.routes))
            figures.append((origin.label, origin.open, idle, len(origin.waiters)))
        return figures

    async def close(self) -> None:
        """Close every connection, idle or in use, and turn every waiter away (at shutdown)."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        for origin in self._origins.values():
            origin.open = 0
            for route in origin.routes:
                route.idle.clear()
                route.open = 0
            while origin.waiters:
                waiter = origin.waiters.popleft()
                if not waiter.future.done():
                    waiter.future.set_exception(ConnectError("the connection pool is closed"))
        self._waiting = 0
        await asyncio.sleep(0)  # let the transports run their connection_lost

    # -- internals -------------------------------------------------------------------------------

    def _route(self, target: RequestTarget) -> Route:
        key = (target.scheme, target.host, target.port, target.egress)
        route = self._routes.get(key)
        if route is None:
            origin_key = (target.scheme, target.host, target.port)
            origin = self._origins.get(origin_key)
            if origin is None:
                origin = self._origins[origin_key] = Origin(f"{target.scheme}://{target.host_header}")
            route = self._routes[key] = Route(self, origin, target.egress)
            origin.routes.append(route)
        return route

    def _take_idle(self, route: Route) -> Http1Connection | None:
        """The most recently used idle connection of `route` that is still good."""
        idle = route.idle
        if not idle:
            return None
        expired_before = time.monotonic() - self._keepalive
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.idle_since > expired_before:
                return conn
            conn.close()
            self._forget(conn)
        return None

    def _keep(self, conn: Http1Connection, idle_since: float) -> None:
        """`conn` is free: to the first waiter of its route, else idle (over a lowered limit: closed)."""
        route: Route = conn.key  # type: ignore[assignment]  # set by _connect
        origin = route.origin
        if origin.open > self._per_origin or len(self._open) > self._limit or route.pool is not self:
            conn.close()
            self._forget(conn)
            return
        if origin.waiters:
            for waiter in origin.waiters:
                if waiter.route is route and not waiter.fresh:
                    if self._waits_longer(waiter):
                        break  # kept idle, then closed below to make room for the older waiter
                    self._dequeue(waiter)
                    waiter.future.set_result(conn)
                    return
        conn.idle_since = idle_since
        route.idle.append(conn)
        if self._waiting:
            self._grant()  # waiters held by the global limit: this idle connection can make room
        if self._sweeper is None and not conn.closed:
            self._sweeper = asyncio.get_running_loop().call_later(self._keepalive, self._sweep)

    def _reserve(self, origin: Origin) -> bool:
        """Take a slot for a new connection to `origin`, closing an idle connection to make room if
        need be; False when there is no room."""
        if origin.open + origin.opening >= self._per_origin and not self._close_idle(origin):
            return False
        if len(self._open) + self._opening >= self._limit and not self._close_idle(None):
            return False
        origin.opening += 1
        self._opening += 1
        return True

    def _unreserve(self, origin: Origin) -> None:
        origin.opening -= 1
        self._opening -= 1
        if self._waiting:
            self._grant()

    async def _wait(self, route: Route, fresh: bool) -> Http1Connection | None:
        """Queue for a slot: an idle connection handed over, or None with a slot reserved."""
        origin = route.origin
        if self._waiting >= self._max_waiters:
            raise PoolSaturated(
                origin.label, f"{self._waiting} requests are waiting for a connection already"
            )
        loop = asyncio.get_running_loop()
        waiter = Waiter(route, fresh, loop.create_future(), self._seq)
        self._seq += 1
        waiter.timer = loop.call_later(self._pool_timeout, self._expire, waiter)
        origin.waiters.append(waiter)
        self._waiting += 1
        future = waiter.future
        try:
            return await future
        except BaseException:
            if future.done() and not future.cancelled() and future.exception() is None:
                # handed a slot, then cancelled before it could run: the slot goes to the next waiter
                self._pass_on(future.result(), origin)
            elif waiter in origin.waiters:
                self._dequeue(waiter)
            raise
        finally:
            waiter.timer.cancel()

    def _waits_longer(self, waiter: Waiter) -> bool:
        """Whether a waiter of another origin has waited longer than `waiter` and could use its
        origin's room (it is held by the limit on all origins: the oldest goes first)."""
        for origin in self._origins.values():
            if (
                origin is not waiter.route.origin
                and origin.waiters
                and origin.waiters[0].seq < waiter.seq
                and origin.open + origin.opening < self._per_origin
            ):
                return True
        return False

    def _expire(self, waiter: Waiter) -> None:
        if waiter.future.done():
            return
        self._dequeue(waiter)
        waiter.future.set_exception(
            PoolSaturated(
                waiter.route.origin.label, f"no connection was free within {self._pool_timeout:g} s"
            )
        )

    def _dequeue(self, waiter: Waiter) -> None:
        waiter.route.origin.waiters.remove(waiter)
        self._waiting -= 1

    def _pass_on(self, handed: Http1Connection | None, origin: Origin) -> None:
        if handed is None:
            self._unreserve(origin)
        elif self._closed:
            handed.close()
        else:
            self._keep(handed, handed.idle_since)

    def _grant(self) -> None:
        """Hand freed capacity out: to the oldest waiter (all origins together) whose origin has room,
        while there is room."""
        while self._waiting and not self._closed:
            chosen: Origin | None = None
            for origin in self._origins.values():
                if not origin.waiters or (
                    chosen is not None and chosen.waiters[0].seq < origin.waiters[0].seq
                ):
                    continue
                if origin.open + origin.opening < self._per_origin or origin.has_idle():
                    chosen = origin
            if chosen is None:
                return
            waiter = chosen.waiters[0]
            idle = None if waiter.fresh else self._take_idle(waiter.route)
            if idle is None and not self._reserve(chosen):
                return
            self._dequeue(waiter)
            waiter.future.set_result(idle)

    async def _connect(
        self, route: Route, target: RequestTarget, connect_timeout: float | None
    ) -> Http1Connection:
        """Open a connection with the slot reserved for it (given back if that fails)."""
        origin = route.origin
        loop = asyncio.get_running_loop()

        def factory() -> Http1Connection:
            return Http1Connection(loop, self._forget)

        try:
            async with asyncio.timeout(connect_timeout or None):
                conn = await self._dialer.open(target.scheme, target.host, target.port, route.egress, factory)
        except BaseException:
            self._unreserve(origin)
            raise
        origin.opening -= 1
        self._opening -= 1
        conn.key = route
        if self._closed or conn.closed:
            conn.close()
            if self._waiting:
                self._grant()
            raise ConnectError(
                "the connection pool is closed"
                if self._closed
                else f"{origin.label} closed the new connection"
            )
        self._open.add(conn)
        origin.open += 1
        route.open += 1
        return conn

    def _close_idle(self, origin: Origin | None) -> bool:
        """Close the least recently used idle connection of a route (of `origin`, or of any)."""
        routes = origin.routes if origin is not None else self._routes.values()
        for route in routes:
            if route.idle:
                conn = route.idle.pop(0)
                conn.close()
                self._drop(conn)
                return True
        return False

    def _forget(self, conn: Http1Connection) -> None:
        """`conn` is closed (by us or by the upstream): it no longer counts, idle or open; its slot
        goes to a waiter."""
        if self._drop(conn) and self._waiting:
            self._grant()

    def _drop(self, conn: Http1Connection) -> bool:
        if conn not in self._open:
            return False
        self._open.discard(conn)
        route: Route = conn.key  # type: ignore[assignment]
        route.origin.open -= 1
        route.open -= 1
        with contextlib.suppress(ValueError):
            route.idle.remove(conn)
        return True

    def _sweep(self) -> None:
        """Close connections idle past the keep-alive time; re-arm while any stay idle."""
        self._sweeper = None
        loop = asyncio.get_running_loop()
        expired_before = time.monotonic() - self._keepalive
        remaining = False
        for route in list(self._routes.values()):
            idle = route.idle
            for conn in [conn for conn in idle if conn.closed or conn.idle_since <= expired_before]:
                conn.close()
                self._forget(conn)
            remaining = remaining or bool(idle)
        if remaining and not self._closed:
            self._sweeper = loop.call_later(self._keepalive / 2, self._sweep)
