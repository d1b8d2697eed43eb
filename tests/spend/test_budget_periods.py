"""Budget periods: UTC days and months roll over, a total never does; the memory store's spend
follows them."""

from __future__ import annotations

import calendar

import pytest

from gateway.auth.limits import MemoryLimits
from gateway.config.loader import key_digest
from gateway.config.model import Budget, GatewayKey
from gateway.errors import GatewayError
from gateway.spend.budget import Charge, enforce_budget, period_ends, period_id

NEW_YEARS_EVE = calendar.timegm((2026, 12, 31, 23, 59, 0, 0, 0, 0))
KEY = GatewayKey("team-a", key_digest("k" * 20), budget=Budget(1.0, "day"))


@pytest.mark.parametrize(
    ("period", "name", "ends"),
    [
        ("day", "day:2026-12-31", calendar.timegm((2027, 1, 1, 0, 0, 0, 0, 0, 0))),
        ("month", "month:2026-12", calendar.timegm((2027, 1, 1, 0, 0, 0, 0, 0, 0))),
        ("total", "total", None),
    ],
)
def test_periods_are_utc_calendar_periods(period: str, name: str, ends: float | None) -> None:
    assert period_id(period, NEW_YEARS_EVE) == name  # type: ignore[arg-type]
    assert period_ends(period, NEW_YEARS_EVE) == ends  # type: ignore[arg-type]


async def test_the_memory_store_starts_each_period_afresh() -> None:
    clock = [NEW_YEARS_EVE]
    store = MemoryLimits(clock=lambda: clock[0])
    assert await store.charge(KEY, Charge(0.75, 10, 5)) == 0.75
    assert (await store.admit(KEY)).spent_usd == 0.75
    clock[0] += 120  # 2027-01-01 00:01: a new day and a new month
    assert (await store.admit(KEY)).spent_usd == 0.0
    report = await store.spend_report(KEY)
    assert (report["day"].usd, report["month"].usd, report["total"].usd) == (0.0, 0.0, 0.75)
    assert report["total"].requests == 1 and report["total"].input_tokens == 10


async def test_a_budget_only_key_is_not_counted_in_rate_windows() -> None:
    store = MemoryLimits()
    usage = await store.admit(KEY)
    assert (usage.requests, usage.tokens, usage.spent_usd) == (0, 0, 0.0)


def test_a_budget_reached_exactly_is_spent() -> None:
    enforce_budget(KEY, 0.999, NEW_YEARS_EVE)
    with pytest.raises(GatewayError) as raised:
        enforce_budget(KEY, 1.0, NEW_YEARS_EVE)
    assert raised.value.status == 429
    assert raised.value.headers["retry-after"] == "60"
    assert raised.value.message == (
        "The key 'team-a' has spent its budget of $1.00 per day (spent $1.00). "
        "It resets at 2027-01-01T00:00:00Z."
    )
