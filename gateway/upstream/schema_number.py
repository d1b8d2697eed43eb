"""A number for the mock's value maker: within a schema's bounds (minimum, maximum, their exclusive
forms, draft 4's boolean ones too) and multipleOf, checked the way jsonschema checks them."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

from gateway.upstream.schema_keywords import SchemaUnmet, is_number

MAX_SAFE_INTEGER = 2**53 - 1  # integers every JSON reader reads exactly


class NumberPicker:
    """A number within a schema's bounds and multipleOf: near 1 to 100 unless the bounds say otherwise."""

    __slots__ = ("_integer", "_lower", "_lower_open", "_multiple", "_rng", "_upper", "_upper_open", "_where")

    def __init__(self, flat: dict[str, Any], integer: bool, rng: random.Random, where: str) -> None:
        self._integer = integer
        self._rng = rng
        self._where = where
        self._lower, self._lower_open = _bound(flat, "minimum", "exclusiveMinimum", max)
        self._upper, self._upper_open = _bound(flat, "maximum", "exclusiveMaximum", min)
        multiple = flat.get("multipleOf")
        self._multiple = multiple if is_number(multiple) and multiple > 0 else None

    def pick(self) -> int | float:
        for value in self._candidates():
            if self.fits(value):
                return value
        described = self._described()
        raise SchemaUnmet(self._where, f"the mock finds no {described}")

    def _described(self) -> str:
        kind = "integer" if self._integer else "number"
        parts = []
        if self._lower is not None:
            parts.append(f"{'>' if self._lower_open else '>='} {self._lower}")
        if self._upper is not None:
            parts.append(f"{'<' if self._upper_open else '<='} {self._upper}")
        if self._multiple is not None:
            parts.append(f"a multiple of {self._multiple}")
        if self._integer and any(
            abs(b) > MAX_SAFE_INTEGER for b in (self._lower, self._upper) if b is not None
        ):
            parts.append(f"within +-{MAX_SAFE_INTEGER} (2**53 - 1)")
        return f"{kind} {', '.join(parts)}" if parts else kind

    def _window(self) -> tuple[float, float]:
        """Where to look first: 1 to 100, moved to where the bounds are."""
        lower, upper = self._lower, self._upper
        if lower is not None:
            start = lower
        elif upper is not None and upper < 1:
            start = upper - 99
        else:
            start = 1
        end = start + 99 if upper is None else min(upper, start + 99)
        if self._integer:
            start, end = max(start, -MAX_SAFE_INTEGER), min(end, MAX_SAFE_INTEGER)
        return start, end

    def _candidates(self) -> Iterator[int | float]:
        start, end = self._window()
        if self._integer:
            low, high = math.ceil(start), math.floor(end)
            if self._multiple is None:
                if low <= high:
                    yield self._rng.randint(low, high)
                yield from (low, low + 1, high, high - 1)
                return
        if self._multiple is not None:
            yield from self._multiples(start, end)
            return
        yield round(self._rng.uniform(start, end), 2)
        yield (start + end) / 2
        for bound, toward in ((self._lower, math.inf), (self._upper, -math.inf)):
            if bound is not None:
                yield bound
                yield math.nextafter(bound, toward)

    def _multiples(self, start: float, end: float) -> Iterator[int | float]:
        step = self._multiple
        assert step is not None
        try:
            first, last = math.ceil(start / step), math.floor(end / step)
        except (OverflowError, ValueError):
            return
        if first <= last:
            first = self._rng.randint(first, min(last, first + 99))
        for k in range(first, first + 64):
            value = k * step
            if self._integer:
                if isinstance(value, float) and not value.is_integer():
                    continue
                yield int(value)
            else:
                yield round(value, 12) if isinstance(value, float) else value
                yield value

    def fits(self, value: int | float) -> bool:
        if self._integer and not (isinstance(value, int) and abs(value) <= MAX_SAFE_INTEGER):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        lower, upper = self._lower, self._upper
        if lower is not None and (value <= lower if self._lower_open else value < lower):
            return False
        if upper is not None and (value >= upper if self._upper_open else value > upper):
            return False
        return self._multiple is None or is_multiple(value, self._multiple)


def _bound(flat: dict[str, Any], inclusive: str, exclusive: str, tighter: Any) -> tuple[float | None, bool]:
    """The bound of one side as (value, open): the tighter of `minimum` and `exclusiveMinimum` (or of
    the maxima); draft 4's boolean `exclusiveMinimum` opens `minimum`."""
    closed = flat.get(inclusive) if is_number(flat.get(inclusive)) else None
    opened = flat.get(exclusive)
    if opened is True and closed is not None:
        return closed, True
    if not is_number(opened):
        return closed, False
    if closed is None or tighter(opened, closed) == opened:
        return opened, True
    return closed, False


def is_multiple(value: int | float, step: int | float) -> bool:
    """As jsonschema checks it: a float step by the quotient being integral, an integer one by modulo."""
    if isinstance(step, float) or isinstance(value, float):
        try:
            quotient = value / step
            return int(quotient) == quotient
        except (OverflowError, ValueError, ZeroDivisionError):
            return False
    return value % step == 0
