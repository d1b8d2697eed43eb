"""The real Claude Code CLI in print mode (`claude -p`), sealed off from the network (see
tests/support/claude_code.py), with a plain prompt and with a tool loop: the model asks to run a shell
command with the Bash tool, the CLI runs it and sends the result back, the final answer quotes the
command's output (which the prompt does not contain: the command computes it).

First straight against a scripted Anthropic fake: that proves the harness and the fake, and pins down
what this version of the CLI sends. Then through the gateway's `POST /v1/messages`, to the same fake
(same protocol: passthrough) and to an OpenAI-compatible one (translated), with gateway keys on, so
the key arrives as `x-api-key` (or `Authorization: Bearer`). Skipped, with the reason, where the CLI is
not installed (`make clients`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.reload import RegistryHolder
from gateway.server import gateway_runner
from tests.support.claude_code import RUN_TIMEOUT, ClaudeCode, Run, claude_code_or_skip
from tests.support.fake_upstreams import ANTHROPIC_MODEL, OPENAI_MODEL, FakeUpstream, Recorded
from tests.support.routes import ANTHROPIC_KEY, CLIENT_KEY, OPENAI_KEY, write_routes
from tests.support.scripted_models import (
    PLAIN_ANSWER,
    SIGNATURE,
    TOOL_NAME,
    TOOL_PREAMBLE,
    TOOL_USE_ID,
    ScriptedAnthropic,
    ScriptedOpenAI,
    answer_for,
    run_prompt,
)
from tests.support.sdk_harness import fake_fixtures
from tests.support.servers import ServerThread

COMMAND = "echo gateway-tool-$((6*7))"
OUTPUT = "gateway-tool-42"
WRONG_KEY = "sk-not-a-gateway-key"
MESSAGES = ("POST", "/v1/messages")


@dataclass(frozen=True)
class Scenario:
    prompt: str
    answer: str
    turns: int  # requests the CLI makes: one per model turn


SCENARIOS = {
    "plain": Scenario("Say hello.", PLAIN_ANSWER, 1),
    "tool": Scenario(run_prompt(COMMAND), answer_for(OUTPUT), 2),
}


@dataclass(frozen=True)
class Route:
    """A gateway alias, the provider behind it and what that provider's fake must be sent."""

    alias: str
    fake: str  # fixture name
    path: str
    upstream_model: str


ROUTES = {
    "anthropic": Route("gw-anthropic", "scripted_anthropic", "/v1/messages", ANTHROPIC_MODEL),
    "openai": Route("gw-openai", "scripted_openai", "/v1/chat/completions", OPENAI_MODEL),
}


# ---- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def claude() -> ClaudeCode:
    return claude_code_or_skip()


scripted_anthropic, _fresh_scripted_anthropic = fake_fixtures("scripted_anthropic", ScriptedAnthropic)
scripted_openai, _fresh_scripted_openai = fake_fixtures("scripted_openai", ScriptedOpenAI)


@dataclass(frozen=True)
class Seen:
    """A request the gateway answered."""

    method: str
    path: str
    query: str
    status: int


@dataclass(frozen=True)
class RecordedGateway:
    url: str
    seen: list[Seen]


def recording(app: web.Application, seen: list[Seen]) -> web.Application:
    """`app` noting every response it starts, when its status line is about to be sent: before the
    client can read any of it, so a test that waited for the client has the whole list."""

    async def note(request: web.Request, response: web.StreamResponse) -> None:
        seen.append(Seen(request.method, request.path, request.query_string, response.status))

    app.on_response_prepare.append(note)
    return app


