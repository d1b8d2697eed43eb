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

import asyncio
import time
from collections.abc import Callable
from typing import Literal

import structlog

from gateway.auth.limits import Limits, Usage
from gateway.config.model import GatewayKey
from gateway.errors import GatewayError
from gateway.observability.metrics import StoreOperation
from gateway.spend.budget import Charge, Period, PeriodSpend

log = structlog.get_logger("gateway.auth")

LOG_INTERVAL_S = 10.0  # at most one rate_limit_store_error line per interval; the metric counts each
RECHECK_S = 1.0  # after a failed admit, requests go without the store this long before it is tried again
MAX_PENDING_SPENDS = 10_000
DRAIN_TIMEOUT_S = 5.0

StoreFailure = Literal["open", "closed"]


class RateLimiter:
    __slots__ = (
        "_budget_failure",
        "_budget_used",
        "_clock",
        "_count_error",
        "_drain_timeout",
        "_failure",
        "_log_after",
        "_max_pending",
        "_not_logged",
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
        self._max_pending = max_pending
        self._drain_timeout = drain_timeout
        self._pending: set[asyncio.Task[None]] = set()
        self._resting_until = float("-inf")
        self._log_after = float("-inf")
        self._not_logged = 0

    @property
    def pending_spends(self) -> int:
        return len(self._pending)

    async def settled(self) -> None:
        """Return once every spend pending now has finished (or failed): what a reader of the store
        right after a response (a test, the spend endpoint's caller) waits for."""
        if self._pending:
            await asyncio.wait(set(self._pending))

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
        if len(self._pending) >= self._max_pending:
            self._report("spend", OverflowError(f"{self._max_pending} spends already pending: one dropped"))
            return
        task = asyncio.get_running_loop().create_task(self._spend(key, tokens))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _spend(self, key: GatewayKey, tokens: int) -> None:
        try:
            await self._store.spend(key, tokens)
        except Exception as exc:
            self._report("spend", exc)

    def charge_later(self, key: GatewayKey, charge: Charge) -> None:
        """Add a finished request's cost to its key's spend in the background (as `spend_later`)."""
        if len(self._pending) >= self._max_pending:
            self._report("spend", OverflowError(f"{self._max_pending} spends already pending: one dropped"))
            return
        task = asyncio.get_running_loop().create_task(self._charge(key, charge))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

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
        now = self._clock()
        if now < self._log_after:
            self._not_logged += 1
            return
        log.error(
            "rate_limit_store_error",
            operation=operation,
            error=self._redact(repr(exc)),
            store_failure=self._failure,
            not_logged=self._not_logged,  # failures since the previous line
        )
        self._not_logged = 0
        self._log_after = now + LOG_INTERVAL_S

    async def close(self) -> None:
        """Give pending spends `drain_timeout` to finish, cancel the rest, then close the store."""
        if self._pending:
            _, late = await asyncio.wait(set(self._pending), timeout=self._drain_timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
                dropped = TimeoutError(f"{len(late)} spends still pending at shutdown: dropped")
                self._report("spend", dropped, count=len(late))
        await self._store.close()
