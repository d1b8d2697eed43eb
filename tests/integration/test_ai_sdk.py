"""The Vercel AI SDK's default OpenAI model (`openai("...")` of `@ai-sdk/openai`: the Responses API), run
by tests/clients/ai_sdk_run.mjs (see tests/support/ai_sdk.py): `generateText`, `streamText` (every text
delta collected) and a tool loop (`generateText` with tools and `stopWhen`: the model calls
`exec_command`, the SDK runs it and sends the result back, the final answer quotes the result, which the
prompt does not contain).

The tool loop runs as the SDK does by default (it leaves `store` at the API's default, true, and so
refers to the first turn's reasoning and message by `item_reference`), and with the provider option
`store: false` (it replays them in full), with `generateText` and with `streamText`.

First straight against the scripted Responses API fake: that proves the harness and the fake, and pins
down what this version of the SDK sends. Then through the gateway's `POST /v1/responses`, with a gateway
key, to the same fake (an `openai` provider: relayed, only `model` rewritten), to a chat-only
OpenAI-compatible provider (`deepseek`: translated to Chat Completions and back) and to an Anthropic one
(translated to the Messages API and back). Skipped, with the reason, where Node.js or the packages are
not installed (`make clients`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.agent_routes import ROUTES, routes_config
from tests.support.ai_sdk import RUN_TIMEOUT, AiSdk, Run, ai_sdk_or_skip
from tests.support.fake_upstreams import FakeUpstream, Recorded
from tests.support.routes import CLIENT_KEY
from tests.support.scripted_models import PLAIN_ANSWER, TOOL_PREAMBLE, answer_for
from tests.support.scripted_responses import (
    ENCRYPTED_REASONING,
    SHELL_CALL_ID,
    SHELL_TOOL,
    ScriptedCodexAnthropic,
    ScriptedCodexChat,
    ScriptedResponses,
    offered_function_names,
    shell_prompt,
)
from tests.support.sdk_harness import fake_fixtures, running_gateway

COMMAND = "echo ai-sdk-tool"
TOOL_OUTPUT = "ran: ECHO AI-SDK-TOOL"  # what the script's exec_command returns for COMMAND
FILE_TOOL = "read_file"  # the script's second tool, with a plain JSON schema
RESPONSES = ("POST", "/v1/responses")
DIRECT_KEY = "sk-direct-to-the-fake"
DIRECT_MODEL = "gpt-scripted"
WRONG_KEY = "sk-not-a-gateway-key"


@dataclass(frozen=True)
class Scenario:
    prompt: str
    answer: str
    turns: int  # requests the SDK makes: one per step
    stream: bool = False
    store: bool | None = None  # the `store` the SDK sends (None: none, the API's default: true)


SCENARIOS = {
    "generate": Scenario("Say hello.", PLAIN_ANSWER, 1),
    "stream": Scenario("Say hello.", PLAIN_ANSWER, 1, stream=True),
    "tool": Scenario(shell_prompt(COMMAND), answer_for(TOOL_OUTPUT), 2),
    "tool-unstored": Scenario(shell_prompt(COMMAND), answer_for(TOOL_OUTPUT), 2, store=False),
    "stream-tool-unstored": Scenario(shell_prompt(COMMAND), answer_for(TOOL_OUTPUT), 2, True, False),
}


# The SDK's default tool loop (stored: the first turn's reasoning and message sent back as
# `item_reference`) on a translated route: the gateway resolves each reference through the response
# it stored (the item id names it), so the upstream gets the whole turn. With `store: false` the SDK
# replays the items in full.
# ---- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ai_sdk() -> AiSdk:
    return ai_sdk_or_skip()


scripted_responses, _fresh_scripted_responses = fake_fixtures("scripted_responses", ScriptedResponses)
scripted_chat, _fresh_scripted_chat = fake_fixtures("scripted_chat", ScriptedCodexChat)
scripted_anthropic, _fresh_scripted_anthropic = fake_fixtures("scripted_anthropic", ScriptedCodexAnthropic)


@pytest.fixture(scope="module")
def gateway_url(
    tmp_path_factory: pytest.TempPathFactory,
    scripted_responses: ScriptedResponses,
    scripted_chat: ScriptedCodexChat,
    scripted_anthropic: ScriptedCodexAnthropic,
) -> Iterator[str]:
    """The gateway (served as `gateway.cli.serve` serves it) with a key and one provider per route;
    yields the base URL the SDK is given (with /v1)."""
    fakes = {
        "scripted_responses": scripted_responses,
        "scripted_chat": scripted_chat,
        "scripted_anthropic": scripted_anthropic,
    }
    config = routes_config("ai-sdk", fakes)
    path = tmp_path_factory.mktemp("ai-sdk") / "routes.yaml"
    with running_gateway(path, config, name="gateway-ai-sdk") as url:
        yield f"{url}/v1"


# ---- what must have happened -------------------------------------------------------------------------------


def assert_answered(run: Run, case: Scenario) -> dict[str, Any]:
    """The run ended well with the scenario's answer, one step per turn; returns what it printed."""
    assert run.exit_code == 0, run.describe()
    assert run.seconds < RUN_TIMEOUT
    result = run.result
    assert result["text"] == case.answer, run.describe()
    assert result["finishReason"] == "stop", run.describe()
    assert len(result["steps"]) == case.turns, run.describe()
    assert result["usage"]["inputTokens"] > 0 and result["usage"]["outputTokens"] > 0, run.describe()
    if case.stream:  # the text arrived in pieces: every step's, in order
        assert len(result["deltas"]) > case.turns, run.describe()
        assert "".join(result["deltas"]) == "".join(step["text"] for step in result["steps"])
    if case.turns == 2:
        asked, answered = result["steps"]
        assert (asked["text"], asked["finishReason"]) == (TOOL_PREAMBLE, "tool-calls"), run.describe()
        [call] = asked["toolCalls"]
        assert (call["toolName"], call["input"]) == (SHELL_TOOL, {"cmd": COMMAND})
        [tool_result] = asked["toolResults"]
        assert (tool_result["toolCallId"], tool_result["output"]) == (call["toolCallId"], TOOL_OUTPUT)
        assert answered["toolCalls"] == []
    return result


