"""The real Codex CLI (`codex exec`), sealed off from the network (see tests/support/codex_cli.py), with
a plain prompt and with a tool loop: the model asks to run a shell command with Codex's `exec_command`
tool, the CLI runs it (read-only sandbox: an `echo` needs nothing more) and sends its output back, the
final answer quotes what the command printed (which the prompt does not contain: the command computes
it).

First straight against a scripted Responses API fake: that proves the harness and the fake, and pins
down what this version of the CLI sends. Then through the gateway's `POST /v1/responses`, with a gateway
key, to the same fake (an `openai` provider: the Responses API is relayed, only `model` rewritten), to a
chat-only OpenAI-compatible provider (`deepseek`: translated to Chat Completions and back) and to an
Anthropic one (translated to the Messages API and back). Skipped, with the reason, where the CLI is not
installed (`make clients`).
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
from tests.support.agent_routes import ROUTES, routes_config
from tests.support.codex_cli import RUN_TIMEOUT, Codex, Run, codex_or_skip
from tests.support.fake_upstreams import FakeUpstream, Recorded
from tests.support.openai_spec import assert_valid
from tests.support.routes import CLIENT_KEY, OPENAI_KEY, write_routes
from tests.support.scripted_models import PLAIN_ANSWER, TOOL_PREAMBLE, answer_for
from tests.support.scripted_responses import (
    ENCRYPTED_REASONING,
    SHELL_CALL_ID,
    SHELL_TOOL,
    ScriptedCodexAnthropic,
    ScriptedCodexChat,
    ScriptedResponses,
    offered_function_names,
    output_items,
    response_object,
    responses_stream,
    responses_turn,
    shell_prompt,
)
from tests.support.sdk_harness import fake_fixtures
from tests.support.servers import ServerThread

COMMAND = "echo codex-tool-$((6*7))"
OUTPUT = "codex-tool-42"
WRONG_KEY = "sk-not-a-gateway-key"
RESPONSES = ("POST", "/v1/responses")
DIRECT_KEY = "sk-direct-to-the-fake"
DIRECT_MODEL = "gpt-scripted"


@dataclass(frozen=True)
class Scenario:
    prompt: str
    answer: str
    turns: int  # requests the CLI makes: one per model turn


SCENARIOS = {
    "plain": Scenario("Say hello.", PLAIN_ANSWER, 1),
    "tool": Scenario(shell_prompt(COMMAND), answer_for(OUTPUT), 2),
}


# ---- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def codex() -> Codex:
    return codex_or_skip()


scripted_responses, _fresh_scripted_responses = fake_fixtures("scripted_responses", ScriptedResponses)
scripted_chat, _fresh_scripted_chat = fake_fixtures("scripted_chat", ScriptedCodexChat)
scripted_anthropic, _fresh_scripted_anthropic = fake_fixtures("scripted_anthropic", ScriptedCodexAnthropic)


@dataclass(frozen=True)
class Seen:
    """A request the gateway answered, and the hosted tools it said it dropped (x-gateway-dropped-tools)."""

    method: str
    path: str
    status: int
    dropped_tools: str | None = None


@dataclass(frozen=True)
class RecordedGateway:
    url: str
    seen: list[Seen]


def recording(app: web.Application, seen: list[Seen]) -> web.Application:
    """`app` noting every response it starts, when its status line is about to be sent: before the
    client can read any of it, so a test that waited for the client has the whole list."""

    async def note(request: web.Request, response: web.StreamResponse) -> None:
        dropped = response.headers.get("x-gateway-dropped-tools")
        seen.append(Seen(request.method, request.path, response.status, dropped))

    app.on_response_prepare.append(note)
    return app


@pytest.fixture(scope="module")
def recorded_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    scripted_responses: ScriptedResponses,
    scripted_chat: ScriptedCodexChat,
    scripted_anthropic: ScriptedCodexAnthropic,
) -> Iterator[RecordedGateway]:
    """The gateway (served as `gateway.cli.serve` serves it) with a key and one provider per route;
    `seen` lists what it answered."""
    fakes = {
        "scripted_responses": scripted_responses,
        "scripted_chat": scripted_chat,
        "scripted_anthropic": scripted_anthropic,
    }
    config = routes_config("codex", fakes)
    path = write_routes(tmp_path_factory.mktemp("codex") / "routes.yaml", config)
    holder = RegistryHolder.load(str(path))
    limits = holder.current.config.limits
    seen: list[Seen] = []
    server = ServerThread(
        lambda: recording(create_app(holder), seen),
        name="gateway-codex",
        runner=lambda app: gateway_runner(app, limits, shutdown_timeout=2.0),
    ).start()
    try:
        yield RecordedGateway(server.url, seen)
    finally:
        server.stop()


@pytest.fixture
def gateway_url(recorded_gateway: RecordedGateway) -> Iterator[str]:
    recorded_gateway.seen.clear()
    yield f"{recorded_gateway.url}/v1"
    recorded_gateway.seen.clear()


# ---- what must have happened -------------------------------------------------------------------------------


def assert_answered(run: Run, answer: str) -> None:
    assert run.exit_code == 0, run.describe()
    assert answer in run.stdout, run.describe()
    assert run.seconds < RUN_TIMEOUT


def assert_no_client_key(rec: Recorded) -> None:
    assert all(CLIENT_KEY not in value for value in rec.headers.values()), rec.headers
    assert CLIENT_KEY.encode() not in rec.raw


def assert_codex_request(rec: Recorded) -> None:
    """What this CLI sends every turn (../shared/clients.md, Codex): a stream, nothing stored, the
    history replayed (no previous_response_id), the system prompt as developer messages (no
    instructions), encrypted reasoning asked for, its shell tool as a flat function, web_search."""
    body = rec.json
    assert body["stream"] is True
    assert body["store"] is False
    assert body["include"] == ["reasoning.encrypted_content"]
    assert "previous_response_id" not in body
    assert "instructions" not in body
    assert body["tool_choice"] == "auto"
    assert "prompt_cache_key" in body
    assert "developer" in [item.get("role") for item in body["input"]]
    assert all("id" in item for item in body["input"] if item.get("type") != "function_call_output")
    assert SHELL_TOOL in offered_function_names(body["tools"])
    assert "namespace" in [tool["type"] for tool in body["tools"]]
    assert "web_search" in [tool["type"] for tool in body["tools"]]


def assert_codex_headers(rec: Recorded, key: str) -> None:
    assert rec.headers["authorization"] == f"Bearer {key}"
    assert rec.headers["originator"] == "codex_exec"
    assert rec.headers["accept"] == "text/event-stream"
    assert "session-id" in rec.headers
    assert "x-codex-beta-features" in rec.headers


def assert_responses_tool_loop(second: dict[str, Any]) -> None:
    """Turn 2 in the Responses API: the turn so far replayed, reasoning (its encrypted content
    untouched), the preamble, the function call, then its output carrying what the command printed."""
    *_, reasoning, said, call, result = second["input"]
    assert (reasoning["type"], reasoning["encrypted_content"]) == ("reasoning", ENCRYPTED_REASONING)
    assert (said["type"], said["role"]) == ("message", "assistant")
    assert [part["text"] for part in said["content"]] == [TOOL_PREAMBLE]
    assert (call["type"], call["name"], call["call_id"]) == ("function_call", SHELL_TOOL, SHELL_CALL_ID)
    assert json.loads(call["arguments"])["cmd"] == COMMAND
    assert (result["type"], result["call_id"]) == ("function_call_output", SHELL_CALL_ID)
    assert OUTPUT in result["output"]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def assert_chat_tool_loop(second: dict[str, Any]) -> None:
    """Turn 2 translated to Chat Completions: the assistant's text and tool call, then the tool message
    carrying what the command printed, under the same call id (whatever id the gateway gave Codex)."""
    *_, asked, result = second["messages"]
    assert asked["role"] == "assistant"
    assert _text(asked["content"]) == TOOL_PREAMBLE
    [call] = asked["tool_calls"]
    assert call["function"]["name"] == SHELL_TOOL
    assert json.loads(call["function"]["arguments"])["cmd"] == COMMAND
    assert result["role"] == "tool"
    assert result["tool_call_id"] == call["id"]
    assert OUTPUT in _text(result["content"])


def assert_anthropic_tool_loop(second: dict[str, Any]) -> None:
    """Turn 2 translated to the Messages API: the assistant's text and tool_use, then the user's
    tool_result carrying what the command printed, under the same id."""
    *_, asked, result = second["messages"]
    assert asked["role"] == "assistant"
    assert _text([b for b in asked["content"] if b["type"] == "text"]) == TOOL_PREAMBLE
    [use] = [b for b in asked["content"] if b["type"] == "tool_use"]
    assert (use["name"], use["input"]["cmd"]) == (SHELL_TOOL, COMMAND)
    assert result["role"] == "user"
    [tool_result] = [b for b in result["content"] if b["type"] == "tool_result"]
    assert tool_result["tool_use_id"] == use["id"]
    assert OUTPUT in _text(tool_result["content"])


# ---- the fake itself: what Codex reads is what the API sends -----------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_fake_streams_spec_valid_events(scenario: str) -> None:
    tool = {"type": "function", "name": SHELL_TOOL, "parameters": {"type": "object"}, "strict": False}
    body = {"model": DIRECT_MODEL, "stream": True, "store": False, "tools": [tool]}
    turn = responses_turn({**body, "input": SCENARIOS[scenario].prompt})
    parts = [part for part in responses_stream(body, turn) if isinstance(part, bytes)]
    events = [json.loads(part.split(b"\ndata: ", 1)[1]) for part in parts]

    for event in events:
        assert_valid("ResponseStreamEvent", event)
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    assert events[-1]["type"] == "response.completed"
    assert_valid("Response", response_object(body, output_items(turn), "completed"))


# ---- straight to a fake Responses API: the harness, the fake, and what this CLI sends ---------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_straight_to_the_responses_fake(
    scenario: str, codex: Codex, scripted_responses: ScriptedResponses
) -> None:
    case = SCENARIOS[scenario]
    run = codex.run(
        case.prompt, base_url=f"{scripted_responses.url}/v1", api_key=DIRECT_KEY, model=DIRECT_MODEL
    )

    assert_answered(run, case.answer)
    requests = scripted_responses.requests
    assert [(r.method, r.path) for r in requests] == [RESPONSES] * case.turns
    for rec in requests:
        assert rec.json["model"] == DIRECT_MODEL
        assert_codex_headers(rec, DIRECT_KEY)
        assert_codex_request(rec)
    if scenario == "tool":
        assert_responses_tool_loop(requests[1].json)


# ---- through the gateway -----------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("route_name", ROUTES)
def test_through_the_gateway(
    route_name: str,
    scenario: str,
    codex: Codex,
    gateway_url: str,
    recorded_gateway: RecordedGateway,
    request: pytest.FixtureRequest,
) -> None:
    route, case = ROUTES[route_name], SCENARIOS[scenario]
    fake: FakeUpstream = request.getfixturevalue(route.fake)

    run = codex.run(case.prompt, base_url=gateway_url, api_key=CLIENT_KEY, model=route.alias)

    assert_answered(run, case.answer)
    assert [(s.method, s.path, s.status) for s in recorded_gateway.seen] == [(*RESPONSES, 200)] * case.turns
    assert [(r.method, r.path) for r in fake.requests] == [("POST", route.path)] * case.turns
    for rec in fake.requests:
        assert rec.json["model"] == route.upstream_model
        assert rec.json["stream"] is True
        if route.dialect == "anthropic":
            assert rec.headers["x-api-key"] == route.api_key
        else:
            assert rec.headers["authorization"] == f"Bearer {route.api_key}"
        assert_no_client_key(rec)
    if route_name == "responses-native":  # passthrough: Codex's body as it sent it
        for rec in fake.requests:
            assert_codex_request(rec)
            assert "client_metadata" in rec.json
        assert all(s.dropped_tools is None for s in recorded_gateway.seen)
        if scenario == "tool":
            assert_responses_tool_loop(fake.requests[1].json)
    else:  # translated: function tools go along, the hosted web_search cannot and is named as dropped
        for rec in fake.requests:
            assert "web_search" not in [tool.get("type") for tool in rec.json["tools"]]
            assert SHELL_TOOL in offered_function_names(rec.json["tools"])
            assert not [name for name in rec.headers if name.startswith("x-codex-") or name == "originator"]
        assert all("web_search" in (s.dropped_tools or "").split(",") for s in recorded_gateway.seen)
        if scenario == "tool":
            check = assert_anthropic_tool_loop if route.dialect == "anthropic" else assert_chat_tool_loop
            check(fake.requests[1].json)


def test_the_passthrough_relays_codex_headers(
    codex: Codex, gateway_url: str, recorded_gateway: RecordedGateway, scripted_responses: ScriptedResponses
) -> None:
    """Issue 14, Passthrough: custom headers go along untouched (an upstream such as OpenAI reads
    `originator`, `session-id` and the `x-codex-*` variants); the gateway's key replaces Codex's."""
    run = codex.run(
        "Say hello.", base_url=gateway_url, api_key=CLIENT_KEY, model=ROUTES["responses-native"].alias
    )

    assert_answered(run, PLAIN_ANSWER)
    assert_codex_headers(scripted_responses.only(), OPENAI_KEY)


def test_a_wrong_gateway_key_ends_the_run_with_an_authentication_error(
    codex: Codex,
    gateway_url: str,
    recorded_gateway: RecordedGateway,
    scripted_responses: ScriptedResponses,
    scripted_chat: ScriptedCodexChat,
) -> None:
    run = codex.run("Say hello.", base_url=gateway_url, api_key=WRONG_KEY, model=ROUTES["chat-only"].alias)

    assert run.exit_code == 1, run.describe()
    assert "401" in run.stderr, run.describe()
    assert run.seconds < RUN_TIMEOUT
    assert [(s.method, s.path, s.status) for s in recorded_gateway.seen] == [(*RESPONSES, 401)]
    assert scripted_responses.requests == scripted_chat.requests == []