@pytest.fixture(scope="module")
def recorded_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    scripted_anthropic: ScriptedAnthropic,
    scripted_openai: ScriptedOpenAI,
) -> Iterator[RecordedGateway]:
    """The gateway (served as `gateway.cli.serve` serves it) with a key, an Anthropic provider and an
    OpenAI one; `seen` lists what it answered."""
    config = {
        "log": {"level": "warning", "format": "json"},
        "auth": {"keys": [{"name": "claude-code", "key": CLIENT_KEY}]},
        "providers": {
            "anthropic": {
                "dialect": "anthropic",
                "base_url": scripted_anthropic.url,
                "api_key": ANTHROPIC_KEY,
            },
            "openai": {"dialect": "openai", "base_url": f"{scripted_openai.url}/v1", "api_key": OPENAI_KEY},
        },
        "models": {
            route.alias: [{"provider": name, "model": route.upstream_model}] for name, route in ROUTES.items()
        },
    }
    path = write_routes(tmp_path_factory.mktemp("claude-code") / "routes.yaml", config)
    holder = RegistryHolder.load(str(path))
    limits = holder.current.config.limits
    seen: list[Seen] = []
    server = ServerThread(
        lambda: recording(create_app(holder), seen),
        name="gateway-claude-code",
        runner=lambda app: gateway_runner(app, limits, shutdown_timeout=2.0),
    ).start()
    try:
        yield RecordedGateway(server.url, seen)
    finally:
        server.stop()


@pytest.fixture
def gateway_url(recorded_gateway: RecordedGateway) -> Iterator[str]:
    recorded_gateway.seen.clear()
    yield recorded_gateway.url
    recorded_gateway.seen.clear()


# ---- what must have happened -------------------------------------------------------------------------------


def assert_answered(run: Run, answer: str) -> None:
    assert run.exit_code == 0, run.describe()
    assert answer in run.stdout, run.describe()
    assert run.seconds < RUN_TIMEOUT


def assert_no_client_key(rec: Recorded) -> None:
    assert all(CLIENT_KEY not in value for value in rec.headers.values()), rec.headers
    assert CLIENT_KEY.encode() not in rec.raw


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if isinstance(b, dict))


def assert_anthropic_tool_loop(second: dict[str, Any]) -> None:
    """Turn 2 of the loop in the Messages API: the assistant's thinking (its signature untouched), text
    and tool_use, then the user's tool_result carrying what the command printed."""
    *_, asked, result = second["messages"]
    assert asked["role"] == "assistant"
    assert [b["type"] for b in asked["content"]] == ["thinking", "text", "tool_use"]
    assert asked["content"][0]["signature"] == SIGNATURE
    assert _text([b for b in asked["content"] if b["type"] == "text"]) == TOOL_PREAMBLE
    uses = [b for b in asked["content"] if b["type"] == "tool_use"]
    assert [(u["id"], u["name"], u["input"]["command"]) for u in uses] == [(TOOL_USE_ID, TOOL_NAME, COMMAND)]
    assert result["role"] == "user"
    results = [b for b in result["content"] if b["type"] == "tool_result"]
    assert [r["tool_use_id"] for r in results] == [TOOL_USE_ID]
    assert _text(results[0]["content"]).strip() == OUTPUT
    assert results[0].get("is_error") in (None, False)


def assert_openai_tool_loop(second: dict[str, Any]) -> None:
    """Turn 2 of the loop in Chat Completions: the assistant's text and tool call, then the tool message
    carrying what the command printed, under the same call id (whatever id the gateway gave the client)."""
    *_, asked, result = second["messages"]
    assert asked["role"] == "assistant"
    assert _text(asked["content"]) == TOOL_PREAMBLE
    [call] = asked["tool_calls"]
    assert call["function"]["name"] == TOOL_NAME
    assert json.loads(call["function"]["arguments"])["command"] == COMMAND
    assert result["role"] == "tool"
    assert result["tool_call_id"] == call["id"]
    assert _text(result["content"]).strip() == OUTPUT


