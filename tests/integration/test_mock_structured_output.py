"""The official openai SDK's structured-output helpers against the gateway serving the built-in mock, as
`make run` does (issue 11, item 5): `.parse()` with a pydantic model (sync, async, streamed),
`pydantic_function_tool` arguments, JSON mode, `n` choices, legacy `functions`, and the same answer to
the same request. Every body the SDK gets is checked against the OpenAI spec (sdk_harness)."""

from __future__ import annotations

import datetime
import enum
import json
from collections.abc import Iterator
from typing import Any, Literal

import aiohttp
import jsonschema
import openai
import pydantic
import pytest

from tests.support.openai_spec import CHAT, assert_error_body, assert_valid, assert_valid_stream
from tests.support.sdk_harness import running_gateway, sdk_fixtures

MODEL = "mock"
USER = {"role": "user", "content": "Plan a trip to Lisbon"}


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


class Address(pydantic.BaseModel):
    street: str
    city: str
    postcode: str | None = None


class Step(pydantic.BaseModel):
    title: str
    priority: Priority
    minutes: int = pydantic.Field(ge=5, le=240)
    done: bool


class Category(pydantic.BaseModel):
    """Recursive: a category holds categories."""

    name: str
    children: list[Category]


class Plan(pydantic.BaseModel):
    traveller: str
    kind: Literal["city", "beach", "mountain"]
    starts_at: datetime.datetime
    budget: float = pydantic.Field(gt=0)
    home: Address
    steps: list[Step]
    tags: list[str]
    note: str | None
    category: Category


class GetWeather(pydantic.BaseModel):
    city: str
    unit: Literal["celsius", "fahrenheit"]
    days: int = pydantic.Field(ge=1, le=7)


def _tool(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit"],
}


@pytest.fixture(scope="module")
def mock_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = {
        "log": {"level": "warning", "format": "json"},
        "providers": {"mock": {"dialect": "mock", "transport": "mock"}},
        "models": {MODEL: [{"provider": "mock", "model": "mock-1"}]},
    }
    with running_gateway(tmp_path_factory.mktemp("mock") / "routes.yaml", config) as url:
        yield url


client, async_client, http = sdk_fixtures("mock_gateway")


def _check_plan(plan: Plan | None) -> Plan:
    assert isinstance(plan, Plan)
    jsonschema.validate(plan.model_dump(mode="json"), Plan.model_json_schema())
    assert plan.steps and all(isinstance(step.priority, Priority) for step in plan.steps)
    assert plan.traveller.startswith("You said: Plan a trip")
    return plan


# ---- .parse() with a pydantic model ---------------------------------------------------------------
def test_parse_returns_the_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(model=MODEL, messages=[USER], response_format=Plan)
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    plan = _check_plan(choice.message.parsed)
    assert json.loads(choice.message.content or "") == plan.model_dump(mode="json")


async def test_parse_async(async_client: openai.AsyncOpenAI) -> None:
    completion = await async_client.chat.completions.parse(model=MODEL, messages=[USER], response_format=Plan)
    _check_plan(completion.choices[0].message.parsed)


def test_streamed_parse(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(model=MODEL, messages=[USER], response_format=Plan) as stream:
        events = list(stream)
        final = stream.get_final_completion()
    deltas = [e for e in events if e.type == "content.delta"]
    assert len(deltas) > 3, "the JSON text is streamed in pieces"
    assert any(e.parsed for e in deltas[1:-1]), "partial JSON is parsed as it arrives"
    plan = _check_plan(final.choices[0].message.parsed)
    assert next(e for e in events if e.type == "content.done").parsed == plan


def test_parse_is_deterministic(client: openai.OpenAI) -> None:
    first = client.chat.completions.parse(model=MODEL, messages=[USER], response_format=Plan)
    again = client.chat.completions.parse(model=MODEL, messages=[USER], response_format=Plan)
    other = client.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "Something else"}], response_format=Plan
    )
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.choices[0].message.content != other.choices[0].message.content


