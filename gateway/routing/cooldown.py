"""A circuit breaker per target: N failures within a window rest it for a while, then one probe.

State lives outside the immutable registry (it must survive reloads) and is keyed by
(provider, upstream model). Time comes from a clock function so tests need no sleeps.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CooldownPolicy:
    failures: int = 3
    window: float = 30.0
    duration: float = 30.0


@dataclass(slots=True)
class _TargetState:
    failures: deque[float] = field(default_factory=deque)
    open_until: float = 0.0
    probe_started: float | None = None


class Cooldowns:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._states: dict[tuple[str, str], _TargetState] = {}

    def status(self, key: tuple[str, str], policy: CooldownPolicy) -> str:
        """`ok`, `probe` (its rest is over: the next try is the probe, claimed with `available`) or
        `resting`. Asking claims nothing."""
        state = self._states.get(key)
        if state is None or state.open_until == 0.0:
            return "ok"
        now = self._clock()
        if now < state.open_until:
            return "resting"
        if state.probe_started is not None and now - state.probe_started < policy.duration:
            return "resting"
        return "probe"

    def available(self, key: tuple[str, str], policy: CooldownPolicy) -> bool:
        """True when the target may be tried: not resting, or its rest is over and no other probe is
        out (a probe that never reported back is given up on after `duration`)."""
        state = self._states.get(key)
        if state is None or state.open_until == 0.0:
            return True
        now = self._clock()
        if now < state.open_until:
            return False
        if state.probe_started is not None and now - state.probe_started < policy.duration:
            return False
        state.probe_started = now  # half-open: this caller is the probe
        return True

    def rest_remaining(self, key: tuple[str, str]) -> float:
        """Seconds until the target may be probed again (0 when it is not resting)."""
        state = self._states.get(key)
        return max(0.0, state.open_until - self._clock()) if state is not None else 0.0

    def succeeded(self, key: tuple[str, str]) -> None:
        self._states.pop(key, None)

    def failed(self, key: tuple[str, str], policy: CooldownPolicy) -> bool:
        """Record a failure; True when it starts (or restarts) a rest period."""
        now = self._clock()
        state = self._states.setdefault(key, _TargetState())
        if state.probe_started is not None:  # the probe failed: rest again at once
            state.probe_started = None
            state.open_until = now + policy.duration
            state.failures.clear()
            return True
        state.failures.append(now)
        while state.failures and state.failures[0] <= now - policy.window:
            state.failures.popleft()
        if len(state.failures) >= policy.failures:
            state.open_until = now + policy.duration
            state.failures.clear()
            return True
        return False
