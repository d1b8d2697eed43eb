"""Budgets per key: the periods spend is counted in, what one request adds to them, and the 429 for a
key that has spent its budget.

Spend is counted per UTC calendar day, per UTC calendar month and in total, for every key with a
budget (all three, so that the spend endpoint can show each); the budget is checked against its own
period. The check reads the spend before the request (a request in flight when the budget is crossed
completes, and is counted); what it cost is added after its response, in the background.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from typing import Final, Literal

from gateway.config.model import Budget, GatewayKey
from gateway.errors import GatewayError

Period = Literal["day", "month", "total"]
PERIODS: Final[tuple[Period, ...]] = ("day", "month", "total")
DAY_S: Final = 86_400


@dataclass(frozen=True, slots=True)
class Charge:
    """What one finished request adds to its key's spend (usd 0 when its model has no price)."""

    usd: float
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class PeriodSpend:
    usd: float = 0.0
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def plus(self, charge: Charge) -> PeriodSpend:
        return PeriodSpend(
            self.usd + charge.usd,
            self.requests + 1,
            self.input_tokens + charge.input_tokens,
            self.output_tokens + charge.output_tokens,
        )


def period_id(period: Period, now: float) -> str:
    """The current `period` at Unix time `now` (UTC): `day:2026-12-05`, `month:2026-12`, `total`."""
    if period == "total":
        return "total"
    moment = time.gmtime(now)
    if period == "day":
        return f"day:{moment.tm_year:04d}-{moment.tm_mon:02d}-{moment.tm_mday:02d}"
    return f"month:{moment.tm_year:04d}-{moment.tm_mon:02d}"


def period_ends(period: Period, now: float) -> float | None:
    """Unix time the current `period` ends (None: `total` never does)."""
    if period == "total":
        return None
    moment = time.gmtime(now)
    if period == "day":
        return (int(now) // DAY_S + 1) * DAY_S
    year, month = (moment.tm_year + 1, 1) if moment.tm_mon == 12 else (moment.tm_year, moment.tm_mon + 1)
    return float(calendar.timegm((year, month, 1, 0, 0, 0, 0, 0, 0)))


def period_ttl(period: Period) -> int | None:
    """How long a store keeps a period's counters (a little longer than the period; None: forever)."""
    return {"day": 2 * DAY_S, "month": 62 * DAY_S, "total": None}[period]


def dollars(usd: float) -> str:
    """$12.34, or the significant digits of an amount under a dollar ($0.000132)."""
    return f"${usd:,.2f}" if usd >= 1 else f"${usd:.6g}"


def _period_text(budget: Budget) -> str:
    return "in total" if budget.period == "total" else f"per {budget.period}"


def enforce_budget(key: GatewayKey, spent_usd: float | None, now: float) -> None:
    """429 `insufficient_quota` (OpenAI's code for a spent account) when the key's spend in its
    budget's period has reached the budget."""
    budget = key.budget
    if budget is None or spent_usd is None or spent_usd < budget.usd:
        return
    ends = period_ends(budget.period, now)
    when = (
        ""
        if ends is None
        else " It resets at " + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ends)) + "."
    )
    headers = {} if ends is None else {"retry-after": str(max(1, int(ends - now)))}
    raise GatewayError(
        429,
        f"The key '{key.name}' has spent its budget of {dollars(budget.usd)} {_period_text(budget)} "
        f"(spent {dollars(spent_usd)}).{when}",
        type_="insufficient_quota",
        code="insufficient_quota",
        headers=headers,
    )
