"""The official openai SDK against the gateway, with `bedrock`-dialect providers pointed at FakeBedrock:
Converse JSON, ConverseStream as the AWS binary event stream, Titan embeddings through InvokeModel.

The fake checks how every request was authenticated (SigV4 recomputed with botocore from the request
as received, or a Bedrock API key as bearer) and what it received against the Converse shapes; what the
client gets (every body and stream chunk) is checked against the OpenAI spec by the recording transport.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx2
import openai
import pytest

from tests.support.aws_eventstream import encode_message
from tests.support.fake_bedrock import (
    REQUEST_ID,
    AwsKey,
    FakeBedrock,
    bedrock_error,
    bedrock_json,
    converse_response,
    converse_stream,
    converse_usage,
    eventstream_reply,
    stream_event,
    stream_exception,
    text_block,
    titan_embedding,
    tool_use_block,
)
from tests.support.fake_upstreams import Part, Reply, rechunk
from tests.support.gates import Gate
from tests.support.openai_spec import COMPLETION, assert_error_body, assert_valid_stream
from tests.support.routes import CLIENT_KEY
from tests.support.sdk_harness import fake_fixtures, running_gateway, sdk_fixtures
from tests.support.sdk_payloads import PNG_B64, TIME_PARAMS, TIME_TOOL, WEATHER_PARAMS, WEATHER_TOOL

# ---- credentials the fake knows, and the providers that use them -----------------------------------

SESSION_KEY_ID = "ASIAFAKESESSION0001"
SESSION_SECRET = "session/secret+key0000000000000000000000"
SESSION_TOKEN = "FwoGZXIvYXdzEFAKE//session+token=="
LONG_KEY_ID = "AKIAFAKELONGTERM0001"
LONG_SECRET = "long/term+secret0000000000000000000000000"
WRONG_KEY_ID = "AKIAFAKEWRONGSECRET1"
API_KEY = "bedrock-api-key-ABSKfake0001"

CLAUDE = "claude-bedrock"  # SigV4, session token, region eu-west-3
CLAUDE_ID = "anthropic.claude-3-5-sonnet-20240620-v1:0"
CLAUDE_PATH = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0"
NOVA = "nova-bedrock"  # SigV4, long-term key, the dialect's default region
NOVA_ID = "us.amazon.nova-pro-v1:0"
PROFILE = "profile-bedrock"  # an inference-profile ARN: slashes and colons in the path
PROFILE_ARN = "arn:aws:bedrock:eu-west-3:123456789012:application-inference-profile/a1b2c3:0"
KEYED = "claude-bedrock-key"  # Bedrock API key (bearer)
BAD_SIGNER = "claude-bad-signer"  # signs with the wrong secret
DROPPING = "claude-bedrock-drop"  # unsupported_params: drop
TITAN = "titan-embed"
TITAN_ID = "amazon.titan-embed-text-v2:0"

USER = {"role": "user", "content": "Say hello"}
USER_BLOCKS = {"role": "user", "content": [{"text": "Say hello"}]}
WEATHER_SPEC = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "inputSchema": {"json": WEATHER_PARAMS},
    }
}
TIME_SPEC = {"toolSpec": {"name": "get_time", "inputSchema": {"json": TIME_PARAMS}}}
TWO_TOOL_USES = [
    tool_use_block("tooluse_W1", "get_weather", {"city": "Paris"}),
    tool_use_block("tooluse_T2", "get_time", {"tz": "Europe/Paris"}),
]


def _routes(fake_url: str) -> dict[str, Any]:
    def signed(key_id: str, secret: str, token: str | None = None, **extra: Any) -> dict[str, Any]:
        aws = {"access_key_id": key_id, "secret_access_key": secret}
        if token is not None:
            aws["session_token"] = token
        return {"dialect": "bedrock", "base_url": fake_url, "aws": aws, **extra}

    providers = {
        "bedrock-session": signed(
            SESSION_KEY_ID, SESSION_SECRET, SESSION_TOKEN, vars={"region": "eu-west-3"}
        ),
        "bedrock-long": signed(LONG_KEY_ID, LONG_SECRET),
        "bedrock-wrong": signed(WRONG_KEY_ID, "not-the-secret-the-fake-knows"),
        "bedrock-key": {"dialect": "bedrock", "base_url": fake_url, "api_key": API_KEY},
        "bedrock-drop": {
            "dialect": "bedrock",
            "base_url": fake_url,
            "api_key": API_KEY,
            "unsupported_params": "drop",
        },
    }
    models = {
        CLAUDE: [{"provider": "bedrock-session", "model": CLAUDE_ID}],
        NOVA: [{"provider": "bedrock-long", "model": NOVA_ID}],
        PROFILE: [{"provider": "bedrock-session", "model": PROFILE_ARN}],
        KEYED: [{"provider": "bedrock-key", "model": CLAUDE_ID}],
        BAD_SIGNER: [{"provider": "bedrock-wrong", "model": CLAUDE_ID}],
        DROPPING: [{"provider": "bedrock-drop", "model": CLAUDE_ID}],
        TITAN: [{"provider": "bedrock-session", "model": TITAN_ID}],
    }
    return {"log": {"level": "warning", "format": "json"}, "providers": providers, "models": models}


# ---- fixtures (this module's own: a gateway whose providers all point at FakeBedrock) -----------------


def _make_fake_bedrock() -> FakeBedrock:
    keys = {
        SESSION_KEY_ID: AwsKey(SESSION_SECRET, SESSION_TOKEN),
        LONG_KEY_ID: AwsKey(LONG_SECRET),
        WRONG_KEY_ID: AwsKey("the-secret-the-gateway-does-not-have"),
    }
    return FakeBedrock(keys, api_keys=[API_KEY])


fake_bedrock, _fresh_fake_bedrock = fake_fixtures("fake_bedrock", _make_fake_bedrock)


@pytest.fixture(scope="module")
def bedrock_gateway(tmp_path_factory: pytest.TempPathFactory, fake_bedrock: FakeBedrock) -> Iterator[str]:
    path = tmp_path_factory.mktemp("bedrock") / "routes.yaml"
    with running_gateway(path, _routes(fake_bedrock.url)) as url:
        yield url


client, async_client, http = sdk_fixtures("bedrock_gateway")


def assert_signed(fake: FakeBedrock, *, key: str, region: str, session_token: bool) -> None:
    check = fake.only_auth()
    assert check.ok, check.problems
    assert (check.scheme, check.access_key, check.region, check.service) == ("sigv4", key, region, "bedrock")
    assert {"host", "x-amz-date", "content-type"} <= set(check.signed_headers)
    assert ("x-amz-security-token" in check.signed_headers) is session_token
    headers = fake.only().headers
    assert headers["content-type"] == "application/json"
    assert ("x-amz-security-token" in headers) is session_token
    assert all(CLIENT_KEY not in value for value in headers.values()), headers


# ---- authentication ----------------------------------------------------------------------------------


def test_plain_chat_signed_with_temporary_credentials(
    client: openai.OpenAI, fake_bedrock: FakeBedrock
) -> None:
    usage = converse_usage(input_tokens=25, output_tokens=9, cache_read=100, cache_write=3)
    fake_bedrock.enqueue(bedrock_json(converse_response(usage=usage)))
    completion = client.chat.completions.create(model=CLAUDE, messages=[USER])
    assert completion.object == "chat.completion"
    assert completion.id == f"chatcmpl-{REQUEST_ID}"
    assert completion.model == CLAUDE
    assert completion.choices[0].message.content == "Hello from the fake Bedrock upstream."
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (128, 9)
    assert completion.usage.total_tokens == 137
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 100

    rec = fake_bedrock.only()
    assert (rec.method, rec.path) == ("POST", f"/model/{CLAUDE_ID}/converse")
    assert fake_bedrock.only_auth().raw_path == f"{CLAUDE_PATH}/converse"  # sent encoded, as signed
    assert rec.json == {"messages": [USER_BLOCKS]}
    assert_signed(fake_bedrock, key=SESSION_KEY_ID, region="eu-west-3", session_token=True)


def test_long_term_key_signs_for_the_default_region(client: openai.OpenAI, fake_bedrock: FakeBedrock) -> None:
    client.chat.completions.create(model=NOVA, messages=[USER])
    assert fake_bedrock.only_auth().raw_path == "/model/us.amazon.nova-pro-v1%3A0/converse"
    assert_signed(fake_bedrock, key=LONG_KEY_ID, region="us-east-1", session_token=False)


def test_inference_profile_arn_is_encoded_in_the_path_and_signed(
    client: openai.OpenAI, fake_bedrock: FakeBedrock
) -> None:
    client.chat.completions.create(model=PROFILE, messages=[USER])
    check = fake_bedrock.only_auth()
    assert check.raw_path == (
        "/model/arn%3Aaws%3Abedrock%3Aeu-west-3%3A123456789012%3A"
        "application-inference-profile%2Fa1b2c3%3A0/converse"
    )
    assert_signed(fake_bedrock, key=SESSION_KEY_ID, region="eu-west-3", session_token=True)


def test_bedrock_api_key_is_sent_as_a_bearer_token(client: openai.OpenAI, fake_bedrock: FakeBedrock) -> None:
    completion = client.chat.completions.create(model=KEYED, messages=[USER])
    assert completion.choices[0].message.content == "Hello from the fake Bedrock upstream."
    check = fake_bedrock.only_auth()
    assert check.ok, check.problems
    assert (check.scheme, check.bearer) == ("bearer", API_KEY)
    headers = fake_bedrock.only().headers
    assert "x-amz-date" not in headers and "x-amz-security-token" not in headers
    assert fake_bedrock.only().path == f"/model/{CLAUDE_ID}/converse"


def test_a_signature_bedrock_rejects_is_an_authentication_error(
    client: openai.OpenAI, fake_bedrock: FakeBedrock
) -> None:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model=BAD_SIGNER, messages=[USER])
    assert caught.value.status_code == 403
    error = assert_error_body(
        caught.value.response.json(), code="invalid_api_key", type_="authentication_error"
    )
    assert "signature does not match" in error["message"]
    assert fake_bedrock.requests == []  # refused before any reply was chosen
    assert fake_bedrock.only_auth().problems == ["signature does not match the request as received"]


# ---- request translation -----------------------------------------------------------------------------


async def test_system_and_sampling_parameters(
    async_client: openai.AsyncOpenAI, fake_bedrock: FakeBedrock
) -> None:
    await async_client.chat.completions.create(
        model=CLAUDE,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            USER,
        ],
        max_completion_tokens=100,
        temperature=1.7,
        top_p=0.5,
        stop=["END", "STOP"],
        user="user-123",
        metadata={"team": "search"},
        service_tier="flex",
    )
    assert fake_bedrock.only().json == {
        "system": [{"text": "You are terse."}, {"text": "Answer in French."}],
        "messages": [USER_BLOCKS],
        "inferenceConfig": {
            "maxTokens": 100,
            "temperature": 1,
            "topP": 0.5,
            "stopSequences": ["END", "STOP"],
        },
        "requestMetadata": {"team": "search", "user": "user-123"},
        "serviceTier": {"type": "flex"},
    }
    assert_signed(fake_bedrock, key=SESSION_KEY_ID, region="eu-west-3", session_token=True)


def test_multi_turn_with_tool_calls_and_tool_results(
    client: openai.OpenAI, fake_bedrock: FakeBedrock
) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "tooluse_W1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "tooluse_T2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"tz": "Europe/Paris"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "tooluse_W1", "content": "18C, cloudy"},
        {"role": "tool", "tool_call_id": "tooluse_T2", "content": [{"type": "text", "text": "14:05"}]},
    ]
    completion = client.chat.completions.create(
        model=CLAUDE, messages=messages, tools=[WEATHER_TOOL, TIME_TOOL], max_tokens=300
    )
    assert completion.choices[0].message.content == "Hello from the fake Bedrock upstream."
    sent = fake_bedrock.only().json
    assert sent["system"] == [{"text": "Use tools."}]
    assert sent["inferenceConfig"] == {"maxTokens": 300}
    assert sent["messages"] == [
        {"role": "user", "content": [{"text": "Weather and time in Paris?"}]},
        {"role": "assistant", "content": [{"text": "Let me check."}, *TWO_TOOL_USES]},
        {
            "role": "user",  # both tool results merged into one user turn
            "content": [
                {"toolResult": {"toolUseId": "tooluse_W1", "content": [{"text": "18C, cloudy"}]}},
                {"toolResult": {"toolUseId": "tooluse_T2", "content": [{"text": "14:05"}]}},
            ],
        },
    ]
    assert sent["toolConfig"] == {"tools": [WEATHER_SPEC, TIME_SPEC]}  # no tool_choice: Converse's default


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        pytest.param("auto", {"tools": [WEATHER_SPEC, TIME_SPEC], "toolChoice": {"auto": {}}}, id="auto"),
        pytest.param(
            "required", {"tools": [WEATHER_SPEC, TIME_SPEC], "toolChoice": {"any": {}}}, id="required"
        ),
        pytest.param(
            {"type": "function", "function": {"name": "get_time"}},
            {"tools": [WEATHER_SPEC, TIME_SPEC], "toolChoice": {"tool": {"name": "get_time"}}},
            id="named",
        ),
        pytest.param("none", None, id="none"),
    ],
)
def test_tool_choice(
    client: openai.OpenAI, fake_bedrock: FakeBedrock, tool_choice: Any, expected: Any
) -> None:
    client.chat.completions.create(
        model=CLAUDE, messages=[USER], tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=tool_choice
    )
    assert fake_bedrock.only().json.get("toolConfig") == expected


def test_tool_choice_none_after_tool_calls_sends_a_placeholder_tool(
    client: openai.OpenAI, fake_bedrock: FakeBedrock
) -> None:
    """Converse requires toolConfig when the history has tool calls; the real tools are still withheld."""
    messages: list[dict[str, Any]] = [
        USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "tooluse_W1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "tooluse_W1", "content": "18C"},
    ]
    client.chat.completions.create(model=CLAUDE, messages=messages, tools=[WEATHER_TOOL], tool_choice="none")
    tools = fake_bedrock.only().json["toolConfig"]["tools"]
    assert [t["toolSpec"]["name"] for t in tools] == ["no_tools_available"]
    assert "toolChoice" not in fake_bedrock.only().json["toolConfig"]


def test_images_become_image_blocks(client: openai.OpenAI, fake_bedrock: FakeBedrock) -> None:
    client.chat.completions.create(
        model=CLAUDE,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these."},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                    {"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lGODlhAQABAAAAACw="}},
                ],
            }
        ],
    )
    assert fake_bedrock.only().json["messages"] == [
        {
            "role": "user",
            "content": [
                {"text": "Compare these."},
                {"image": {"format": "png", "source": {"bytes": PNG_B64}}},
                {"image": {"format": "gif", "source": {"bytes": "R0lGODlhAQABAAAAACw="}}},
            ],
        }
    ]


def test_image_url_that_is_not_a_data_url_is_400(client: openai.OpenAI, fake_bedrock: FakeBedrock) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": [image]}])
    error = assert_error_body(caught.value.response.json(), code="unsupported_value")
    assert "base64 data URL" in error["message"]
    assert fake_bedrock.requests == [] and fake_bedrock.auth_checks == []


def test_response_format_json_schema_becomes_output_config(
    client: openai.OpenAI, fake_bedrock: FakeBedrock
) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    fake_bedrock.enqueue(bedrock_json(converse_response([text_block('{"answer": "Paris"}')])))
    completion = client.chat.completions.create(
        model=CLAUDE,
        messages=[USER],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": True},
        },
    )
    assert json.loads(completion.choices[0].message.content or "") == {"answer": "Paris"}
    text_format = fake_bedrock.only().json["outputConfig"]["textFormat"]
    assert text_format["type"] == "json_schema"
    assert text_format["structure"]["jsonSchema"]["name"] == "answer"
    assert json.loads(text_format["structure"]["jsonSchema"]["schema"]) == schema  # a JSON *string*


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        pytest.param({"seed": 7}, "seed", id="seed"),
        pytest.param({"n": 2}, "n", id="n"),
        pytest.param({"logprobs": True}, "logprobs", id="logprobs"),
        pytest.param({"response_format": {"type": "json_object"}}, "response_format", id="json_object"),
        pytest.param(
            {"parallel_tool_calls": False, "tools": [WEATHER_TOOL]}, "parallel_tool_calls", id="parallel"
        ),
    ],
)
def test_unsupported_parameters_are_400_naming_them(
    client: openai.OpenAI, fake_bedrock: FakeBedrock, kwargs: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CLAUDE, messages=[USER], **kwargs)
    error = assert_error_body(caught.value.response.json(), code="unsupported_parameter")
    assert error["param"] == param
    assert fake_bedrock.requests == []


def test_unsupported_parameters_are_dropped_when_the_provider_says_so(
    client: openai.OpenAI, fake_bedrock: FakeBedrock
) -> None:
    completion = client.chat.completions.create(
        model=DROPPING, messages=[USER], seed=7, presence_penalty=0.5, temperature=0.3
    )
    assert completion.choices[0].finish_reason == "stop"
    assert fake_bedrock.only().json == {"messages": [USER_BLOCKS], "inferenceConfig": {"temperature": 0.3}}


# ---- response translation ----------------------------------------------------------------------------


def test_tool_use_response_with_two_tool_calls(client: openai.OpenAI, fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.enqueue(bedrock_json(converse_response([text_block("Checking."), *TWO_TOOL_USES])))
    choice = client.chat.completions.create(
        model=CLAUDE, messages=[USER], tools=[WEATHER_TOOL, TIME_TOOL]
    ).choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    calls = choice.message.tool_calls or []
    assert [(c.id, c.type, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("tooluse_W1", "function", "get_weather", {"city": "Paris"}),
        ("tooluse_T2", "function", "get_time", {"tz": "Europe/Paris"}),
    ]


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_model_output", "stop"),
    ],
)
def test_stop_reasons(
    client: openai.OpenAI, fake_bedrock: FakeBedrock, stop_reason: str, finish_reason: str
) -> None:
    fake_bedrock.enqueue(bedrock_json(converse_response(stop_reason=stop_reason)))
    completion = client.chat.completions.create(model=CLAUDE, messages=[USER])
    assert completion.choices[0].finish_reason == finish_reason


@pytest.mark.parametrize(
    ("reply", "exception", "status", "code"),
    [
        pytest.param(
            bedrock_error(429, "ThrottlingException", "Too many requests", {"Retry-After": "2"}),
            openai.RateLimitError,
            429,
            "rate_limit_exceeded",
            id="throttling",
        ),
        pytest.param(
            bedrock_error(400, "ValidationException", "The model returned the following errors: bad"),
            openai.BadRequestError,
            400,
            None,
            id="validation",
        ),
        pytest.param(
            bedrock_error(404, "ResourceNotFoundException", "Could not resolve the foundation model"),
            openai.NotFoundError,
            404,
            "model_not_found",
            id="not-found",
        ),
        pytest.param(
            bedrock_error(408, "ModelTimeoutException", "Model has timed out"),
            openai.InternalServerError,
            504,
            "timeout",
            id="model-timeout",
        ),
        pytest.param(
            bedrock_error(424, "ModelErrorException", "Received error from the model"),
            openai.InternalServerError,
            502,
            "model_error",
            id="model-error",
        ),
        pytest.param(
            bedrock_error(503, "ServiceUnavailableException", "Service unavailable"),
            openai.InternalServerError,
            503,
            "service_unavailable",
            id="unavailable",
        ),
    ],
)
def test_upstream_errors_become_sdk_exceptions(
    client: openai.OpenAI,
    fake_bedrock: FakeBedrock,
    reply: Reply,
    exception: type[openai.APIStatusError],
    status: int,
    code: str | None,
) -> None:
    fake_bedrock.enqueue(reply)
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model=CLAUDE, messages=[USER])
    assert caught.value.status_code == status
    error = assert_error_body(caught.value.response.json(), code=code)
    assert error["message"] == json.loads(reply.body)["message"]
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "2"


# ---- streaming ---------------------------------------------------------------------------------------


def test_stream_text_with_the_sync_sdk(client: openai.OpenAI, fake_bedrock: FakeBedrock) -> None:
    text = ""
    finish = None
    with client.chat.completions.create(model=CLAUDE, messages=[USER], stream=True) as stream:
        for chunk in stream:
            assert chunk.id == f"chatcmpl-{REQUEST_ID}"
            assert chunk.model == CLAUDE
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
    assert text == "Hello from the fake stream."
    assert finish == "stop"
    rec = fake_bedrock.only()
    assert rec.path == f"/model/{CLAUDE_ID}/converse-stream"
    assert rec.json == {"messages": [USER_BLOCKS]}  # the path says stream; the body does not
    assert_signed(fake_bedrock, key=SESSION_KEY_ID, region="eu-west-3", session_token=True)


async def test_stream_with_usage_and_the_async_sdk(
    async_client: openai.AsyncOpenAI, fake_bedrock: FakeBedrock
) -> None:
    usage = converse_usage(input_tokens=10, output_tokens=6, cache_read=4)
    fake_bedrock.enqueue(eventstream_reply(converse_stream(usage=usage)))
    stream = await async_client.chat.completions.create(
        model=KEYED, messages=[USER], stream=True, stream_options={"include_usage": True}
    )
    async with stream:
        chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "Hello from the fake stream."
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (14, 6, 20)
    assert last.usage.prompt_tokens_details is not None
    assert last.usage.prompt_tokens_details.cached_tokens == 4
    assert fake_bedrock.only_auth().scheme == "bearer"


async def test_stream_split_anywhere(http: aiohttp.ClientSession, fake_bedrock: FakeBedrock) -> None:
    """Binary frames cut into 7-byte writes, across headers, payloads and multibyte text."""
    pieces = ["Grüße 👋🏽", " — ", "日本語のテキスト", " ✓"]
    fake_bedrock.enqueue(eventstream_reply(rechunk(converse_stream(pieces=pieces), 7)))
    events = await _stream_events(http)
    assert "error" not in events[-1]
    assert _text(events) == "".join(pieces)
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


def test_stream_two_tool_calls_with_the_stream_helper(
    client: openai.OpenAI, fake_bedrock: FakeBedrock
) -> None:
    no_input = tool_use_block("tooluse_N3", "get_time", {})
    fake_bedrock.enqueue(
        eventstream_reply(converse_stream(pieces=["Checking."], tool_calls=[TWO_TOOL_USES[0], no_input]))
    )
    with client.chat.completions.stream(
        model=CLAUDE, messages=[USER], tools=[WEATHER_TOOL, TIME_TOOL]
    ) as stream:
        done = [
            (e.index, e.name, e.arguments) for e in stream if e.type == "tool_calls.function.arguments.done"
        ]
        final = stream.get_final_completion()
    assert done == [(0, "get_weather", '{"city":"Paris"}'), (1, "get_time", "{}")]
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    assert [c.id for c in choice.message.tool_calls or []] == ["tooluse_W1", "tooluse_N3"]


async def test_stream_reasoning_and_unknown_events(
    http: aiohttp.ClientSession, fake_bedrock: FakeBedrock
) -> None:
    parts = converse_stream(pieces=["42"])
    extra = [
        stream_event(
            "contentBlockDelta", {"contentBlockIndex": 5, "delta": {"reasoningContent": {"text": "Hmm."}}}
        ),
        stream_event(
            "contentBlockDelta",
            {"contentBlockIndex": 5, "delta": {"reasoningContent": {"signature": "c2ln"}}},
        ),
        stream_event("contentBlockStop", {"contentBlockIndex": 5}),
        stream_event("brandNewEvent", {"whatever": [1, 2]}),
    ]
    fake_bedrock.enqueue(eventstream_reply([parts[0], *extra, *parts[1:]]))
    events = await _stream_events(http)
    assert "error" not in events[-1]
    reasoning = [
        e["choices"][0]["delta"]["reasoning_content"]
        for e in events
        if "reasoning_content" in e["choices"][0]["delta"]
    ]
    assert reasoning == ["Hmm."]
    assert _text(events) == "42"


@pytest.mark.parametrize(
    ("name", "payload", "type_", "code"),
    [
        ("throttlingException", {"message": "Too many tokens"}, "rate_limit_error", "rate_limit_exceeded"),
        (
            "modelStreamErrorException",
            {"message": "Model stream failed", "originalStatusCode": 500, "originalMessage": "boom"},
            "server_error",
            "model_error",
        ),
        ("validationException", {"message": "Input is too long"}, "invalid_request_error", None),
        ("internalServerException", {"message": "Internal error"}, "server_error", "internal_error"),
        ("serviceUnavailableException", {"message": "Unavailable"}, "server_error", "service_unavailable"),
    ],
)
async def test_stream_exception_mid_stream(
    http: aiohttp.ClientSession,
    fake_bedrock: FakeBedrock,
    name: str,
    payload: dict[str, Any],
    type_: str,
    code: str | None,
) -> None:
    parts = converse_stream()
    fake_bedrock.enqueue(eventstream_reply([*parts[:3], stream_exception(name, payload), *parts[3:]]))
    events = await _stream_events(http)
    assert events[-1]["error"] == {"message": payload["message"], "type": type_, "param": None, "code": code}
    assert _text(events[:-1]) == "Hello from"


def test_stream_exception_raises_in_the_sdk(client: openai.OpenAI, fake_bedrock: FakeBedrock) -> None:
    parts = converse_stream()
    fake_bedrock.enqueue(
        eventstream_reply([*parts[:2], stream_exception("throttlingException", {"message": "Slow down"})])
    )
    pieces: list[str] = []

    def consume() -> None:
        for chunk in client.chat.completions.create(model=CLAUDE, messages=[USER], stream=True):
            pieces.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIError) as caught:
        consume()
    assert "Slow down" in str(caught.value)
    assert "".join(pieces) == "Hello"


async def test_stream_unmodeled_error_frame(http: aiohttp.ClientSession, fake_bedrock: FakeBedrock) -> None:
    """A `:message-type: error` frame carries its code and message in headers, with an empty payload."""
    headers = {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "It broke."}
    parts = converse_stream()
    fake_bedrock.enqueue(eventstream_reply([*parts[:2], encode_message(headers, b""), *parts[2:]]))
    events = await _stream_events(http)
    assert events[-1]["error"] == {
        "message": "It broke.",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    assert _text(events[:-1]) == "Hello"


async def test_stream_cut_short_is_reported(http: aiohttp.ClientSession, fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.enqueue(eventstream_reply(converse_stream(complete=False)))
    events = await _stream_events(http)
    assert events[-1]["error"]["code"] == "upstream_stream_truncated"
    assert _text(events[:-1]) == "Hello from the fake stream."


async def test_concurrent_streams_keep_their_own_state(
    async_client: openai.AsyncOpenAI, fake_bedrock: FakeBedrock
) -> None:
    """Two tool-call streams interleaved: each numbers its own tool calls from 0."""
    gate_a, gate_b = fake_bedrock.gate("stream a"), fake_bedrock.gate("stream b")

    def held(parts: list[Part], gate: Gate, request_id: str) -> Reply:
        return eventstream_reply([*parts[:3], gate, *parts[3:]], request_id)  # inside the first tool call

    fake_bedrock.enqueue(
        held(converse_stream(pieces=[], tool_calls=TWO_TOOL_USES), gate_a, "req-A"),
        held(converse_stream(pieces=[], tool_calls=TWO_TOOL_USES[::-1]), gate_b, "req-B"),
    )

    async def run(expected_id: str) -> list[tuple[int, str]]:
        stream = await async_client.chat.completions.create(
            model=CLAUDE, messages=[USER], tools=[WEATHER_TOOL, TIME_TOOL], stream=True
        )
        seen = []
        async with stream:
            async for chunk in stream:
                assert chunk.id == expected_id
                for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                    if call.id:
                        seen.append((call.index, call.id))
        return seen

    task_a = asyncio.create_task(run("chatcmpl-req-A"))
    await fake_bedrock.arrived(1).expect_async()
    task_b = asyncio.create_task(run("chatcmpl-req-B"))
    await fake_bedrock.arrived(2).expect_async()
    gate_b.set()
    seen_b = await asyncio.wait_for(task_b, 10)
    gate_a.set()
    seen_a = await asyncio.wait_for(task_a, 10)
    assert seen_a == [(0, "tooluse_W1"), (1, "tooluse_T2")]
    assert seen_b == [(0, "tooluse_T2"), (1, "tooluse_W1")]


async def _stream_events(http: aiohttp.ClientSession, **extra: Any) -> list[dict[str, Any]]:
    body = {"model": CLAUDE, "messages": [USER], "stream": True, **extra}
    async with http.post("/v1/chat/completions", json=body) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        return assert_valid_stream(await response.read(), allow_error=True)


def _text(events: list[dict[str, Any]]) -> str:
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))


# ---- embeddings --------------------------------------------------------------------------------------


def test_embeddings_with_the_sdk_default_base64(client: openai.OpenAI, fake_bedrock: FakeBedrock) -> None:
    fake_bedrock.enqueue(titan_embedding([0.5, -0.25, 0.125, 1.0], tokens=2))
    result = client.embeddings.create(model=TITAN, input="hello world")  # the SDK asks for base64
    assert [d.embedding for d in result.data] == [[0.5, -0.25, 0.125, 1.0]]  # decoded by the SDK
    assert result.model == TITAN
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (2, 2)
    rec = fake_bedrock.only()
    assert rec.path == f"/model/{TITAN_ID}/invoke"
    assert fake_bedrock.only_auth().raw_path == "/model/amazon.titan-embed-text-v2%3A0/invoke"
    assert rec.json == {"inputText": "hello world"}
    assert_signed(fake_bedrock, key=SESSION_KEY_ID, region="eu-west-3", session_token=True)


async def test_embeddings_float_with_dimensions(
    async_client: openai.AsyncOpenAI, fake_bedrock: FakeBedrock
) -> None:
    result = await async_client.embeddings.create(
        model=TITAN, input=["one text"], encoding_format="float", dimensions=3
    )
    assert [d.embedding for d in result.data] == [[0.25, 0.5, 0.75]]
    assert fake_bedrock.only().json == {"inputText": "one text", "dimensions": 3}


def test_embeddings_of_several_inputs_are_400(client: openai.OpenAI, fake_bedrock: FakeBedrock) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=TITAN, input=["one", "two"])
    error = assert_error_body(caught.value.response.json(), code="unsupported_value")
    assert "one text per request" in error["message"]
    assert fake_bedrock.requests == []


# ---- legacy completions through chat -----------------------------------------------------------------


def test_legacy_completions_through_converse(client: openai.OpenAI, fake_bedrock: FakeBedrock) -> None:
    completion = client.completions.create(model=CLAUDE, prompt="Once upon", max_tokens=5)
    assert completion.object == "text_completion"
    assert completion.id == f"chatcmpl-{REQUEST_ID}"
    assert completion.choices[0].text == "Hello from the fake Bedrock upstream."
    assert completion.choices[0].finish_reason == "stop"
    assert fake_bedrock.only().json == {
        "messages": [{"role": "user", "content": [{"text": "Once upon"}]}],
        "inferenceConfig": {"maxTokens": 5},
    }


async def test_legacy_completions_stream_through_converse_stream(
    http: aiohttp.ClientSession, fake_bedrock: FakeBedrock
) -> None:
    fake_bedrock.enqueue(eventstream_reply(converse_stream(stop_reason="max_tokens")))
    body = {"model": CLAUDE, "prompt": ["Once upon"], "stream": True}
    async with http.post("/v1/completions", json=body) as response:
        assert response.status == 200
        chunks = assert_valid_stream(await response.read(), COMPLETION)
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Hello from the fake stream."
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "length"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert fake_bedrock.only().path == f"/model/{CLAUDE_ID}/converse-stream"


def test_models_list_shows_the_bedrock_aliases(bedrock_gateway: str) -> None:
    with httpx2.Client() as plain:
        listing = plain.get(f"{bedrock_gateway}/v1/models").json()
    assert {m["id"] for m in listing["data"]} == {CLAUDE, NOVA, PROFILE, KEYED, BAD_SIGNER, DROPPING, TITAN}