# ---- straight to a fake Anthropic: the harness, the fake, and what this CLI sends --------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_straight_to_the_anthropic_fake(
    scenario: str, claude: ClaudeCode, scripted_anthropic: ScriptedAnthropic
) -> None:
    case = SCENARIOS[scenario]
    run = claude.run(case.prompt, base_url=scripted_anthropic.url, api_key="sk-ant-direct")

    assert_answered(run, case.answer)
    requests = scripted_anthropic.requests
    assert [(r.method, r.path, r.query) for r in requests] == [(*MESSAGES, "beta=true")] * case.turns
    for rec in requests:
        assert rec.headers["x-api-key"] == "sk-ant-direct"
        assert rec.headers["anthropic-version"] == "2023-06-01"
        assert "claude-code-20250219" in rec.headers["anthropic-beta"].split(",")
        assert rec.json["stream"] is True
        # what the ingress must take: a system message inside `messages`, tool schemas with `$schema`
        assert "system" in [m["role"] for m in rec.json["messages"]]
        assert any("$schema" in t.get("input_schema", {}) for t in rec.json["tools"])
    if scenario == "tool":
        assert_anthropic_tool_loop(requests[1].json)


# ---- through the gateway -----------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("route_name", ROUTES)
def test_through_the_gateway(
    route_name: str,
    scenario: str,
    claude: ClaudeCode,
    gateway_url: str,
    recorded_gateway: RecordedGateway,
    request: pytest.FixtureRequest,
) -> None:
    route, case = ROUTES[route_name], SCENARIOS[scenario]
    fake: FakeUpstream = request.getfixturevalue(route.fake)

    run = claude.run(case.prompt, base_url=gateway_url, api_key=CLIENT_KEY, model=route.alias)

    assert_answered(run, case.answer)
    assert recorded_gateway.seen == [Seen(*MESSAGES, "beta=true", 200)] * case.turns
    assert [(r.method, r.path) for r in fake.requests] == [("POST", route.path)] * case.turns
    for rec in fake.requests:
        assert rec.json["model"] == route.upstream_model
        assert rec.json["stream"] is True
        assert_no_client_key(rec)
        if route_name == "anthropic":  # passthrough: the Anthropic headers go along
            assert rec.headers["x-api-key"] == ANTHROPIC_KEY
            assert rec.headers["anthropic-version"] == "2023-06-01"
            assert "claude-code-20250219" in rec.headers["anthropic-beta"].split(",")
        else:
            assert rec.headers["authorization"] == f"Bearer {OPENAI_KEY}"
            assert not [name for name in rec.headers if name.startswith("anthropic-") or name == "x-api-key"]
    if scenario == "tool":
        check = assert_anthropic_tool_loop if route_name == "anthropic" else assert_openai_tool_loop
        check(fake.requests[1].json)


def test_the_gateway_key_as_a_bearer_token(
    claude: ClaudeCode, gateway_url: str, recorded_gateway: RecordedGateway, scripted_openai: ScriptedOpenAI
) -> None:
    run = claude.run("Say hello.", base_url=gateway_url, auth_token=CLIENT_KEY, model=ROUTES["openai"].alias)

    assert_answered(run, PLAIN_ANSWER)
    assert recorded_gateway.seen == [Seen(*MESSAGES, "beta=true", 200)]
    assert_no_client_key(scripted_openai.only())


def test_a_wrong_gateway_key_ends_the_run_with_an_authentication_error(
    claude: ClaudeCode,
    gateway_url: str,
    recorded_gateway: RecordedGateway,
    scripted_anthropic: ScriptedAnthropic,
    scripted_openai: ScriptedOpenAI,
) -> None:
    run = claude.run("Say hello.", base_url=gateway_url, api_key=WRONG_KEY, model=ROUTES["openai"].alias)

    assert run.exit_code == 1, run.describe()
    assert "Failed to authenticate" in run.stdout, run.describe()
    assert "401" in run.stdout, run.describe()
    assert run.seconds < RUN_TIMEOUT
    assert recorded_gateway.seen == [Seen(*MESSAGES, "beta=true", 401)]
    assert scripted_anthropic.requests == scripted_openai.requests == []
