"""Gateway keys and per-key limits, through the whole app (mock upstream), memory and Redis stores."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.auth.keys import KeyRing
from gateway.auth.limits import MemoryLimits
from gateway.config.loader import config_from_text, key_digest
from gateway.config.model import GatewayKey
from gateway.engine.registry import build_registry
from gateway.errors import GatewayError
from gateway.reload import RegistryHolder
from tests.support.spec_check import spec_errors

KEY_A = "gw-team-a-0123456789abcdef"
KEY_B = "gw-team-b-0123456789abcdef"
KEY_C = "gw-team-c-0123456789abcdef"
ROUTES = f"""
auth:
  store: STORE
  REDIS
  keys:
    - {{name: team-a, hash: "{key_digest(KEY_A)}", models: ["mock", "cheap-*"], rpm: 3}}
    - {{name: team-c, hash: "{key_digest(KEY_C)}", tpm: 25}}
    - {{name: team-b, key: "${{TEAM_B_KEY}}"}}
providers: {{mock: {{dialect: mock, transport: mock}}}}
models:
  mock: [{{provider: mock, model: m}}]
  other: [{{provider: mock, model: m}}]
"""
CHAT = {"model": "mock", "messages": [{"role": "user", "content": "one two three four five"}]}


def app_for(store: str = "memory", redis_url: str = "") -> Any:
    routes = ROUTES.replace("STORE", store).replace("REDIS", f"redis_url: {redis_url}" if redis_url else "")
    registry = build_registry(config_from_text(routes, "routes.yaml", {"TEAM_B_KEY": KEY_B}))
    return create_app(RegistryHolder("routes.yaml", registry))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def error_of(response: Any) -> dict[str, Any]:
    body = await response.json()
    assert spec_errors("ErrorResponse", body) == []
    return body["error"]  # type: ignore[no-any-return]


async def test_missing_and_wrong_keys_get_401() -> None:
    async with TestClient(TestServer(app_for())) as client:
        missing = await client.post("/v1/chat/completions", json=CHAT)
        assert missing.status == 401
        assert (await error_of(missing))["code"] == "missing_api_key"
        wrong = await client.post(
            "/v1/chat/completions", json=CHAT, headers=bearer("gw-not-a-real-key-000000")
        )
        assert wrong.status == 401
        assert (await error_of(wrong))["code"] == "invalid_api_key"
        ok = await client.post("/v1/chat/completions", json=CHAT, headers=bearer(KEY_B))
        assert ok.status == 200


async def test_models_outside_the_keys_list_get_403() -> None:
    async with TestClient(TestServer(app_for())) as client:
        response = await client.post(
            "/v1/chat/completions", json={**CHAT, "model": "other"}, headers=bearer(KEY_A)
        )
        assert response.status == 403
        error = await error_of(response)
        assert (error["code"], error["param"], error["type"]) == (
            "model_not_allowed",
            "model",
            "permission_error",
        )


async def test_requests_per_minute_with_openai_headers_then_429() -> None:
    async with TestClient(TestServer(app_for())) as client:
        with structlog.testing.capture_logs() as events:
            seen = []
            for _ in range(3):
                response = await client.post(
                    "/v1/chat/completions",
                    json={**CHAT, "messages": [{"role": "user", "content": "x"}]},
                    headers=bearer(KEY_A),
                )
                assert response.status == 200
                seen.append(response.headers["x-ratelimit-remaining-requests"])
            assert seen == ["2", "1", "0"]
            assert response.headers["x-ratelimit-limit-requests"] == "3"
            assert response.headers["x-ratelimit-reset-requests"].endswith("s")
            limited = await client.post("/v1/chat/completions", json=CHAT, headers=bearer(KEY_A))
        assert limited.status == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["x-ratelimit-remaining-requests"] == "0"
        assert (await error_of(limited))["code"] == "rate_limit_exceeded"
        access = [e for e in events if e["event"] == "request"]
        assert [e["key"] for e in access] == ["team-a"] * 4
        assert KEY_A not in repr(events)


async def test_tokens_per_minute_count_what_the_upstream_reported_streams_included() -> None:
    async with TestClient(TestServer(app_for())) as client:
        first = await client.post("/v1/chat/completions", json=CHAT, headers=bearer(KEY_C))
        assert first.status == 200
        used = (await first.json())["usage"]["total_tokens"]
        stream = await client.post(
            "/v1/chat/completions",
            json={**CHAT, "stream": True, "stream_options": {"include_usage": True}},
            headers=bearer(KEY_C),
        )
        assert stream.status == 200
        await stream.read()
        assert used * 2 < 25  # the limit is not reached yet by these two
        third = await client.post("/v1/chat/completions", json=CHAT, headers=bearer(KEY_C))
        assert third.status == 200
        remaining = int(third.headers["x-ratelimit-remaining-tokens"])
        assert remaining == 25 - used * 2
        # the third request's tokens push it over: the next is refused on tokens
        limited = await client.post("/v1/chat/completions", json=CHAT, headers=bearer(KEY_C))
        assert limited.status == 429
        assert (await error_of(limited))["type"] == "tokens"


async def test_limits_reset_in_the_next_window() -> None:
    now = [1_000_020.0]
    limits = MemoryLimits(clock=lambda: now[0])
    key = GatewayKey("k", key_digest(KEY_A), rpm=1)
    assert (await limits.admit(key)).requests == 1
    assert (await limits.admit(key)).requests == 2
    now[0] += 60
    assert (await limits.admit(key)).requests == 1


def test_keyring_compares_every_key_and_never_keeps_the_key() -> None:
    ring = KeyRing((GatewayKey("a", key_digest(KEY_A)), GatewayKey("b", key_digest(KEY_B))))
    assert ring.identify(f"Bearer {KEY_B}").name == "b"
    assert ring.identify(f"bearer {KEY_A}").name == "a"
    with pytest.raises(GatewayError):
        ring.identify("Basic xyz")
    assert KEY_A not in repr(ring.identify(f"Bearer {KEY_A}"))


async def test_redis_store_shares_limits_between_two_gateways(redis_url: str) -> None:
    async with (
        TestClient(TestServer(app_for("redis", redis_url))) as first,
        TestClient(TestServer(app_for("redis", redis_url))) as second,
    ):
        statuses = []
        for client in (first, second, first, second):
            response = await client.post(
                "/v1/chat/completions",
                json={**CHAT, "messages": [{"role": "user", "content": "x"}]},
                headers=bearer(KEY_A),
            )
            statuses.append(response.status)
        assert statuses == [200, 200, 200, 429]


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"Bearer \xff\xfe-not-utf8".decode("utf-8", "surrogateescape"), id="invalid-utf8"),
        pytest.param(b"Bearer \xc3(".decode("utf-8", "surrogateescape"), id="broken-sequence"),
        pytest.param(
            (b"Bearer " + KEY_A.encode() + b"\xff").decode("utf-8", "surrogateescape"), id="a-key-and-more"
        ),
    ],
)
def test_an_authorization_that_is_not_utf8_is_an_invalid_key(header: str) -> None:
    """aiohttp hands header bytes that are not UTF-8 over as surrogates (surrogateescape), which
    `str.encode()` refuses: that was a 500."""
    ring = KeyRing((GatewayKey(name="team-a", digest=key_digest(KEY_A)),))
    with pytest.raises(GatewayError) as caught:
        ring.identify(header)
    assert (caught.value.status, caught.value.code) == (401, "invalid_api_key")
