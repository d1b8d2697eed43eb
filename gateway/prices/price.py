"""One model's price, and what a request cost from the usage the gateway counted.

The usage is the canonical one (chat completions' shape, whatever the client or the upstream spoke):
`prompt_tokens` counts every input token, cached reads (`prompt_tokens_details.cached_tokens`) and
cache writes (`prompt_tokens_details.cache_write_tokens`) included; `completion_tokens` counts every
output token, reasoning (`completion_tokens_details.reasoning_tokens`) included. Each kind is billed
at its own rate; a rate the price does not give is billed at the plain input or output rate (what a
provider charges when it has no separate rate), never at zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DECIMALS = 10  # a cost is rounded to 1e-10 USD: a token of the cheapest model is 2e-8
_UNITS = 10.0**DECIMALS
_TO_UNITS = _UNITS / 1_000_000  # prices are per million tokens


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens. `cached_input`, `cache_write` and `reasoning` are given only where the
    provider prices them apart; `as_of` and `source` say where the figures came from."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None
    as_of: str | None = None
    source: str | None = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Price:
        """From a validated price mapping (shipped table or routes.yaml)."""
        return cls(
            input=float(spec["input"]),
            output=float(spec["output"]),
            cached_input=_rate(spec.get("cached_input")),
            cache_write=_rate(spec.get("cache_write")),
            reasoning=_rate(spec.get("reasoning")),
            as_of=str(spec["as_of"]) if spec.get("as_of") is not None else None,
            source=spec.get("source"),
        )


def _rate(value: Any) -> float | None:
    return None if value is None else float(value)


_NUMBERS = frozenset((int, float))  # (not bool: `type(True)` is bool)


def _count(value: Any) -> float:
    """A token count from usage: a positive number, else 0 (a dialect may leave one out)."""
    return value if type(value) in _NUMBERS and value > 0 else 0


def cost_usd(price: Price, usage: Mapping[str, Any]) -> float:
    """What the request cost, in USD, from its canonical usage."""
    prompt: Any = usage.get("prompt_tokens")  # (_count inlined for the two counts every usage has)
    prompt = prompt if type(prompt) in _NUMBERS and prompt > 0 else 0
    completion: Any = usage.get("completion_tokens")
    completion = completion if type(completion) in _NUMBERS and completion > 0 else 0
    cached = written = reasoning = 0.0
    details = usage.get("prompt_tokens_details")
    if type(details) is dict:
        cached = _count(details.get("cached_tokens"))
        written = _count(details.get("cache_write_tokens"))
    if price.reasoning is not None:
        out_details = usage.get("completion_tokens_details")
        if type(out_details) is dict:
            reasoning = _count(out_details.get("reasoning_tokens"))
            reasoning = reasoning if reasoning < completion else completion
    fresh = prompt - cached - written
    fresh = fresh if fresh > 0 else 0
    total = (
        fresh * price.input
        + cached * (price.input if price.cached_input is None else price.cached_input)
        + written * (price.input if price.cache_write is None else price.cache_write)
        + (completion - reasoning) * price.output
        + reasoning * (price.output if price.reasoning is None else price.reasoning)
    )
    # rounded to 1e-10 USD (total is in millionths of a dollar): int() is ~5x cheaper than round()
    return int(total * _TO_UNITS + 0.5) / _UNITS


def cost_text(cost: float) -> str:
    """A cost as the `x-gateway-cost-usd` header writes it: plain decimal, no exponent."""
    return (_COST_FORMAT % cost).rstrip("0").rstrip(".")


_COST_FORMAT = f"%.{DECIMALS}f"  # (built once: a nested f-string format spec is built per call)
