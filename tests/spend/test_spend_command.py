"""`gateway spend KEY [FILE]`: a key's spend read from the Redis store its gateways share."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.cli import main
from gateway.spend.budget import period_id
from tests.spend.test_budgets import PER_REQUEST, app_for, post, redis_url, routes
from tests.support.servers import closed_port

__all__ = ["redis_url"]  # (the fixture, from test_budgets)


async def test_reads_the_spend_the_gateways_wrote(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = routes("{usd: 5, period: day}", store="redis", redis_url=redis_url)
    config = tmp_path / "routes.yaml"
    config.write_text(text)
    async with TestClient(TestServer(app_for(text))) as client:
        for _ in range(2):
            assert (await post(client)).status == 200
    capsys.readouterr()  # (the access events)
    assert await asyncio.to_thread(main, ["spend", "team-a", str(config)]) == 0  # (its own event loop)
    day = period_id("day", time.time())
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "key team-a: budget $5.00 per day"
    assert lines[1] == f"  {day:<17} {'$0.12':>12}  2 requests, 4 input + 8 output tokens"
    assert len(lines) == 4 and lines[3].startswith("  total ")
    assert await asyncio.to_thread(main, ["--config", str(config), "spend", "team-a", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["periods"]["total"]["usd"] == pytest.approx(2 * PER_REQUEST)
    assert body["periods"]["month"]["requests"] == 2 and body["budget"] == {"usd": 5.0, "period": "day"}


@pytest.mark.parametrize(
    ("store", "key", "status", "stream", "says"),
    [
        ("memory", "team-a", 1, "err", "auth.store is memory: spend lives in each gateway process"),
        ("redis", "team-c", 1, "err", "unknown key 'team-c' (did you mean 'team-b'?)"),
        ("redis", "team-b", 0, "out", "key 'team-b' has no budget: its spend is not counted"),
        ("redis", "team-a", 1, "err", "the store cannot be read: "),  # nothing listens there
    ],
)
def test_says_why_it_cannot(
    store: str,
    key: str,
    status: int,
    stream: str,
    says: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text(routes("{usd: 5}", store=store, redis_url=f"redis://127.0.0.1:{closed_port()}/0"))
    started = time.monotonic()
    assert main(["spend", key, str(config)]) == status
    assert time.monotonic() - started < 5  # a store that is down costs a timeout, not a hang
    assert says in getattr(capsys.readouterr(), stream)
