"""A failing limits store never fails a served request, and spending never holds a response.

Through the whole app (mock upstream) with stores that fail on cue, and with a real redis-server that
is stopped, or that never answers, mid-test.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.app_keys import LIMITS
from gateway.auth.limits import Limits, MemoryLimits, Usage
from gateway.auth.rate_limiter import RateLimiter
from gateway.config.loader import config_from_text, key_digest
from gateway.config.model import GatewayKey
from gateway.engine.registry import build_registry
from gateway.errors import GatewayError
from gateway.observability.keys import METRICS
from gateway.redis_client import REDIS_CALL_TIMEOUT_S
from gateway.reload import RegistryHolder
from gateway.store_failures import LOG_INTERVAL_S, RECHECK_S
from tests.support.redis_server import REDIS_SERVER, redis_server
from tests.support.spec_check import spec_errors

KEY = "gw-team-a-0123456789abcdef"
ROUTES = f"""
auth:
  store: STORE
  REDIS
  store_failure: FAILURE
  keys:
    - {{name: team-a, hash: "{key_digest(KEY)}", rpm: 100, tpm: 1000}}
providers: {{mock: {{dialect: mock, transport: mock}}}}
models:
  mock: [{{provider: mock, model: m}}]
"""
CHAT = {"model": "mock", "messages": [{"role": "user", "content": "one two three"}]}
AUTH = {"Authorization": f"Bearer {KEY}"}
TEAM_A = GatewayKey("team-a", key_digest(KEY), rpm=100, tpm=1000)
REFUSED = "Error 111 connecting to 127.0.0.1:6379. Connection refused."


def app_for(failure: str = "open", store: Limits | None = None, redis_url: str = "") -> web.Application:
    routes = (
        ROUTES.replace("FAILURE", failure)
        .replace("STORE", "redis" if redis_url else "memory")
        .replace("REDIS", f"redis_url: {redis_url}" if redis_url else "")
    )
    registry = build_registry(config_from_text(routes, "routes.yaml", {}))
    return create_app(RegistryHolder("routes.yaml", registry), limits_store=store)


def store_errors(app: web.Application, operation: str) -> float | None:
    return app[METRICS].registry.get_sample_value(
        "gateway_rate_limit_store_errors_total", {"operation": operation}
    )


def rate_headers(response: Any) -> list[str]:
    return [name for name in response.headers if name.lower().startswith("x-ratelimit-")]


class DownStore(MemoryLimits):
    """Redis as it is when it is down: every call fails."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.spend_failed = asyncio.Event()

    async def admit(self, key: GatewayKey) -> Usage:
        self.calls += 1
        raise ConnectionError(REFUSED)

    async def spend(self, key: GatewayKey, tokens: int) -> None:
        self.spend_failed.set()
        raise ConnectionError(REFUSED)


