"""The official `openai` SDK's Responses API (`client.responses.create`, `.stream`) against the gateway's
`POST /v1/responses`, with every kind of upstream behind it: an OpenAI-compatible chat server
(Mistral's flavour), Gemini, Bedrock and Anthropic (translated: Responses -> canonical chat -> the
provider's wire, and back), the built-in mock, and an upstream that serves /v1/responses itself (the
openai dialect: relayed, only `model` rewritten).

Every body and every stream event the SDK receives is checked against the official spec when the client
closes (tests/support/spec_transport.py, tests/support/responses_spec.py): `Response`, and each stream
event against its own component, with strictly increasing sequence numbers. What a translated upstream
was sent is read back in one shape whatever its wire (`conversation`, see
tests/support/anthropic_ingress_upstreams.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from pydantic import BaseModel

from tests.support.access_events import access_events
from tests.support.anthropic_ingress_upstreams import FAKES, STREAM_TEXT, UPSTREAMS, Upstream
from tests.support.fake_upstreams import FakeUpstream
from tests.support.responses_native import ENCRYPTED, NATIVE_TEXT, native_reply
from tests.support.responses_spec import assert_valid_response, assert_valid_response_stream
from tests.support.routes import CLIENT_KEY
from tests.support.sdk_harness import fake_fixtures, running_gateway, sdk_fixtures

fake_openai, _fresh_fake_openai = fake_fixtures("fake_openai", FAKES["fake_openai"])
fake_compatible, _fresh_fake_compatible = fake_fixtures("fake_compatible", FAKES["fake_compatible"])
fake_gemini, _fresh_fake_gemini = fake_fixtures("fake_gemini", FAKES["fake_gemini"])
fake_bedrock, _fresh_fake_bedrock = fake_fixtures("fake_bedrock", FAKES["fake_bedrock"])
fake_anthropic, _fresh_fake_anthropic = fake_fixtures("fake_anthropic", FAKES["fake_anthropic"])

TRANSLATED = {name: UPSTREAMS[name] for name in ("compatible", "gemini", "bedrock", "anthropic")}
NATIVE_ALIAS = "gw-native"
NATIVE_MODEL = "gpt-5-2025-08-07"

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
APPLY_PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Apply a patch",
    "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
}


@pytest.fixture(scope="module")
def responses_gateway(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    providers = {up.name: up.provider(request.getfixturevalue(up.fake).url) for up in TRANSLATED.values()}
    models: dict[str, Any] = {
        up.alias: [{"provider": up.name, "model": up.model}] for up in TRANSLATED.values()
    }
    providers["openai"] = UPSTREAMS["openai"].provider(request.getfixturevalue("fake_openai").url)
    models[NATIVE_ALIAS] = [{"provider": "openai", "model": NATIVE_MODEL}]
    # the same upstream, refusing hosted tools instead of leaving them out
    providers["strict"] = {**providers["compatible"], "server_tools": "reject"}
    models["gw-strict"] = [{"provider": "strict", "model": TRANSLATED["compatible"].model}]
    providers["mock"] = {"dialect": "mock", "transport": "mock"}
    models["mock"] = [{"provider": "mock", "model": "mock-1"}]
    config = {"log": {"level": "warning", "format": "json"}, "providers": providers, "models": models}
    with running_gateway(tmp_path_factory.mktemp("responses") / "routes.yaml", config) as url:
        yield url


client, async_client, http = sdk_fixtures("responses_gateway")

each_translated = pytest.mark.parametrize("upstream", list(TRANSLATED.values()), ids=list(TRANSLATED))


def fake_of(upstream: Upstream, request: pytest.FixtureRequest) -> FakeUpstream:
    fake: FakeUpstream = request.getfixturevalue(upstream.fake)
    return fake


# ---- translated: plain answers, sync, async, streamed ----------------------------------------------------


@each_translated
def test_create_answers_with_the_upstreams_text(
    client: openai.OpenAI, upstream: Upstream, request: pytest.FixtureRequest
) -> None:
    response = client.responses.create(model=upstream.alias, input="Hello?", instructions="Be brief.")
    assert response.status == "completed" and response.id.startswith("resp_")
    assert response.output_text == upstream.text
    assert [item.type for item in response.output] == ["message"]
    assert response.instructions == "Be brief." and response.model == upstream.alias
    assert response.usage is not None and response.usage.input_tokens == upstream.usage[0]
    assert response.usage.output_tokens == upstream.usage[1]
    conversation = upstream.conversation(fake_of(upstream, request).only())
    assert conversation == [("system", "Be brief."), ("user", "Hello?")]


@each_translated
async def test_async_create_takes_input_items(
    async_client: openai.AsyncOpenAI, upstream: Upstream, request: pytest.FixtureRequest
) -> None:
    items: Any = [
        {"role": "developer", "content": "Answer in English."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Hello!", "annotations": []}]},
        {"role": "user", "content": "How are you?"},
    ]
    response = await async_client.responses.create(model=upstream.alias, input=items)
    assert response.output_text == upstream.text
    assert upstream.conversation(fake_of(upstream, request).only()) == [
        ("system", "Answer in English."),
        ("user", "Hi"),
        ("assistant", "Hello!"),
        ("user", "How are you?"),
    ]


@each_translated
def test_stream_sends_text_deltas_and_the_whole_response(client: openai.OpenAI, upstream: Upstream) -> None:
    with client.responses.stream(model=upstream.alias, input="Hello?") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == STREAM_TEXT
    assert final.status == "completed" and final.output_text == STREAM_TEXT
    assert final.usage is not None and final.usage.output_tokens == upstream.stream_usage[1]


@each_translated
async def test_async_stream(async_client: openai.AsyncOpenAI, upstream: Upstream) -> None:
    async with async_client.responses.stream(model=upstream.alias, input="Hello?") as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert final.output_text == STREAM_TEXT


# ---- translated: function tools, a two-turn loop ---------------------------------------------------------


@each_translated
@pytest.mark.parametrize("streamed", [False, True], ids=["create", "stream"])
def test_function_tool_loop(
    client: openai.OpenAI, upstream: Upstream, streamed: bool, request: pytest.FixtureRequest
) -> None:
    fake = fake_of(upstream, request)
    fake.enqueue(upstream.calls([("get_weather", {"city": "Paris"})], streamed))
    tools: Any = [WEATHER, {"type": "web_search"}]
    first: Any
    if streamed:
        with client.responses.stream(model=upstream.alias, input="Weather in Paris?", tools=tools) as stream:
            first = stream.get_final_response()
    else:
        first = client.responses.create(model=upstream.alias, input="Weather in Paris?", tools=tools)
    calls = [item for item in first.output if item.type == "function_call"]
    assert (
        len(calls) == 1 and calls[0].name == "get_weather" and calls[0].id and calls[0].id.startswith("fc_")
    )
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    sent = fake.requests[0]
    assert upstream.conversation(sent) == [("user", "Weather in Paris?")]

    history: Any = [
        {"role": "user", "content": "Weather in Paris?"},
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny, 21 C"},
    ]
    second = client.responses.create(model=upstream.alias, input=history, tools=tools)
    assert second.output_text == upstream.text
    assert upstream.conversation(fake.requests[1]) == [
        ("user", "Weather in Paris?"),
        ("call", "get_weather", {"city": "Paris"}),
        ("result", "Sunny, 21 C"),
    ]


def test_hosted_tools_are_left_out_and_named(responses_gateway: str, fake_compatible: FakeUpstream) -> None:
    body = {"model": "gw-mistral", "input": "Hi", "tools": [WEATHER, {"type": "web_search"}]}
    reply = _post(responses_gateway, body)
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-gateway-dropped-tools"] == "web_search"
    sent = fake_compatible.only().json
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["get_weather"]
    assert sent["tools"][0]["function"]["strict"] is True


def test_hosted_tools_are_refused_by_a_provider_that_says_so(
    client: openai.OpenAI, fake_compatible: FakeUpstream
) -> None:
    tools: Any = [WEATHER, {"type": "web_search"}]
    with pytest.raises(openai.BadRequestError, match="web_search") as refused:
        client.responses.create(model="gw-strict", input="Hi", tools=tools)
    assert refused.value.code == "unsupported_server_tools"
    assert fake_compatible.requests == []


def test_custom_tools_are_a_function_of_one_string_and_come_back_as_custom_calls(
    client: openai.OpenAI, fake_compatible: FakeUpstream
) -> None:
    upstream = TRANSLATED["compatible"]
    fake_compatible.enqueue(upstream.calls([("apply_patch", {"input": "*** Begin Patch"})], False))
    response = client.responses.create(model=upstream.alias, input="Patch it", tools=[APPLY_PATCH])  # type: ignore[list-item]
    [call] = response.output
    assert call.type == "custom_tool_call" and call.input == "*** Begin Patch"
    [tool] = fake_compatible.only().json["tools"]
    assert tool["function"]["parameters"]["required"] == ["input"]


def test_namespace_tools_are_their_functions_and_calls_name_their_namespace(
    responses_gateway: str, fake_compatible: FakeUpstream
) -> None:
    """Codex groups some functions in a `namespace` tool; a call of one goes back with its namespace."""
    upstream = TRANSLATED["compatible"]
    fake_compatible.enqueue(upstream.calls([("lookup", {"id": 7})], False))
    lookup = {"type": "function", "name": "lookup", "parameters": {"type": "object"}, "strict": False}
    namespace = {"type": "namespace", "name": "crm", "description": "The CRM", "tools": [lookup]}
    reply = _post(
        responses_gateway, {"model": "gw-mistral", "input": "Find 7", "tools": [WEATHER, namespace]}
    )
    assert reply.status_code == 200, reply.text
    assert "x-gateway-dropped-tools" not in reply.headers
    sent = fake_compatible.only().json
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["get_weather", "lookup"]
    [call] = assert_valid_response(reply.json())["output"]
    assert (call["type"], call["name"], call["namespace"]) == ("function_call", "lookup", "crm")


@each_translated
def test_a_streamed_custom_tool_call(
    client: openai.OpenAI, upstream: Upstream, request: pytest.FixtureRequest
) -> None:
    fake_of(upstream, request).enqueue(upstream.calls([("apply_patch", {"input": "*** Begin Patch"})], True))
    tools: Any = [APPLY_PATCH]
    with client.responses.stream(model=upstream.alias, input="Patch it", tools=tools) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" not in kinds
    assert "response.custom_tool_call_input.done" in kinds
    [call] = final.output
    assert call.type == "custom_tool_call" and call.input == "*** Begin Patch"


# ---- translated: request fields ---------------------------------------------------------------------


class Weather(BaseModel):
    city: str
    celsius: int


def test_structured_output_reasoning_and_limits_reach_the_upstream(
    client: openai.OpenAI, fake_compatible: FakeUpstream
) -> None:
    schema = Weather.model_json_schema()
    params: dict[str, Any] = {
        "model": "gw-mistral",
        "input": "Weather?",
        "text": {"format": {"type": "json_schema", "name": "weather", "schema": schema, "strict": True}},
        "reasoning": {"effort": "low"},
        "max_output_tokens": 64,
        "temperature": 0.2,
        "top_p": 0.9,
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "tools": [WEATHER],
        "safety_identifier": "user-42",
    }
    client.responses.create(**params)
    sent = fake_compatible.only().json
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["name"] == "weather"
    assert sent["response_format"]["json_schema"]["schema"]["required"] == ["city", "celsius"]
    assert sent["max_tokens"] == 64 and sent["temperature"] == 0.2 and sent["top_p"] == 0.9
    assert sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is False
    assert sent["reasoning_effort"] == "low"


def test_structured_output_parse_with_the_mock(client: openai.OpenAI) -> None:
    parsed = client.responses.parse(model="mock", input="Weather in Paris?", text_format=Weather)
    assert isinstance(parsed.output_parsed, Weather)


def test_fields_only_the_responses_api_has_are_named_as_dropped(responses_gateway: str) -> None:
    body = {"model": "mock", "input": "Hi", "store": False, "include": ["reasoning.encrypted_content"]}
    reply = _post(responses_gateway, body)
    assert reply.status_code == 200, reply.text
    dropped = set(reply.headers["x-gateway-dropped-params"].split(","))
    assert "include" in dropped and "store" not in dropped  # (the gateway keeps responses itself)


def test_length_is_an_incomplete_response(client: openai.OpenAI, fake_compatible: FakeUpstream) -> None:
    from tests.support.fake_openai_compatible import chat_completion
    from tests.support.fake_upstreams import json_reply

    truncated = chat_completion("mistral", "mistral-large-latest", content="Hel", finish_reason="length")
    fake_compatible.enqueue(json_reply(truncated))
    response = client.responses.create(model="gw-mistral", input="Hi", max_output_tokens=1)
    assert response.status == "incomplete"
    assert (
        response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    )


def test_a_stream_cut_by_length_ends_incomplete(client: openai.OpenAI, fake_compatible: FakeUpstream) -> None:
    from tests.support.fake_openai_compatible import chat_stream
    from tests.support.fake_upstreams import sse_reply

    fake_compatible.enqueue(sse_reply(chat_stream("mistral", "mistral-large-latest", finish_reason="length")))
    # as from OpenAI: the last event is response.incomplete (the SDK's get_final_response() wants
    # response.completed, so the events are read as they come)
    events = list(client.responses.create(model="gw-mistral", input="Hi", max_output_tokens=3, stream=True))
    last = events[-1]
    assert last.type == "response.incomplete" and last.response.status == "incomplete"
    details = last.response.incomplete_details
    assert details is not None and details.reason == "max_output_tokens"


def test_an_unknown_previous_response_id_is_not_found_on_a_translated_route(
    client: openai.OpenAI, fake_compatible: FakeUpstream
) -> None:
    """(tests/integration/test_responses_state.py: the ids it knows)"""
    with pytest.raises(openai.NotFoundError, match="resp_123") as missing:
        client.responses.create(model="gw-mistral", input="Hi", previous_response_id="resp_123")
    assert missing.value.code == "previous_response_not_found"
    assert fake_compatible.requests == []


# ---- the mock -------------------------------------------------------------------------------------


def test_mock_answers_and_streams(client: openai.OpenAI) -> None:
    response = client.responses.create(model="mock", input="Hello")
    assert response.output_text == "You said: Hello"
    with client.responses.stream(model="mock", input="Hello") as stream:
        assert stream.get_final_response().output_text == "You said: Hello"


def test_raw_stream_events_are_named_and_numbered(responses_gateway: str) -> None:
    reply = _post(responses_gateway, {"model": "mock", "input": "Hello", "stream": True})
    events = assert_valid_response_stream(reply.content)
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "You said: Hello"


# ---- passthrough: an upstream that serves /v1/responses --------------------------------------------


def test_native_upstream_is_relayed_with_only_model_rewritten(
    responses_gateway: str, fake_openai: FakeUpstream
) -> None:
    fake_openai.enqueue(native_reply())
    body = {
        "model": NATIVE_ALIAS,
        "input": [
            {"role": "user", "content": "Hi"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": ENCRYPTED},
        ],
        "tools": [{"type": "web_search"}],
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "x_unknown_field": {"kept": 1},
    }
    reply = _post(responses_gateway, body, headers={"x-codex-turn-state": "abc"})
    assert reply.status_code == 200, reply.text
    sent = fake_openai.only()
    assert sent.path == "/v1/responses"
    assert sent.json == {**body, "model": NATIVE_MODEL}
    answer = assert_valid_response(reply.json())
    assert (
        answer["x_vendor_extra"] == {"kept": True} and answer["output"][0]["encrypted_content"] == ENCRYPTED
    )
    assert "x-gateway-dropped-tools" not in reply.headers


def test_native_stream_bytes_are_relayed(responses_gateway: str, fake_openai: FakeUpstream) -> None:
    fake_openai.enqueue(native_reply())
    reply = _post(responses_gateway, {"model": NATIVE_ALIAS, "input": "Hi", "stream": True})
    events = assert_valid_response_stream(reply.content)
    assert events[-1]["response"]["x_vendor_extra"] == {"kept": True}
    assert fake_openai.only().json["model"] == NATIVE_MODEL


def test_native_sdk_create_and_stream(client: openai.OpenAI, fake_openai: FakeUpstream) -> None:
    fake_openai.enqueue(native_reply(), native_reply([("get_weather", {"city": "Paris"})]))
    assert client.responses.create(model=NATIVE_ALIAS, input="Hi").output_text == NATIVE_TEXT
    with client.responses.stream(model=NATIVE_ALIAS, input="Weather?", tools=[WEATHER]) as stream:  # type: ignore[list-item]
        final = stream.get_final_response()
    [call] = [item for item in final.output if item.type == "function_call"]
    assert call.call_id == "call_native0" and json.loads(call.arguments) == {"city": "Paris"}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_native_usage_reaches_the_access_log(
    responses_gateway: str, fake_openai: FakeUpstream, stream: bool
) -> None:
    """A native Responses stream reports its usage only in its last event (response.completed)."""
    fake_openai.enqueue(native_reply())
    with access_events() as events:
        reply = _post(responses_gateway, {"model": NATIVE_ALIAS, "input": "Hi", "stream": stream})
        assert reply.status_code == 200
        [event] = events.wait_for(1)
    assert event["usage"] == {
        "prompt_tokens": 11,
        "completion_tokens": 6,
        "total_tokens": 17,
        # the reply's cached input and reasoning, kept: they are priced apart (gateway/prices/)
        "prompt_tokens_details": {"cached_tokens": 3, "cache_write_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }


def _post(gateway: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx2.Response:
    return httpx2.post(
        f"{gateway}/v1/responses",
        json=body,
        headers={"authorization": f"Bearer {CLIENT_KEY}", **(headers or {})},
        timeout=15.0,
    )


# ---- errors ------------------------------------------------------------------------------------------


@each_translated
def test_an_upstream_error_is_openais_envelope(
    client: openai.OpenAI, upstream: Upstream, request: pytest.FixtureRequest
) -> None:
    fake_of(upstream, request).enqueue(upstream.error("rate_limit"))
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model=upstream.alias, input="Hi")


@each_translated
def test_a_stream_that_breaks_ends_with_response_failed(
    responses_gateway: str, upstream: Upstream, request: pytest.FixtureRequest
) -> None:
    fake_of(upstream, request).enqueue(upstream.broken())
    reply = _post(responses_gateway, {"model": upstream.alias, "input": "Hi", "stream": True})
    events = assert_valid_response_stream(reply.content)
    deltas = [event["delta"] for event in events if event["type"] == "response.output_text.delta"]
    assert "".join(deltas).startswith("Hel")
    failed = events[-1]
    assert failed["type"] == "response.failed"
    assert [e["type"] for e in events].count("response.failed") == 1  # the one terminal event
    response = failed["response"]
    assert response["id"] == events[0]["response"]["id"] and response["status"] == "failed"
    assert response["error"]["code"] == "server_error" and response["error"]["message"]
    assert response["output"][0]["type"] == "message"  # what it had so far
    assert response["output"][0]["content"][0]["text"].startswith("Hel")


@each_translated
def test_the_sdk_stream_helper_sees_the_failure(
    client: openai.OpenAI, upstream: Upstream, request: pytest.FixtureRequest
) -> None:
    fake_of(upstream, request).enqueue(upstream.broken())
    with client.responses.stream(model=upstream.alias, input="Hi") as stream:
        kinds = [event.type for event in stream]
    assert kinds[0] == "response.created" and kinds[-1] == "response.failed"
