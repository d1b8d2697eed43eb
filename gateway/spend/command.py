"""`gateway spend KEY [FILE]`: a key's spend in each current period, read from the Redis store that
the gateways of FILE share (auth.store: redis). The memory store lives inside each gateway process:
for it, ask the gateway (GET /v1/gateway/keys/{name}/spend) instead."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time

from gateway import json_codec
from gateway.auth.limits import RedisLimits
from gateway.config.loader import load_config
from gateway.config.model import GatewayConfig, GatewayKey
from gateway.config.problems import ConfigError, unknown_name
from gateway.spend.budget import PERIODS, dollars, period_id


def spend_command(path: str, name: str, as_json: bool = False) -> int:
    """Print the key's spend (a table, or the endpoint's JSON); 1 when it cannot be read, with why."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        return 1
    keys = {key.name: key for key in config.auth.keys}
    key = keys.get(name)
    if key is None:
        print(f"{path}: {unknown_name('key', name, keys)}", file=sys.stderr)
        return 1
    if key.budget is None:
        print(f"key {name!r} has no budget: its spend is not counted (it is in gateway_cost_usd_total)")
        return 0
    if config.auth.store != "redis" or not config.auth.redis_url:
        print(
            f"{path}: auth.store is memory: spend lives in each gateway process; ask one: "
            f"GET /v1/gateway/keys/{name}/spend with an admin key",
            file=sys.stderr,
        )
        return 1
    try:
        lines = asyncio.run(_report(config, key, as_json))
    except Exception as exc:  # Redis down, refused, timed out
        print(f"{path}: the store cannot be read: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


async def _report(config: GatewayConfig, key: GatewayKey, as_json: bool) -> list[str]:
    assert config.auth.redis_url is not None
    assert key.budget is not None
    store = RedisLimits(config.auth.redis_url)
    try:
        report = await store.spend_report(key)
    finally:
        await store.close()
    now = time.time()
    if as_json:
        periods = {p: {"period": period_id(p, now), **dataclasses.asdict(report[p])} for p in PERIODS}
        body = {"key": key.name, "budget": {"usd": key.budget.usd, "period": key.budget.period}}
        return [json_codec.dumps({**body, "periods": periods}).decode()]
    lines = [f"key {key.name}: budget {dollars(key.budget.usd)} per {key.budget.period}"]
    for period in PERIODS:
        spent = report[period]
        lines.append(
            f"  {period_id(period, now):<17} {dollars(spent.usd):>12}  {spent.requests} requests, "
            f"{spent.input_tokens} input + {spent.output_tokens} output tokens"
        )
    return lines