def assert_sdk_request(rec: Recorded, case: Scenario) -> None:
    """What this SDK sends: the prompt as a user message of input_text parts, `stream` only when
    streaming, `store` only when set (else the API's default, true), both tools as flat functions."""
    body = rec.json
    assert body.get("stream", False) is case.stream
    assert body.get("store") is case.store
    assert "previous_response_id" not in body
    first = body["input"][0]
    assert (first["role"], first["content"]) == ("user", [{"type": "input_text", "text": case.prompt}])
    if case.turns == 2:
        assert offered_function_names(body["tools"]) == [SHELL_TOOL, FILE_TOOL]
        assert body["tool_choice"] == "auto"
    else:
        assert "tools" not in body


def assert_responses_tool_loop(second: dict[str, Any], case: Scenario) -> None:
    """Turn 2 in the Responses API: the first turn's reasoning and message (by reference when stored,
    else in full: the encrypted reasoning untouched), the function call in full, then its output."""
    _prompt, reasoning, said, call, result = second["input"]
    if case.store is False:
        assert (reasoning["type"], reasoning["encrypted_content"]) == ("reasoning", ENCRYPTED_REASONING)
        assert (said["role"], said["content"]) == ("assistant", TOOL_PREAMBLE)
    else:
        assert (reasoning["type"], said["type"]) == ("item_reference", "item_reference")
    assert (call["type"], call["name"], call["call_id"]) == ("function_call", SHELL_TOOL, SHELL_CALL_ID)
    assert json.loads(call["arguments"]) == {"cmd": COMMAND}
    assert (result["type"], result["call_id"], result["output"]) == (
        "function_call_output",
        SHELL_CALL_ID,
        TOOL_OUTPUT,
    )


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def assert_chat_tool_loop(second: dict[str, Any]) -> None:
    """Turn 2 translated to Chat Completions: the assistant's text and tool call, then the tool message
    carrying the tool's result under the same call id."""
    *_, asked, result = second["messages"]
    assert asked["role"] == "assistant"
    assert _text(asked["content"]) == TOOL_PREAMBLE
    [call] = asked["tool_calls"]
    assert call["function"]["name"] == SHELL_TOOL
    assert json.loads(call["function"]["arguments"]) == {"cmd": COMMAND}
    assert (result["role"], result["tool_call_id"]) == ("tool", call["id"])
    assert _text(result["content"]) == TOOL_OUTPUT