async def test_same_request_same_body(http: aiohttp.ClientSession) -> None:
    body = {"model": MODEL, "messages": [USER], "n": 2, "tools": [_tool("get_weather", WEATHER_PARAMETERS)]}
    answers = []
    for _ in range(2):
        async with http.post("/v1/chat/completions", json=body) as response:
            answers.append({**await response.json(), "created": 0})
    assert answers[0] == answers[1]


# ---- tools and legacy functions -------------------------------------------------------------------
def test_pydantic_function_tool_arguments_parse(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model=MODEL, messages=[USER], tools=[openai.pydantic_function_tool(GetWeather)]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ["GetWeather"]
    arguments = calls[0].function.parsed_arguments
    assert isinstance(arguments, GetWeather)
    assert 1 <= arguments.days <= 7


def test_streamed_tool_arguments_parse(client: openai.OpenAI) -> None:
    tools = [openai.pydantic_function_tool(GetWeather)]
    with client.chat.completions.stream(model=MODEL, messages=[USER], tools=tools) as stream:
        events = list(stream)
        final = stream.get_final_completion()
    assert len([e for e in events if e.type == "tool_calls.function.arguments.delta"]) > 1
    calls = final.choices[0].message.tool_calls or []
    assert isinstance(calls[0].function.parsed_arguments, GetWeather)


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        pytest.param("auto", "get_weather", id="auto: the first tool"),
        pytest.param("required", "get_weather", id="required"),
        pytest.param({"type": "function", "function": {"name": "get_time"}}, "get_time", id="named"),
        pytest.param("none", None, id="none: text"),
    ],
)
def test_tool_choice(client: openai.OpenAI, tool_choice: Any, expected: str | None) -> None:
    tools = [_tool("get_weather", WEATHER_PARAMETERS), _tool("get_time", {"type": "object"})]
    completion = client.chat.completions.create(
        model=MODEL, messages=[USER], tools=tools, tool_choice=tool_choice, parallel_tool_calls=False
    )
    message = completion.choices[0].message
    if expected is None:
        assert message.content == "You said: Plan a trip to Lisbon" and not message.tool_calls
        return
    calls = message.tool_calls or []
    assert [c.function.name for c in calls] == [expected]
    arguments = json.loads(calls[0].function.arguments)
    jsonschema.validate(arguments, WEATHER_PARAMETERS if expected == "get_weather" else {"type": "object"})


def test_after_a_tool_result_the_answer_is_the_structured_output(client: openai.OpenAI) -> None:
    """The agent loop: call the tool, get its result, answer in the output type."""
    tools = [openai.pydantic_function_tool(GetWeather)]
    first = client.chat.completions.parse(model=MODEL, messages=[USER], tools=tools, response_format=Plan)
    call = (first.choices[0].message.tool_calls or [])[0]
    messages: list[Any] = [
        USER,
        first.choices[0].message.model_dump(exclude_none=True, exclude={"parsed"}),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 C"},
    ]
    final = client.chat.completions.parse(model=MODEL, messages=messages, tools=tools, response_format=Plan)
    plan = final.choices[0].message.parsed
    assert isinstance(plan, Plan) and plan.traveller.startswith("Tool result: sunny")