class SlowSpends(MemoryLimits):
    """Counts admits at once; every spend waits for `release`."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.spent: list[int] = []
        self.all_spent = asyncio.Event()

    async def spend(self, key: GatewayKey, tokens: int) -> None:
        await self.release.wait()
        await super().spend(key, tokens)
        self.spent.append(tokens)
        self.all_spent.set()


# -- through the app ------------------------------------------------------------------------------


async def test_open_serves_uncounted_logs_once_and_rests_the_store() -> None:
    store = DownStore()
    app = app_for("open", store)
    async with TestClient(TestServer(app)) as client:
        with structlog.testing.capture_logs() as events:
            responses = [await client.post("/v1/chat/completions", json=CHAT, headers=AUTH) for _ in range(3)]
        assert [r.status for r in responses] == [200, 200, 200]
        assert all(rate_headers(r) == [] for r in responses)
        logged = [e for e in events if e["event"] == "rate_limit_store_error"]
        assert len(logged) == 1
        assert logged[0]["operation"] == "admit" and "Connection refused" in logged[0]["error"]
        assert store.calls == 1  # the next two came within RECHECK_S: the store was left alone
        assert store_errors(app, "admit") == 1


async def test_closed_answers_503_in_openais_envelope() -> None:
    async with TestClient(TestServer(app_for("closed", DownStore()))) as client:
        response = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
        assert response.status == 503
        assert response.headers["retry-after"] == "1"
        body = await response.json()
        assert spec_errors("ErrorResponse", body) == []
        error = body["error"]
        assert (error["code"], error["type"]) == ("rate_limit_store_unavailable", "server_error")


async def test_the_response_goes_out_before_its_tokens_are_spent() -> None:
    store = SlowSpends()
    app = app_for("open", store)
    async with TestClient(TestServer(app)) as client:
        async with asyncio.timeout(5):  # the old code spent first: this request would wait for `release`
            response = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
            used = (await response.json())["usage"]["total_tokens"]
        assert response.status == 200
        assert store.spent == [] and app[LIMITS].pending_spends == 1
        store.release.set()
        await asyncio.wait_for(store.all_spent.wait(), 5)
        assert store.spent == [used]
        after = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
        assert after.headers["x-ratelimit-remaining-tokens"] == str(1000 - used)


async def test_a_failing_spend_is_logged_and_counted_never_raised() -> None:
    store = DownStore()
    limits_ok = MemoryLimits()
    store.admit = limits_ok.admit  # type: ignore[method-assign]  # admits work; spends fail
    app = app_for("closed", store)
    async with TestClient(TestServer(app)) as client:
        with structlog.testing.capture_logs() as events:
            response = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
            assert response.status == 200
            assert rate_headers(response) != []
            await asyncio.wait_for(store.spend_failed.wait(), 5)
    assert [e["operation"] for e in events if e["event"] == "rate_limit_store_error"] == ["spend"]
    assert store_errors(app, "spend") == 1


# -- the limiter on its own -----------------------------------------------------------------------


def limiter(store: Limits, clock: list[float], **options: Any) -> tuple[RateLimiter, list[str]]:
    counted: list[str] = []
    return RateLimiter(store, "open", counted.append, clock=lambda: clock[0], **options), counted


async def test_store_errors_are_logged_at_most_once_per_interval_and_all_counted() -> None:
    now = [1000.0]
    rate_limiter, counted = limiter(DownStore(), now)
    with structlog.testing.capture_logs() as events:
        for _ in range(4):
            assert await rate_limiter.admit(TEAM_A) is None
            now[0] += RECHECK_S  # past the rest: the store is asked again
        now[0] += LOG_INTERVAL_S
        await rate_limiter.admit(TEAM_A)
    assert counted == ["admit"] * 5
    assert [e["not_logged"] for e in events] == [0, 3]


async def test_pending_spends_are_bounded_and_drained_at_close() -> None:
    store = SlowSpends()
    rate_limiter, counted = limiter(store, [0.0], max_pending=2, drain_timeout=5.0)
    for tokens in (1, 2, 3):
        rate_limiter.spend_later(TEAM_A, tokens)
    assert rate_limiter.pending_spends == 2 and counted == ["spend"]  # the third was dropped
    closing = asyncio.ensure_future(rate_limiter.close())
    await asyncio.sleep(0)  # close is now waiting on the two spends
    assert not closing.done()
    store.release.set()
    await asyncio.wait_for(closing, 5)
    assert sorted(store.spent) == [1, 2]


async def test_close_gives_up_on_spends_that_never_finish() -> None:
    store = SlowSpends()
    rate_limiter, counted = limiter(store, [0.0], drain_timeout=0.2)
    rate_limiter.spend_later(TEAM_A, 5)
    started = time.monotonic()
    await asyncio.wait_for(rate_limiter.close(), 5)
    assert 0.2 <= time.monotonic() - started < 1.2
    assert rate_limiter.pending_spends == 0 and store.spent == [] and counted == ["spend"]


async def test_closed_refuses_while_the_store_rests() -> None:
    now = [0.0]
    rate_limiter = RateLimiter(DownStore(), "closed", lambda _operation: None, clock=lambda: now[0])
    for _ in range(2):
        with pytest.raises(GatewayError) as info:
            await rate_limiter.admit(TEAM_A)
        assert info.value.status == 503


# -- a real Redis -------------------------------------------------------------------------------


@pytest.fixture
def needs_redis() -> None:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")


@pytest.mark.usefixtures("needs_redis")
@pytest.mark.parametrize(("failure", "status"), [("open", 200), ("closed", 503)])
async def test_redis_stopped_mid_test(failure: str, status: int) -> None:
    with redis_server() as url:
        app = app_for(failure, redis_url=url)
        async with TestClient(TestServer(app)) as client:
            first = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
            assert first.status == 200 and first.headers["x-ratelimit-remaining-requests"] == "99"
            await first.read()
            await asyncio.to_thread(_stop_redis, url)
            started = time.monotonic()
            second = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
            elapsed = time.monotonic() - started
            assert second.status == status
            assert rate_headers(second) == []
            assert elapsed < REDIS_CALL_TIMEOUT_S + 1.0
            assert store_errors(app, "admit") == 1


def _stop_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    with contextlib.suppress(redis.ConnectionError):  # the server closes the connection as it goes
        client.shutdown(nosave=True)


@pytest.fixture
async def silent_redis() -> AsyncIterator[str]:
    """A port that accepts connections and never answers: Redis hung, or a black-holed network."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_silent_redis_costs_one_call_timeout_not_a_hang(silent_redis: str) -> None:
    app = app_for("open", redis_url=silent_redis)
    async with TestClient(TestServer(app)) as client:
        started = time.monotonic()
        response = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
        elapsed = time.monotonic() - started
        assert response.status == 200 and rate_headers(response) == []
        assert REDIS_CALL_TIMEOUT_S * 0.9 <= elapsed < REDIS_CALL_TIMEOUT_S + 1.0
        started = time.monotonic()
        again = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
        assert again.status == 200 and time.monotonic() - started < 0.5  # the store rests
