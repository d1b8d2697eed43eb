"""Percentile summaries shared by the load generator and the streaming client."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear-interpolated percentile (p in 0..100) of values; None when empty."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summarize_ms(prefix: str, seconds: Sequence[float]) -> dict[str, float | None]:
    """{prefix}p50_ms, p90, p99, p999, mean and max of durations given in seconds, in milliseconds."""
    out: dict[str, float | None] = {}
    for name, p in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9)):
        v = percentile(seconds, p)
        out[f"{prefix}{name}_ms"] = None if v is None else round(v * 1000, 4)
    out[f"{prefix}mean_ms"] = round(sum(seconds) / len(seconds) * 1000, 4) if seconds else None
    out[f"{prefix}max_ms"] = round(max(seconds) * 1000, 4) if seconds else None
    return out
