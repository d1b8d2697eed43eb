"""Requests-per-minute and tokens-per-minute per gateway key, in fixed one-minute windows.

The counters live in this process (`MemoryLimits`) or in Redis (`RedisLimits`, shared by every
worker and replica). A request is admitted when the key has requests left in the current minute
and its tokens used so far are under its limit; the tokens a request used (as the upstream reports
them, streams included) are added when it finishes. Answers carry OpenAI's `x-ratelimit-*` headers.
A key with a budget has its spend in the same store (gateway/spend/budget.py): read by `admit` (in the
same round trip), added to by `charge`, read back whole by `spend_report`.
What a request does when the store fails is rate_limiter.py's business; a Redis call here gives up
after REDIS_CALL_TIMEOUT_S, so a store that hangs cannot hold a request.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.config.model import GatewayKey
from gateway.errors import GatewayError
from gateway.redis_client import REDIS_CALL_TIMEOUT_S, redis_client
from gateway.spend.budget import PERIODS, Charge, Period, PeriodSpend, period_id, period_ttl

WINDOW = 60


@dataclass(frozen=True, slots=True)
class Usage:
    requests: int
    tokens: int
    reset_s: float
    spent_usd: float | None = None  # a key with a budget: its spend in the budget's current period


def _reset_text(seconds: float) -> str:
    return f"{max(0.0, seconds):.3f}s".replace(".000s", "s")


def rate_headers(key: GatewayKey, usage: Usage) -> dict[str, str]:
    headers: dict[str, str] = {}
    if key.rpm is not None:
        headers["x-ratelimit-limit-requests"] = str(key.rpm)
        headers["x-ratelimit-remaining-requests"] = str(max(0, key.rpm - usage.requests))
        headers["x-ratelimit-reset-requests"] = _reset_text(usage.reset_s)
    if key.tpm is not None:
        headers["x-ratelimit-limit-tokens"] = str(key.tpm)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, key.tpm - usage.tokens))
        headers["x-ratelimit-reset-tokens"] = _reset_text(usage.reset_s)
    return headers


def enforce(key: GatewayKey, usage: Usage) -> dict[str, str]:
    """The rate headers for an admitted request, or 429 (with Retry-After) for one over a limit."""
    headers = rate_headers(key, usage)
    kind = None
    if key.rpm is not None and usage.requests > key.rpm:
        kind, limit, used, unit = "requests", key.rpm, usage.requests - 1, "requests"
    elif key.tpm is not None and usage.tokens >= key.tpm:
        kind, limit, used, unit = "tokens", key.tpm, usage.tokens, "tokens"
    if kind is None:
        return headers
    headers["retry-after"] = str(max(1, math.ceil(usage.reset_s)))
    raise GatewayError(
        429,
        f"Rate limit reached for key '{key.name}' on {unit} per min: limit {limit}, used {used}. "
        f"Try again in {math.ceil(usage.reset_s)}s.",
        type_=kind,
        code="rate_limit_exceeded",
        headers=headers,
    )


class Limits(Protocol):
    async def admit(self, key: GatewayKey) -> Usage:
        """Count one request in the current window; return the window's usage including it."""

    async def spend(self, key: GatewayKey, tokens: int) -> None:
        """Add the tokens a finished request used."""

    async def charge(self, key: GatewayKey, charge: Charge) -> float:
        """Add a finished request's cost to the key's spend in every period; return the spend in its
        budget's period, this request included."""

    async def spend_report(self, key: GatewayKey) -> dict[Period, PeriodSpend]:
        """The key's spend in each current period."""

    async def close(self) -> None: ...


def _rate_limited(key: GatewayKey) -> bool:
    return key.rpm is not None or key.tpm is not None


