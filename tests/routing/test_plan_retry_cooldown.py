"""Route ordering, retry decisions and cooldowns, with seeded randomness and a fake clock."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from gateway.routing.cooldown import CooldownPolicy, Cooldowns
from gateway.routing.plan import RouteNode
from gateway.routing.retry import RetryPolicy, parse_retry_after


def test_fallback_tries_children_in_order() -> None:
    route = RouteNode("fallback", (RouteNode.leaf("a"), RouteNode.leaf("b"), RouteNode.leaf("c")))
    assert list(route.order(random.Random(1))) == ["a", "b", "c"]


def test_loadbalance_first_pick_follows_weights_and_keeps_the_rest_as_fallbacks() -> None:
    pool = RouteNode("loadbalance", (RouteNode.leaf("heavy", 3.0), RouteNode.leaf("light", 1.0)))
    rng = random.Random(42)
    firsts = Counter()
    for _ in range(4000):
        order = list(pool.order(rng))
        assert sorted(order) == ["heavy", "light"]
        firsts[order[0]] += 1
    assert 0.72 < firsts["heavy"] / 4000 < 0.78


def test_pool_then_fallback_combined() -> None:
    route = RouteNode(
        "fallback",
        (RouteNode("loadbalance", (RouteNode.leaf("a"), RouteNode.leaf("b"))), RouteNode.leaf("backup")),
    )
    orders = {tuple(route.order(random.Random(seed))) for seed in range(20)}
    assert orders == {("a", "b", "backup"), ("b", "a", "backup")}
    assert list(route.targets()) == ["a", "b", "backup"]


def test_zero_weight_is_never_picked() -> None:
    pool = RouteNode("loadbalance", (RouteNode.leaf("on"), RouteNode.leaf("off", 0.0)))
    assert all(list(pool.order(random.Random(s))) == ["on"] for s in range(20))


@pytest.mark.parametrize(
    ("failure", "status", "expected"),
    [
        ("connect", None, True),
        ("timeout", None, True),
        ("broken", None, True),
        ("status", 429, True),
        ("status", 529, True),
        ("status", 503, True),
        ("status", 400, False),
        ("status", 401, False),
    ],
)
def test_retryable(failure: str, status: int | None, expected: bool) -> None:
    assert RetryPolicy().retryable(failure, status) is expected  # type: ignore[arg-type]


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=2.0, multiplier=2.0)
    rng = random.Random(0)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (6, 2.0)]:
        delays = [policy.delay(attempt, None, rng) for _ in range(200)]
        assert all(d is not None and 0 <= d <= ceiling for d in delays)
        assert max(d for d in delays if d is not None) > ceiling * 0.8


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(max_retry_after=5.0)
    rng = random.Random(0)
    assert policy.delay(1, "2", rng) == 2.0
    assert policy.delay(1, "60", rng) is None
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    delay = policy.delay(1, future, rng)
    assert delay is not None and 1.0 < delay <= 3.0


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("garbage") is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cooldown_opens_after_n_failures_in_the_window_then_probes_once() -> None:
    clock = Clock()
    cooldowns = Cooldowns(clock)
    policy = CooldownPolicy(failures=3, window=10, duration=30)
    key = ("p", "m")
    assert cooldowns.failed(key, policy) is False
    clock.now += 11  # the first failure leaves the window
    assert cooldowns.failed(key, policy) is False
    assert cooldowns.failed(key, policy) is False
    assert cooldowns.available(key, policy)
    assert cooldowns.failed(key, policy) is True  # three within 10 s
    assert not cooldowns.available(key, policy)
    clock.now += 30
    assert cooldowns.available(key, policy)  # the probe
    assert not cooldowns.available(key, policy)  # only one probe at a time
    assert cooldowns.failed(key, policy) is True  # probe failed: rest again
    assert not cooldowns.available(key, policy)
    clock.now += 30
    assert cooldowns.available(key, policy)
    cooldowns.succeeded(key)
    assert cooldowns.available(key, policy)
    assert cooldowns.available(key, policy)


def test_a_probe_that_never_reports_back_is_given_up_on() -> None:
    clock = Clock()
    cooldowns = Cooldowns(clock)
    policy = CooldownPolicy(failures=1, window=10, duration=5)
    key = ("p", "m")
    cooldowns.failed(key, policy)
    clock.now += 5
    assert cooldowns.available(key, policy)
    assert not cooldowns.available(key, policy)
    clock.now += 5
    assert cooldowns.available(key, policy)
