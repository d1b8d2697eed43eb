"""When a failed upstream attempt is worth repeating, and how long to wait first."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

# saturated: the gateway's own connection pool had no free slot (not the upstream's fault, never retried)
Failure = Literal["connect", "timeout", "broken", "status", "saturated"]

DEFAULT_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
# statuses after which another target may succeed where this one did not (its key, its deployment)
FALLBACK_STATUSES = DEFAULT_RETRY_STATUSES | {401, 403, 404}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts` tries per target in all (1 = no retry); exponential backoff with full jitter,
    or the upstream's Retry-After when it says so, never longer than `max_retry_after`."""

    attempts: int = 1
    initial_backoff: float = 0.25
    max_backoff: float = 4.0
    multiplier: float = 2.0
    max_retry_after: float = 10.0
    statuses: frozenset[int] = field(default=DEFAULT_RETRY_STATUSES)
    on_connect_error: bool = True
    on_timeout: bool = True

    def overridden(self, settings: Mapping[str, Any] | None) -> RetryPolicy:
        """This policy with some settings replaced (a provider's, then a model route's)."""
        if not settings:
            return self
        changes = dict(settings)
        if "statuses" in changes:
            changes["statuses"] = frozenset(changes["statuses"])
        return replace(self, **changes)

    def retryable(self, failure: Failure, status: int | None = None) -> bool:
        if failure == "connect":
            return self.on_connect_error
        if failure == "timeout":
            return self.on_timeout
        if failure == "broken":
            return self.on_connect_error
        if failure == "saturated":
            return False
        return status in self.statuses

    def delay(self, attempt: int, retry_after: str | None, rng: random.Random) -> float | None:
        """Seconds to wait before try number `attempt + 1`; None when Retry-After exceeds the cap
        (better to move on to another target than to wait that long)."""
        hinted = parse_retry_after(retry_after)
        if hinted is not None:
            return hinted if hinted <= self.max_retry_after else None
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return rng.uniform(0, ceiling)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from `Retry-After` (seconds or an HTTP date) or `retry-after-ms`-style text; None if absent."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
