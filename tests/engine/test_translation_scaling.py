"""A request's translation takes time in proportion to its size, for every shipped dialect.

A rule that rebuilds what it has built so far on every item (merging consecutive same-role messages
by concatenation), or that looks something up in the whole request once per item (a tool result's
function name among every tool call), turns a few megabytes of small messages into minutes of a
blocked event loop. Each case times the whole request path that holds the loop (decode, validate,
translate, encode) at N and 2N messages: 2N must take well under the 4x a quadratic step gives, and
every megabyte must stay under a generous bound. CPU time, best of a few runs, so a loaded machine
does not decide.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway import json_codec
from gateway.config.loader import config_from_text
from gateway.engine.dialect import Operation
from gateway.engine.registry import build_registry
from gateway.proxy.request_validation import RequestValidator, decode_json_body
from gateway.rules.context import EvalContext

DIALECTS = sorted(
    path.stem
    for path in (Path(__file__).resolve().parents[2] / "gateway" / "dialects").glob("*.yaml")
    if path.stem != "mock"
)
MAX_SECONDS_PER_MB = 0.5  # ~0.1 s measured for the densest case (30-byte messages); linear either way
MAX_RATIO = 3.4  # 2N messages against N: ~2 when linear, ~4 when quadratic (CPU noise under load: 3.0 seen)
RUNS = 5  # of each size, interleaved (small, large, small, ...): a slow spell of the machine hits both


def _same_role(n: int) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"m{i}"} for i in range(n)]


def _tool_results(n: int) -> list[dict[str, Any]]:
    call = {"type": "function", "function": {"name": "f", "arguments": "{}"}}
    calls = [{"id": f"c{i}", **call} for i in range(n)]
    results = [{"role": "tool", "tool_call_id": f"c{i}", "content": f"r{i}"} for i in range(n)]
    asking = {"role": "assistant", "content": None, "tool_calls": calls}
    return [{"role": "user", "content": "go"}, asking, *results]


# shape -> (messages for n, N): N is large enough for a quadratic step to dominate, small enough to be quick
SHAPES: dict[str, tuple[Callable[[int], list[dict[str, Any]]], int]] = {
    "same_role": (_same_role, 20_000),
    "tool_results": (_tool_results, 5_000),  # (at 2,000 the small case took ~8 ms: noise decided)
}
VALIDATOR = RequestValidator()


@functools.cache  # one registry per dialect, shared by its shapes
def _chat_operation(dialect: str) -> Operation:
    provider = {"dialect": dialect, "base_url": "http://upstream.test/base", "api_key": "sk-provider-key"}
    routes = {"providers": {"p": provider}, "models": {"m": [{"provider": "p", "model": "upstream-model"}]}}
    registry = build_registry(config_from_text(yaml.safe_dump(routes), "routes.yaml", {}))
    return registry.routes["m"].first.provider.operations["chat"]


def _seconds(operation: Operation, raw: bytes) -> float:
    """What the gateway does on the event loop with a request body before sending it, in CPU seconds
    of this thread (time the machine gives to others does not count), with the garbage collector
    paused (its passes depend on everything alive in the test process)."""
    gc.disable()
    try:
        started = time.thread_time()
        body = decode_json_body(raw)
        VALIDATOR.validate("chat", body)
        source = {**body, "model": "upstream-model"}
        ctx = EvalContext(request=body, created=1700000000)
        payload = source if operation.request.is_identity else operation.request.apply(source, ctx)
        json_codec.dumps(payload)
        return time.thread_time() - started
    finally:
        gc.enable()


def _best_of_both(operation: Operation, small: bytes, large: bytes) -> tuple[float, float, float]:
    """The best of RUNS for each body, measured in turn, and the lowest large/small ratio of a pair
    measured back to back: a machine busy with other work (the suite's other worker, the agent CLIs
    the integration tests run) slows a whole pair alike more often than it slows the two apart, and
    quadratic code cannot show a linear pair at all."""
    small_s = large_s = ratio = float("inf")
    for _ in range(RUNS):
        pair_small, pair_large = _seconds(operation, small), _seconds(operation, large)
        small_s, large_s = min(small_s, pair_small), min(large_s, pair_large)
        ratio = min(ratio, pair_large / pair_small)
    return small_s, large_s, ratio


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("dialect", DIALECTS)
def test_translation_time_grows_linearly(dialect: str, shape: str) -> None:
    operation = _chat_operation(dialect)
    messages_of, n = SHAPES[shape]
    small = json_codec.dumps({"model": "m", "messages": messages_of(n)})
    large = json_codec.dumps({"model": "m", "messages": messages_of(2 * n)})
    small_s, large_s, ratio = _best_of_both(operation, small, large)
    per_mb = large_s / (len(large) / 1e6)
    assert per_mb < MAX_SECONDS_PER_MB, f"{per_mb:.3f} s per MB ({len(large)} bytes in {large_s:.3f} s)"
    growth = f"2N took at least {ratio:.1f}x N ({small_s:.3f} s -> {large_s:.3f} s at best)"
    assert ratio < MAX_RATIO, growth
