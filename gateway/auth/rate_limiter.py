"""The limits store as a request meets it: a failing store never turns a served request into a 500.

`admit` asks the store (this process's memory, or Redis) to count a request. When the store cannot
answer (Redis down, or slower than its timeout), `auth.store_failure` decides: `open` serves the
request uncounted, without rate headers; `closed` answers 503 `rate_limit_store_unavailable`. Either
way the failure is counted (`gateway_rate_limit_store_errors_total{operation="admit"}`) and logged as
`rate_limit_store_error`, at most once per LOG_INTERVAL_S (with how many were not logged since), and
the store is left alone for RECHECK_S: a store that hangs costs one timeout, not one per request.

A key with a budget meets the same store (its spend is read by the same `admit`); when the store
cannot answer, `auth.budget_store_failure` decides for it (default `closed`: 503
`budget_store_unavailable`, since an unchecked budget is no budget). A key with both a budget and rate
limits gets the 503 when either setting is `closed`.

`spend_later` adds the tokens a finished request used in the background, after its response went
out (`charge_later` its cost, for a key with a budget): a slow store never delays an answer, and a
failing one is logged and counted, never raised. At most `max_pending` spends wait at once (more are
dropped, and counted); `close` gives the pending ones `drain_timeout` seconds at shutdown, then
cancels the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import structlog

from gateway.auth.limits import Limits, Usage
from gateway.config.model import GatewayKey
from gateway.errors import GatewayError
from gateway.observability.metrics import StoreOperation
from gateway.spend.budget import Charge, Period, PeriodSpend
from gateway.store_failures import DRAIN_TIMEOUT_S, RECHECK_S, BackgroundWrites, FailureLog

log = structlog.get_logger("gateway.auth")

MAX_PENDING_SPENDS = 10_000

StoreFailure = Literal["open", "closed"]


class RateLimiter:
    __slots__ = (
        "_budget_failure",
        "_budget_used",
        "_clock",
        "_count_error",
        "_failure",
        "_log",
        "_pending",
        "_redact",
        "_resting_until",
        "_store",
    )

    def __init__(
        self,
        store: Limits,
        failure: StoreFailure,
        count_error: Callable[[StoreOperation], None],
        *,
        redact: Callable[[str], str] = str,
        budget_failure: StoreFailure = "closed",
        budget_used: Callable[[str, float], None] = lambda _key, _ratio: None,
        clock: Callable[[], float] = time.monotonic,
        max_pending: int = MAX_PENDING_SPENDS,
        drain_timeout: float = DRAIN_TIMEOUT_S,
    ) -> None:
        self._store = store
        self._failure = failure
        self._budget_failure = budget_failure
        self._budget_used = budget_used  # (key name, spend over budget): the gauge
        self._count_error = count_error
        self._redact = redact  # an error's text may carry the store's URL
        self._clock = clock
        self._pending = BackgroundWrites(max_pending, drain_timeout)
        self._resting_until = float("-inf")
        self._log = FailureLog(log, "rate_limit_store_error", clock, redact)

    @property
    def pending_spends(self) -> int:
        return len(self._pending)

    async def settled(self) -> None:
        """Return once every spend pending now has finished (or failed): what a reader of the store
        right after a response (a test, the spend endpoint's caller) waits for."""
        await self._pending.settled()

    async def admit(self, key: GatewayKey) -> Usage | None:
        """The key's usage in this window, this request counted; None when the store cannot say and
        failure is `open`; a 503 when it is `closed`."""
        if self._clock() < self._resting_until:
            self._unavailable(key)
            return None
        try:
            usage = await self._store.admit(key)
        except Exception as exc:  # Redis down, a timeout: whatever it is, the request does not fail on it
            self._resting_until = self._clock() + RECHECK_S
            self._report("admit", exc)
            self._unavailable(key)
            return None
        if key.budget is not None and usage.spent_usd is not None:
            self._budget_used(key.name, usage.spent_usd / key.budget.usd)
        return usage

    def _unavailable(self, key: GatewayKey) -> None:
        """Nothing when failure is `open` (the request goes on uncounted); else the 503."""
        if key.budget is not None and self._budget_failure == "closed":
            raise GatewayError(
                503,
                "The spend store is unavailable, so this key's budget cannot be checked. Try again shortly.",
                code="budget_store_unavailable",
                headers={"retry-after": str(max(1, round(RECHECK_S)))},
            )
        if (key.rpm is not None or key.tpm is not None) and self._failure == "closed":
            raise GatewayError(
                503,
                "The rate-limit store is unavailable, so this key's limits cannot be checked. "
                "Try again shortly.",
                code="rate_limit_store_unavailable",
                headers={"retry-after": str(max(1, round(RECHECK_S)))},
            )

    def spend_later(self, key: GatewayKey, tokens: int) -> None:
        """Add `tokens` to the key's window in the background (the caller's response is not kept)."""
        if tokens <= 0:
            return
        if self._pending.full():
            self._report("spend", OverflowError(f"{self._pending.limit} spends already pending: one dropped"))
            return
        self._pending.start(self._spend(key, tokens))

    async def _spend(self, key: GatewayKey, tokens: int) -> None:
        try:
            await self._store.spend(key, tokens)
        except Exception as exc:
            self._report("spend", exc)

    def charge_later(self, key: GatewayKey, charge: Charge) -> None:
        """Add a finished request's cost to its key's spend in the background (as `spend_later`)."""
        if self._pending.full():
            self._report("spend", OverflowError(f"{self._pending.limit} spends already pending: one dropped"))
            return
        self._pending.start(self._charge(key, charge))

    async def _charge(self, key: GatewayKey, charge: Charge) -> None:
        try:
            spent = await self._store.charge(key, charge)
        except Exception as exc:
            self._report("spend", exc)
            return
        if key.budget is not None:
            self._budget_used(key.name, spent / key.budget.usd)

    async def spend_report(self, key: GatewayKey) -> dict[Period, PeriodSpend]:
        """The key's spend in each current period, or a 503 when the store cannot say (logged)."""
        try:
            return await self._store.spend_report(key)
        except Exception as exc:
            log.error("rate_limit_store_error", operation="report", error=self._redact(repr(exc)))
            raise GatewayError(
                503,
                "The spend store is unavailable. Try again shortly.",
                code="budget_store_unavailable",
                headers={"retry-after": str(max(1, round(RECHECK_S)))},
            ) from None

    def _report(self, operation: StoreOperation, exc: BaseException, count: int = 1) -> None:
        for _ in range(count):
            self._count_error(operation)
        self._log(operation, exc, store_failure=self._failure)

    async def close(self) -> None:
        """Give pending spends `drain_timeout` to finish, cancel the rest, then close the store."""
        late = await self._pending.drain()
        if late:
            dropped = TimeoutError(f"{late} spends still pending at shutdown: dropped")
            self._report("spend", dropped, count=late)
        await self._store.close()
