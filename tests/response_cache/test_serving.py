"""A request to an alias that caches, through the whole app (mock upstream): the TTL on an injected
clock, the verdict in the header and the metric, what `Cache-Control` asks, an answer too large to
keep, and an alias that does not cache paying nothing (no key made, no stream recorded)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.observability.keys import METRICS
from gateway.reload import RegistryHolder
from gateway.response_cache import serving
from gateway.response_cache.memory_store import MemoryStore
from gateway.response_cache.recording import RecordingStreamResponse
from gateway.response_cache.serving import _complete, _directives

ROUTES = """
cache: {max_entry_bytes: MAX}
providers: {mock: {dialect: mock, transport: mock}}
models:
  cached: {provider: mock, model: m, cache: {ttl: 60}}
  plain: [{provider: mock, model: m}]
"""
CHAT = "/v1/chat/completions"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def body(alias: str = "cached", text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": alias, "messages": [{"role": "user", "content": text}], **extra}


def app_for(store: MemoryStore | None = None, max_entry_bytes: int = 1 << 20) -> web.Application:
    config = config_from_text(ROUTES.replace("MAX", str(max_entry_bytes)), "routes.yaml", {})
    return create_app(RegistryHolder("routes.yaml", build_registry(config)), cache_store=store)


@pytest.fixture
async def clock_and_client() -> AsyncIterator[tuple[Clock, TestClient[Any, Any]]]:
    clock = Clock()
    async with TestClient(TestServer(app_for(MemoryStore(100, 1 << 20, clock)))) as client:
        yield clock, client


async def verdicts(client: TestClient[Any, Any], *requests: dict[str, Any], **headers: str) -> list[str]:
    found = []
    for request in requests:
        response = await client.post(CHAT, json=request, headers=headers)
        assert response.status == 200
        await response.read()
        found.append(response.headers.get("x-gateway-cache", "none"))
    return found


async def test_an_answer_is_served_until_its_ttl(
    clock_and_client: tuple[Clock, TestClient[Any, Any]],
) -> None:
    clock, client = clock_and_client
    assert await verdicts(client, body(), body()) == ["miss", "hit"]
    clock.now = 59.9
    assert await verdicts(client, body()) == ["hit"]
    clock.now = 60.0
    assert await verdicts(client, body(), body()) == ["miss", "hit"]


async def test_the_verdicts_are_counted_per_alias(
    clock_and_client: tuple[Clock, TestClient[Any, Any]],
) -> None:
    _, client = clock_and_client
    await verdicts(client, body(), body(), body(text="other"))
    await verdicts(client, body(), **{"Cache-Control": "no-cache"})
    registry = client.app[METRICS].registry

    def count(result: str) -> Any:
        return registry.get_sample_value(
            "gateway_cache_requests_total", {"alias": "cached", "result": result}
        )

    assert (count("miss"), count("hit"), count("skip")) == (2.0, 1.0, 1.0)


async def test_an_alias_that_does_not_cache_makes_no_key_and_records_no_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_key(*args: Any) -> str:
        raise AssertionError("a key was made for an alias that does not cache")

    async def no_recording(self: RecordingStreamResponse, data: bytes) -> None:
        raise AssertionError("a stream was recorded for an alias that does not cache")

    monkeypatch.setattr(serving, "cache_key", no_key)
    monkeypatch.setattr(RecordingStreamResponse, "write", no_recording)
    async with TestClient(TestServer(app_for())) as client:
        assert await verdicts(client, body("plain"), body("plain", stream=True)) == ["none", "none"]


async def test_a_stream_larger_than_max_entry_bytes_is_relayed_whole_and_not_kept() -> None:
    async with TestClient(TestServer(app_for(max_entry_bytes=200))) as client:
        streams = []
        for _ in range(2):
            response = await client.post(CHAT, json=body(stream=True))
            assert response.headers["x-gateway-cache"] == "miss"
            streams.append(await response.read())
        assert len(streams[0]) > 200 and streams[0].endswith(b"data: [DONE]\n\n")
        assert await verdicts(client, body(text="short"), body(text="short")) == [
            "miss",
            "miss",
        ]  # JSON: same


@pytest.mark.parametrize(
    ("header", "directives"),
    [
        (None, (False, False)),
        ("", (False, False)),
        ("no-cache", (True, False)),
        ("No-Cache", (True, False)),
        ("max-age=0", (True, False)),
        ("max-age = 0", (True, False)),
        ("max-age=60", (False, False)),
        ("no-store", (False, True)),
        ("no-cache, no-store", (True, True)),
        ("private,no-store", (False, True)),
    ],
)
def test_cache_control_directives(header: str | None, directives: tuple[bool, bool]) -> None:
    assert _directives(header) == directives


@pytest.mark.parametrize(
    ("reply", "kept"),
    [
        (b'{"choices":[{"finish_reason":"stop"}]}', True),
        (b'{"type":"message","stop_reason":"end_turn"}', True),
        (b'{"status":"completed","error":null}', True),
        (b'{"object":"list","data":[{"embedding":[0.1]}]}', True),
        (b'{"choices":[{"finish_reason":"stop"},{"finish_reason":"error"}]}', False),
        (b'{"status":"incomplete"}', False),
        (b'{"status":"failed","error":{"code":"server_error"}}', False),
        (b'{"type":"error","error":{"type":"overloaded_error"}}', False),
        (b'{"error":{"message":"no"}}', False),
        (b"[1, 2]", False),
        (b"not json", False),
    ],
)
def test_only_a_complete_success_is_kept(reply: bytes, kept: bool) -> None:
    assert _complete(reply) is kept


KEYED_ROUTES = """
auth:
  keys:
    - {name: a, key: key-aaaaaaaaaaaaaaaaaaaaaaaa}
    - {name: b, key: key-bbbbbbbbbbbbbbbbbbbbbbbb}
providers: {mock: {dialect: mock, transport: mock}}
models:
  mock: {provider: mock, model: m, cache: {ttl: 60}}
"""


async def test_a_response_the_store_keeps_is_cached_for_its_key_alone() -> None:
    """A stored response belongs to its key (another cannot read or continue it): an answer that is
    kept, or that continues one, is not served to another key; with `store: false` it is."""
    config = config_from_text(KEYED_ROUTES, "routes.yaml", {})
    app = create_app(RegistryHolder("routes.yaml", build_registry(config)))
    async with TestClient(TestServer(app)) as client:
        seen: list[tuple[str | None, str]] = []
        for who, store in (("a", True), ("a", True), ("b", True), ("a", False), ("b", False)):
            response = await client.post(
                "/v1/responses",
                json={"model": "mock", "input": "hi", "store": store},
                headers={"Authorization": f"Bearer key-{who * 24}"},
            )
            assert response.status == 200
            seen.append((response.headers.get("x-gateway-cache"), (await response.json())["id"]))
        verdicts = [verdict for verdict, _ in seen]
        assert verdicts == ["miss", "hit", "miss", "miss", "hit"]
        ids = [answer for _, answer in seen]
        assert ids[0] == ids[1] != ids[2] and ids[3] == ids[4]
        continued = {"model": "mock", "input": "more", "previous_response_id": ids[1]}
        for expected in ("miss", "hit"):
            response = await client.post(
                "/v1/responses", json=continued, headers={"Authorization": f"Bearer key-{'a' * 24}"}
            )
            assert response.status == 200
            assert response.headers["x-gateway-cache"] == expected
