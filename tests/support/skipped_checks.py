"""Checks a test could not make on this machine (what they need is missing), counted rather than failed
or passed in silence: the test goes on with its other assertions, and the run ends with one line per
reason saying how many checks were skipped (tests/conftest.py).

A test's count travels on its teardown report (`user_properties`), so a run split over processes
(pytest-xdist) adds them up too.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

PROPERTY = "skipped_checks"  # user_properties entry: (PROPERTY, (reason, count))

_lock = threading.Lock()
_pending: Counter[str] = Counter()  # reason -> checks skipped since the last take()


def skip_check(reason: str) -> None:
    """Count one check that could not be made, and why."""
    with _lock:
        _pending[reason] += 1


def take() -> Counter[str]:
    """The checks skipped since the last call (then none)."""
    with _lock:
        taken = _pending.copy()
        _pending.clear()
    return taken


def as_properties(counts: Mapping[str, int]) -> list[tuple[str, Any]]:
    return [(PROPERTY, (reason, n)) for reason, n in sorted(counts.items())]


def from_properties(properties: Iterable[tuple[str, Any]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for name, value in properties:
        if name == PROPERTY:
            reason, n = value
            counts[reason] += n
    return counts


def summary_lines(counts: Mapping[str, int]) -> list[str]:
    """One line per reason, e.g. `12 checks skipped: ../shared/spec not found (/x/shared/spec)`."""
    return [
        f"{n} {'check' if n == 1 else 'checks'} skipped: {reason}"
        for reason, n in sorted(counts.items())
        if n
    ]
