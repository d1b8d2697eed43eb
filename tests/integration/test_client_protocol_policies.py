"""A provider's policies for what only the client's protocol has. `client_headers`: which client
headers reach an upstream that speaks the client's protocol (`anthropic-beta` whole — the default —
stripped, or only the betas listed); an upstream reached by translation never gets them.
`server_tools`: a client's server tools (web search, ...) on a translated request are left out and
named (the default) or refused with a 400 naming them; a native upstream gets them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_upstreams import FakeAnthropic, FakeOpenAI
from tests.support.routes import CLIENT_KEY
from tests.support.sdk_harness import fake_fixtures, raw_http, running_gateway

fake_anthropic, _fresh_anthropic = fake_fixtures("fake_anthropic", FakeAnthropic)
fake_openai, _fresh_openai = fake_fixtures("fake_openai", FakeOpenAI)

BETAS = "claude-code-20250219, interleaved-thinking-2025-05-14,context-management-2025-06-27"
BODY = {"max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture(scope="module")
def gateway_url(
    tmp_path_factory: pytest.TempPathFactory, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> Iterator[str]:
    def anthropic(**extra: object) -> dict[str, object]:
        return {"dialect": "anthropic", "base_url": fake_anthropic.url, "api_key": "sk-ant-up", **extra}

    config = {
        "log": {"level": "warning", "format": "json"},
        "providers": {
            "all": anthropic(),
            "none": anthropic(client_headers={"anthropic-beta": "none"}),
            "listed": anthropic(
                client_headers={"anthropic-beta": ["interleaved-thinking-2025-05-14", "files-api-2025-04-14"]}
            ),
            "openai": {"dialect": "openai", "base_url": f"{fake_openai.url}/v1", "api_key": "sk-up"},
            "strict": {
                "dialect": "openai",
                "base_url": f"{fake_openai.url}/v1",
                "api_key": "sk-up",
                "server_tools": "reject",
            },
        },
        "models": {
            name: [
                {"provider": name, "model": "gpt-4o" if name in ("openai", "strict") else "claude-sonnet-4-5"}
            ]
            for name in ("all", "none", "listed", "openai", "strict")
        },
    }
    with running_gateway(tmp_path_factory.mktemp("headers") / "routes.yaml", config) as url:
        yield url


async def _post(gateway_url: str, model: str) -> None:
    async with raw_http(gateway_url) as http:
        headers = {"anthropic-beta": BETAS, "anthropic-version": "2023-06-01", "x-api-key": CLIENT_KEY}
        async with http.post("/v1/messages", json={"model": model, **BODY}, headers=headers) as response:
            assert response.status == 200, await response.text()


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("all", BETAS),
        ("none", None),
        ("listed", "interleaved-thinking-2025-05-14"),
    ],
)
async def test_anthropic_beta_as_the_provider_allows(
    gateway_url: str, fake_anthropic: FakeAnthropic, model: str, expected: str | None
) -> None:
    await _post(gateway_url, model)
    sent = fake_anthropic.only()
    assert sent.headers.get("anthropic-beta") == expected
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["x-api-key"] == "sk-ant-up"  # the provider's key, never the client's


async def test_a_translated_upstream_gets_no_client_protocol_headers(
    gateway_url: str, fake_openai: FakeOpenAI
) -> None:
    await _post(gateway_url, "openai")
    sent = fake_openai.only()
    assert not [name for name in sent.headers if name.startswith("anthropic-")]
    assert isinstance(sent.json, dict) and sent.json["model"] == "gpt-4o"


WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
WEATHER = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


async def _with_tools(gateway_url: str, model: str) -> tuple[int, dict[str, str], object]:
    async with raw_http(gateway_url) as http:
        body = {"model": model, **BODY, "tools": [WEB_SEARCH, WEATHER]}
        async with http.post("/v1/messages", json=body, headers={"x-api-key": CLIENT_KEY}) as response:
            return response.status, dict(response.headers), await response.json()


async def test_server_tools_are_left_out_and_named_on_a_translated_request(
    gateway_url: str, fake_openai: FakeOpenAI
) -> None:
    status, headers, _ = await _with_tools(gateway_url, "openai")
    assert status == 200
    assert headers["x-gateway-dropped-tools"] == "web_search"
    sent = fake_openai.only().json
    assert isinstance(sent, dict)
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["get_weather"]


async def test_a_provider_may_refuse_server_tools_instead(gateway_url: str, fake_openai: FakeOpenAI) -> None:
    status, headers, body = await _with_tools(gateway_url, "strict")
    assert status == 400
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "web_search" in body["error"]["message"]
    assert "x-gateway-dropped-tools" not in headers
    assert fake_openai.requests == []


async def test_a_native_upstream_gets_server_tools_as_they_are(
    gateway_url: str, fake_anthropic: FakeAnthropic
) -> None:
    status, headers, _ = await _with_tools(gateway_url, "all")
    assert status == 200
    assert "x-gateway-dropped-tools" not in headers
    sent = fake_anthropic.only().json
    assert isinstance(sent, dict) and sent["tools"] == [WEB_SEARCH, WEATHER]