class MemoryLimits:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[int, int, int]] = {}  # key name -> (window, requests, tokens)
        self._ledger: dict[tuple[str, Period], tuple[str, PeriodSpend]] = {}  # -> (period id, its spend)

    def _window(self) -> tuple[int, float]:
        now = self._clock()
        window = int(now // WINDOW)
        return window, (window + 1) * WINDOW - now

    async def admit(self, key: GatewayKey) -> Usage:
        window, reset = self._window()
        spent = None if key.budget is None else self._spent(key.name, key.budget.period).usd
        if not _rate_limited(key):
            return Usage(0, 0, reset, spent)
        current, requests, tokens = self._windows.get(key.name, (window, 0, 0))
        if current != window:
            requests, tokens = 0, 0
        requests += 1
        self._windows[key.name] = (window, requests, tokens)
        return Usage(requests, tokens, reset, spent)

    def _spent(self, name: str, period: Period) -> PeriodSpend:
        found = self._ledger.get((name, period))
        if found is None or found[0] != period_id(period, self._clock()):
            return PeriodSpend()  # none yet, or a past period's
        return found[1]

    async def charge(self, key: GatewayKey, charge: Charge) -> float:
        now = self._clock()
        for period in PERIODS:
            spent = self._spent(key.name, period).plus(charge)
            self._ledger[(key.name, period)] = (period_id(period, now), spent)
        return self._spent(key.name, key.budget.period).usd if key.budget is not None else 0.0

    async def spend_report(self, key: GatewayKey) -> dict[Period, PeriodSpend]:
        return {period: self._spent(key.name, period) for period in PERIODS}

    async def spend(self, key: GatewayKey, tokens: int) -> None:
        window, _ = self._window()
        current, requests, used = self._windows.get(key.name, (window, 0, 0))
        if current != window:
            requests, used = 0, 0
        self._windows[key.name] = (window, requests, used + tokens)

    async def close(self) -> None:
        return None


class RedisLimits:
    """Counters in Redis: `INCR` the window's request count and read its tokens in one round trip."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time, prefix: str = "gateway:rl:") -> None:
        self._redis: Any = redis_client(url, "auth.store")
        self._clock = clock
        self._prefix = prefix

    def _keys(self, key: GatewayKey) -> tuple[str, str, float]:
        now = self._clock()
        window = int(now // WINDOW)
        base = f"{self._prefix}{key.name}:{window}"
        return base + ":r", base + ":t", (window + 1) * WINDOW - now

    async def admit(self, key: GatewayKey) -> Usage:
        requests_key, tokens_key, reset = self._keys(key)
        limited = _rate_limited(key)
        async with asyncio.timeout(REDIS_CALL_TIMEOUT_S), self._redis.pipeline(transaction=False) as pipe:
            if limited:
                pipe.incr(requests_key)
                pipe.expire(requests_key, WINDOW * 2)
                pipe.get(tokens_key)
            if key.budget is not None:
                pipe.hget(self._ledger_key(key, key.budget.period), "usd")
            replies = await pipe.execute()
        spent = float(replies[-1] or 0) if key.budget is not None else None
        if not limited:
            return Usage(0, 0, reset, spent)
        return Usage(int(replies[0]), int(replies[2] or 0), reset, spent)

    def _ledger_key(self, key: GatewayKey, period: Period) -> str:
        """One hash per key and period (`...:spend:month:2026-12`): usd, requests, input/output tokens."""
        return f"{self._prefix}{key.name}:spend:{period_id(period, self._clock())}"

    async def charge(self, key: GatewayKey, charge: Charge) -> float:
        async with asyncio.timeout(REDIS_CALL_TIMEOUT_S), self._redis.pipeline(transaction=False) as pipe:
            for period in PERIODS:
                name = self._ledger_key(key, period)
                pipe.hincrbyfloat(name, "usd", charge.usd)
                pipe.hincrby(name, "requests", 1)
                pipe.hincrby(name, "input_tokens", charge.input_tokens)
                pipe.hincrby(name, "output_tokens", charge.output_tokens)
                ttl = period_ttl(period)
                if ttl is not None:
                    pipe.expire(name, ttl)
            replies = await pipe.execute()
        if key.budget is None:
            return 0.0
        return float(replies[_USD_REPLY[key.budget.period]])

    async def spend_report(self, key: GatewayKey) -> dict[Period, PeriodSpend]:
        async with asyncio.timeout(REDIS_CALL_TIMEOUT_S), self._redis.pipeline(transaction=False) as pipe:
            for period in PERIODS:
                pipe.hgetall(self._ledger_key(key, period))
            replies = await pipe.execute()
        return {period: _period_spend(fields) for period, fields in zip(PERIODS, replies, strict=True)}

    async def spend(self, key: GatewayKey, tokens: int) -> None:
        if tokens <= 0:
            return
        _, tokens_key, _ = self._keys(key)
        async with asyncio.timeout(REDIS_CALL_TIMEOUT_S), self._redis.pipeline(transaction=False) as pipe:
            pipe.incrby(tokens_key, tokens)
            pipe.expire(tokens_key, WINDOW * 2)
            await pipe.execute()

    async def close(self) -> None:
        await self._redis.aclose()


# where each period's new usd total is among a charge's pipeline replies (day: 4 commands + expire,
# month: the same, then total: 4)
_USD_REPLY: dict[Period, int] = {"day": 0, "month": 5, "total": 10}


def _period_spend(fields: dict[bytes, bytes]) -> PeriodSpend:
    def number(name: bytes) -> int:
        return int(fields.get(name) or 0)

    return PeriodSpend(
        float(fields.get(b"usd") or 0), number(b"requests"), number(b"input_tokens"), number(b"output_tokens")
    )