@pytest.mark.parametrize("stream", [False, True])
async def test_legacy_functions_answer_a_function_call(http: aiohttp.ClientSession, stream: bool) -> None:
    body = {
        "model": MODEL,
        "messages": [USER],
        "functions": [{"name": "get_weather", "parameters": WEATHER_PARAMETERS}],
        "stream": stream,
    }
    async with http.post("/v1/chat/completions", json=body) as response:
        assert response.status == 200
        if stream:
            chunks = assert_valid_stream(await response.read())
            deltas = [c["choices"][0]["delta"].get("function_call") for c in chunks]
            calls = [d for d in deltas if d]
            name = calls[0]["name"]
            arguments = "".join(d["arguments"] for d in calls)
            finish = chunks[-1]["choices"][0]["finish_reason"]
        else:
            choice = assert_valid(CHAT, await response.json())["choices"][0]
            assert choice["message"]["content"] is None and "tool_calls" not in choice["message"]
            name, arguments = (
                choice["message"]["function_call"]["name"],
                choice["message"]["function_call"]["arguments"],
            )
            finish = choice["finish_reason"]
    assert name == "get_weather" and finish == "function_call"
    jsonschema.validate(json.loads(arguments), WEATHER_PARAMETERS)


def test_legacy_function_call_none_is_text(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[USER],
        functions=[{"name": "get_weather", "parameters": WEATHER_PARAMETERS}],
        function_call="none",
    )
    assert completion.choices[0].message.content == "You said: Plan a trip to Lisbon"
    assert completion.choices[0].message.function_call is None


# ---- JSON mode and n --------------------------------------------------------------------------------
def test_json_object_is_a_json_object(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=[USER], response_format={"type": "json_object"}
    )
    assert json.loads(completion.choices[0].message.content or "") == {
        "message": "You said: Plan a trip to Lisbon"
    }


def test_n_choices(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(model=MODEL, messages=[USER], response_format=Plan, n=3)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    plans = [_check_plan(c.message.parsed) for c in completion.choices]
    assert len({p.model_dump_json() for p in plans}) == 3
    text = client.chat.completions.create(model=MODEL, messages=[USER], n=3)
    assert [c.message.content for c in text.choices] == [
        "You said: Plan a trip to Lisbon",
        "You said: Plan a trip to Lisbon (2)",
        "You said: Plan a trip to Lisbon (3)",
    ]


def test_streamed_n_choices_interleave(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model=MODEL, messages=[USER], n=3, stream=True)
    indexes = [c.choices[0].index for c in stream if c.choices]
    assert indexes[:6] == [0, 1, 2, 0, 1, 2]
    with client.chat.completions.stream(model=MODEL, messages=[USER], response_format=Plan, n=2) as parsed:
        final = parsed.get_final_completion()
    assert [_check_plan(c.message.parsed).traveller for c in final.choices] == [
        "You said: Plan a trip to Lisbon",
        "You said: Plan a trip to Lisbon (2)",
    ]


# ---- what the mock refuses ------------------------------------------------------------------------
BIG_ARRAY = {"type": "object", "properties": {"xs": {"type": "array", "minItems": 1000}}, "required": ["xs"]}
ENDLESS = {"type": "object", "properties": {"next": {"$ref": "#"}}, "required": ["next"]}


def _json_schema(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


@pytest.mark.parametrize(
    ("extra", "param", "words"),
    [
        pytest.param({"n": 17}, "n", "1 to 16", id="n"),
        pytest.param(
            {"response_format": _json_schema("big", BIG_ARRAY)},
            "response_format.json_schema.schema",
            "at $.xs: minItems 1000",
            id="minItems",
        ),
        pytest.param(
            {"tools": [_tool("loop", ENDLESS)]},
            "tools[0].function.parameters",
            "nests more than 32 levels",
            id="recursive required",
        ),
        pytest.param(
            {"tools": [_tool("a", {})], "tool_choice": {"type": "function", "function": {"name": "b"}}},
            "tool_choice",
            "no function named 'b'",
            id="unknown tool",
        ),
    ],
)
async def test_refusals_are_400_naming_the_field(
    http: aiohttp.ClientSession, extra: dict[str, Any], param: str, words: str
) -> None:
    async with http.post(
        "/v1/chat/completions", json={"model": MODEL, "messages": [USER], **extra}
    ) as response:
        assert response.status == 400
        error = assert_error_body(await response.json(), type_="invalid_request_error")
    assert error["param"] == param
    assert words in error["message"]
