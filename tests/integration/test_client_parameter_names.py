"""A client of another protocol meets the parameter fates in its own words: a 400 names the
parameter as the client sent it (`tool_choice.disable_parallel_tool_use`, not the canonical
`parallel_tool_calls`), and so does `x-gateway-dropped-params`; a parameter only that protocol has
(the Messages API's `top_k`, the Responses API's `text.verbosity`, `reasoning.summary`) is mapped
where the upstream has it, refused or named where it does not, never lost. Cases are data."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.fake_gemini import FakeGemini
from tests.support.fake_upstreams import FakeOpenAI
from tests.support.routes import CLIENT_KEY
from tests.support.sdk_harness import fake_fixtures, raw_http, running_gateway

fake_openai, _fresh_openai = fake_fixtures("fake_openai", FakeOpenAI)
fake_gemini, _fresh_gemini = fake_fixtures("fake_gemini", FakeGemini)

MESSAGES = {"max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
RESPONSES = {"input": "Hi"}
WEATHER = {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}


@dataclass(frozen=True)
class Case:
    path: str
    model: str  # openai, chat (OpenAI chat upstreams: one that has no Responses API) or gemini
    body: dict[str, Any]
    status: int = 200
    named: str | None = None  # the parameter the 400 names (param and message)
    dropped: str | None = None  # x-gateway-dropped-params
    sent: dict[str, Any] = field(default_factory=dict)  # dotted path in the upstream body -> value


CASES = {
    # (an OpenAI-compatible upstream gets unknown fields as they are: its to judge)
    "messages top_k passed to openai": Case(
        "/v1/messages", "openai", {**MESSAGES, "top_k": 40}, sent={"top_k": 40}
    ),
    "messages top_k mapped for gemini": Case(
        "/v1/messages", "gemini", {**MESSAGES, "top_k": 40}, sent={"generationConfig.topK": 40}
    ),
    "messages disable_parallel_tool_use refused by gemini": Case(
        "/v1/messages",
        "gemini",
        {**MESSAGES, "tools": [WEATHER], "tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
        status=400,
        named="tool_choice.disable_parallel_tool_use",
    ),
    "responses text.verbosity sent to openai": Case(
        "/v1/responses", "chat", {**RESPONSES, "text": {"verbosity": "low"}}, sent={"verbosity": "low"}
    ),
    "responses text.verbosity refused by gemini": Case(
        "/v1/responses",
        "gemini",
        {**RESPONSES, "text": {"verbosity": "low"}},
        status=400,
        named="text.verbosity",
    ),
    "responses reasoning.summary named when left out": Case(
        "/v1/responses",
        "chat",
        {**RESPONSES, "reasoning": {"effort": "low", "summary": "auto"}},
        dropped="reasoning.summary",
        sent={"reasoning_effort": "low"},
    ),
}


@pytest.fixture(scope="module")
def gateway_url(
    tmp_path_factory: pytest.TempPathFactory, fake_openai: FakeOpenAI, fake_gemini: FakeGemini
) -> Iterator[str]:
    config = {
        "log": {"level": "warning", "format": "json"},
        "providers": {
            "openai": {"dialect": "openai", "base_url": f"{fake_openai.url}/v1", "api_key": "sk-up"},
            # (a dialect without a Responses API: a Responses client is translated, not relayed)
            "chat": {"dialect": "deepseek", "base_url": f"{fake_openai.url}/v1", "api_key": "sk-up"},
            "gemini": {"dialect": "gemini", "base_url": f"{fake_gemini.url}/v1beta", "api_key": "g-up"},
        },
        "models": {
            "openai": [{"provider": "openai", "model": "gpt-4o"}],
            "chat": [{"provider": "chat", "model": "deepseek-chat"}],
            "gemini": [{"provider": "gemini", "model": "gemini-2.5-flash"}],
        },
    }
    with running_gateway(tmp_path_factory.mktemp("names") / "routes.yaml", config) as url:
        yield url


def _at(body: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        body = body.get(key) if isinstance(body, dict) else None
    return body


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
async def test_parameters_in_the_clients_own_words(
    gateway_url: str, fake_openai: FakeOpenAI, fake_gemini: FakeGemini, case: Case
) -> None:
    headers = {"x-api-key": CLIENT_KEY, "authorization": f"Bearer {CLIENT_KEY}"}
    async with raw_http(gateway_url) as http:
        body = {"model": case.model, **case.body}
        async with http.post(case.path, json=body, headers=headers) as response:
            status, got, answer = response.status, dict(response.headers), await response.json()
    fake = fake_gemini if case.model == "gemini" else fake_openai
    assert status == case.status, answer
    if case.named is not None:
        error = answer["error"]
        assert f"'{case.named}' is not supported" in error["message"]
        if case.path == "/v1/responses":  # OpenAI's envelope names it in `param` too
            assert error["param"] == case.named
        else:  # the Messages envelope
            assert answer["type"] == "error" and error["type"] == "invalid_request_error"
        assert fake.requests == []
        return
    assert got.get("x-gateway-dropped-params") == case.dropped
    sent = fake.only().json
    for dotted, value in case.sent.items():
        assert _at(sent, dotted) == value, sent