def assert_anthropic_tool_loop(second: dict[str, Any]) -> None:
    """Turn 2 translated to the Messages API: the assistant's text and tool_use, then the user's
    tool_result carrying the tool's result under the same id."""
    *_, asked, result = second["messages"]
    assert asked["role"] == "assistant"
    assert _text([b for b in asked["content"] if b["type"] == "text"]) == TOOL_PREAMBLE
    [use] = [b for b in asked["content"] if b["type"] == "tool_use"]
    assert (use["name"], use["input"]) == (SHELL_TOOL, {"cmd": COMMAND})
    assert result["role"] == "user"
    [tool_result] = [b for b in result["content"] if b["type"] == "tool_result"]
    assert tool_result["tool_use_id"] == use["id"]
    assert _text(tool_result["content"]) == TOOL_OUTPUT


# ---- straight to a fake Responses API: the harness, the fake, and what this SDK sends ---------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_straight_to_the_responses_fake(
    scenario: str, ai_sdk: AiSdk, scripted_responses: ScriptedResponses
) -> None:
    case = SCENARIOS[scenario]
    run = ai_sdk.run(
        scenario, case.prompt, base_url=f"{scripted_responses.url}/v1", api_key=DIRECT_KEY, model=DIRECT_MODEL
    )

    assert_answered(run, case)
    requests = scripted_responses.requests
    assert [(r.method, r.path) for r in requests] == [RESPONSES] * case.turns
    for rec in requests:
        assert rec.json["model"] == DIRECT_MODEL
        assert rec.headers["authorization"] == f"Bearer {DIRECT_KEY}"
        assert_sdk_request(rec, case)
    if case.turns == 2:
        assert_responses_tool_loop(requests[1].json, case)


# ---- through the gateway -----------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("route_name", ROUTES)
def test_through_the_gateway(
    route_name: str, scenario: str, ai_sdk: AiSdk, gateway_url: str, request: pytest.FixtureRequest
) -> None:
    route, case = ROUTES[route_name], SCENARIOS[scenario]
    fake: FakeUpstream = request.getfixturevalue(route.fake)
    run = ai_sdk.run(scenario, case.prompt, base_url=gateway_url, api_key=CLIENT_KEY, model=route.alias)

    assert_answered(run, case)
    assert [(r.method, r.path) for r in fake.requests] == [("POST", route.path)] * case.turns
    for rec in fake.requests:
        assert rec.json["model"] == route.upstream_model
        assert rec.json.get("stream", False) is case.stream
        if route.dialect == "anthropic":
            assert rec.headers["x-api-key"] == route.api_key
        else:
            assert rec.headers["authorization"] == f"Bearer {route.api_key}"
        assert all(CLIENT_KEY not in value for value in rec.headers.values())
        assert CLIENT_KEY.encode() not in rec.raw
    if route_name == "responses-native":  # passthrough: the SDK's body as it sent it
        for rec in fake.requests:
            assert_sdk_request(rec, case)
        if case.turns == 2:
            assert_responses_tool_loop(fake.requests[1].json, case)
    elif case.turns == 2:
        assert offered_function_names(fake.requests[0].json["tools"]) == [SHELL_TOOL, FILE_TOOL]
        check = assert_anthropic_tool_loop if route.dialect == "anthropic" else assert_chat_tool_loop
        check(fake.requests[1].json)


def test_a_wrong_gateway_key_is_the_sdks_authentication_error(
    ai_sdk: AiSdk,
    gateway_url: str,
    scripted_responses: ScriptedResponses,
    scripted_chat: ScriptedCodexChat,
) -> None:
    run = ai_sdk.run("generate", "Say hello.", base_url=gateway_url, api_key=WRONG_KEY, model="gw-chat")

    assert run.exit_code == 1, run.describe()
    error = run.result["error"]
    assert (error["name"], error["statusCode"]) == ("AI_APICallError", 401), run.describe()
    assert scripted_responses.requests == scripted_chat.requests == []
