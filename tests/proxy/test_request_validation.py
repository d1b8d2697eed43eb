"""Request bodies against the gateway's schemas: what passes, and the OpenAI-style 400 for what does not."""

from __future__ import annotations

import copy
import random
import time
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gateway import json_codec
from gateway.errors import GatewayError
from gateway.proxy.request_validation import SCHEMA_FILES, RequestValidator, decode_json_body
from gateway.proxy.schema_errors import error_finder_class, error_for
from gateway.proxy.schema_predicate import NotPlainJSON, PredicateCompiler, UnsupportedSchema
from gateway.schema_files import load_schema


@pytest.fixture(scope="module")
def validator() -> RequestValidator:
    return RequestValidator()


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], **fields}


def _messages(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": list(messages)}


def _user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(parts)}


# The example request of shared/providers/openai.md.
OPENAI_MD_EXAMPLE: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture, and what's the weather in Paris?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,iVBORw0KGgo...", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_a1", "content": "18C, cloudy"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ],
    "tool_choice": "auto",
    "temperature": 0.2,
    "max_completion_tokens": 512,
    "stop": ["END"],
    "stream": False,
    "user": "u-123",
}

FUNCTION_TOOL = {"type": "function", "function": {"name": "get_weather"}}
JSON_SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "weather",
        "description": "A weather report",
        "schema": {"type": "object", "properties": {"temp": {"type": "number"}}},
        "strict": True,
    },
}

VALID: list[tuple[str, str, dict[str, Any]]] = [
    ("chat", "openai.md example", OPENAI_MD_EXAMPLE),
    ("chat", "minimal", _chat()),
    (
        "chat",
        "developer text parts",
        _messages({"role": "developer", "content": [{"type": "text", "text": "Be brief"}]}),
    ),
    ("chat", "named system message", _messages({"role": "system", "content": "x", "name": "rules"})),
    (
        "chat",
        "a part type the gateway does not model passes through (vLLM video_url)",
        _messages(_user({"type": "video_url", "video_url": {"url": "https://x/v.mp4"}})),
    ),
    (
        "chat",
        "image part without detail",
        _messages(_user({"type": "image_url", "image_url": {"url": "https://x/y.png"}})),
    ),
    (
        "chat",
        "audio part",
        _messages(_user({"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}})),
    ),
    ("chat", "file part", _messages(_user({"type": "file", "file": {"file_id": "file-abc"}}))),
    ("chat", "assistant null content", _messages({"role": "assistant", "content": None})),
    ("chat", "assistant without content", _messages({"role": "assistant", "tool_calls": []})),
    (
        "chat",
        "assistant text and refusal parts",
        _messages(
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "a"}, {"type": "refusal", "refusal": "no"}],
            }
        ),
    ),
    (
        "chat",
        "assistant refusal and audio",
        _messages({"role": "assistant", "refusal": None, "audio": {"id": "a"}}),
    ),
    (
        "chat",
        "custom tool call",
        _messages(
            {
                "role": "assistant",
                "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "x", "input": "y"}}],
            }
        ),
    ),
    (
        "chat",
        "tool text parts",
        _messages({"role": "tool", "tool_call_id": "c", "content": [{"type": "text", "text": "ok"}]}),
    ),
    ("chat", "function message", _messages({"role": "function", "name": "f", "content": None})),
    (
        "chat",
        "unknown fields everywhere",
        _messages({"role": "user", "content": "x", "cache_control": {"type": "x"}}),
    ),
    ("chat", "unknown top-level fields", _chat(top_k=40, repetition_penalty=1.1, guided_json={"a": 1})),
    ("chat", "json_schema response format", _chat(response_format=JSON_SCHEMA_FORMAT)),
    ("chat", "json_object response format", _chat(response_format={"type": "json_object"})),
    ("chat", "text response format", _chat(response_format={"type": "text"})),
    (
        "chat",
        "stream options",
        _chat(stream=True, stream_options={"include_usage": True, "include_obfuscation": False}),
    ),
    ("chat", "null stream options", _chat(stream=None, stream_options=None)),
    ("chat", "stop string", _chat(stop="\n")),
    ("chat", "stop null", _chat(stop=None)),
    ("chat", "four stops", _chat(stop=["a", "b", "c", "d"])),
    ("chat", "empty stop list", _chat(stop=[])),
    (
        "chat",
        "nullable sampling",
        _chat(temperature=None, top_p=None, n=None, max_tokens=None, max_completion_tokens=None, seed=None),
    ),
    (
        "chat",
        "sampling bounds",
        _chat(temperature=2, top_p=0, n=128, presence_penalty=-2, frequency_penalty=2.0),
    ),
    ("chat", "integral float for integer", _chat(max_tokens=256.0)),
    ("chat", "logprobs", _chat(logprobs=True, top_logprobs=20, logit_bias={"50256": -100, "11": 5})),
    ("chat", "64-bit seed", _chat(seed=-9223372036854775808)),
    (
        "chat",
        "tool choice required",
        _chat(tools=[FUNCTION_TOOL], tool_choice="required", parallel_tool_calls=False),
    ),
    (
        "chat",
        "named tool choice",
        _chat(tool_choice={"type": "function", "function": {"name": "get_weather"}}),
    ),
    (
        "chat",
        "allowed tools choice",
        _chat(
            tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [FUNCTION_TOOL]}}
        ),
    ),
    (
        "chat",
        "custom tool",
        _chat(tools=[{"type": "custom", "custom": {"name": "grep", "format": {"type": "text"}}}]),
    ),
    (
        "chat",
        "strict tool",
        _chat(tools=[{"type": "function", "function": {"name": "a-b_C9", "strict": None}}]),
    ),
    ("chat", "legacy functions", _chat(functions=[{"name": "f"}], function_call={"name": "f"})),
    ("chat", "legacy function_call mode", _chat(function_call="auto")),
    ("chat", "metadata", _chat(metadata={"team": "search", "k" * 64: "v" * 512}, store=True)),
    # Values the official spec allows, though OpenAI's servers (or another upstream) may refuse them:
    # the upstream decides (issue 12, "no stricter than the spec"; tests/proxy/test_schemas_follow_spec.py).
    (
        "chat",
        "zero token limits and top_logprobs",
        _chat(max_tokens=0, max_completion_tokens=0, top_logprobs=0),
    ),
    ("chat", "negative max_tokens", _chat(max_tokens=-1)),
    ("chat", "empty model name (routing answers it)", _chat(model="")),
    ("chat", "any logit bias", _chat(logit_bias={"50256": -101, "11": 1000})),
    (
        "chat",
        "any function name",
        _chat(tools=[{"type": "function", "function": {"name": "bad name! " * 10}}]),
    ),
    ("chat", "any legacy function name", _chat(functions=[{"name": "f" * 65}])),
    (
        "chat",
        "any response format name",
        _chat(response_format={"type": "json_schema", "json_schema": {"name": "a report"}}),
    ),
    ("chat", "large metadata", _chat(metadata={str(i) * 65: "v" * 513 for i in range(17)})),
    (
        "chat",
        "tool message with any name",
        _messages({"role": "tool", "tool_call_id": "c", "content": "x", "name": 5}),
    ),
    ("chat", "legacy function with any strict", _chat(functions=[{"name": "f", "strict": "yes"}])),
    (
        "chat",
        "newer fields",
        _chat(
            reasoning_effort="low",
            service_tier="flex",
            verbosity="high",
            prompt_cache_key="k",
            safety_identifier="u",
        ),
    ),
    ("chat", "audio output", _chat(modalities=["text", "audio"], audio={"voice": "alloy", "format": "mp3"})),
    ("chat", "custom voice", _chat(audio={"voice": {"id": "voice_1"}, "format": "wav"})),
    ("chat", "prediction", _chat(prediction={"type": "content", "content": "old text"})),
    ("completions", "string prompt", {"model": "m", "prompt": "Say hi"}),
    ("completions", "prompt list", {"model": "m", "prompt": ["a", "b"]}),
    ("completions", "empty prompt list", {"model": "m", "prompt": []}),
    ("completions", "token prompt", {"model": "m", "prompt": [1, 2, 3]}),
    ("completions", "token prompts", {"model": "m", "prompt": [[1], [2, 3]]}),
    (
        "completions",
        "all the options",
        {
            "model": "m",
            "prompt": "x",
            "max_tokens": 0,
            "logprobs": 5,
            "echo": True,
            "suffix": None,
            "best_of": 2,
            "n": 2,
            "stop": "\n",
            "stream": True,
            "stream_options": {"include_usage": True},
            "seed": 1,
            "user": "u",
            "logit_bias": {"1": 1},
            "presence_penalty": 0.5,
        },
    ),
    ("completions", "extra fields", {"model": "m", "prompt": "x", "min_p": 0.1}),
    ("completions", "null prompt", {"model": "m", "prompt": None}),
    (
        "completions",
        "any seed and logit bias",
        {"model": "m", "prompt": "x", "seed": 2**64 - 1, "logit_bias": {"1": 200}},
    ),
    ("embeddings", "empty model name", {"model": "", "input": "x"}),
    ("embeddings", "string input", {"model": "text-embedding-3-small", "input": "hello"}),
    (
        "embeddings",
        "list input",
        {"model": "e", "input": ["a", "b"], "encoding_format": "base64", "dimensions": 256},
    ),
    ("embeddings", "token input", {"model": "e", "input": [1, 2]}),
    ("embeddings", "token inputs", {"model": "e", "input": [[1, 2], [3]], "encoding_format": "float"}),
    (
        "embeddings",
        "provider fields",
        {"model": "e", "input": "x", "input_type": "search_query", "user": "u"},
    ),
]


@pytest.mark.parametrize(
    ("operation", "body"), [(op, body) for op, _, body in VALID], ids=[n for _, n, _ in VALID]
)
def test_valid_bodies_pass(validator: RequestValidator, operation: str, body: dict[str, Any]) -> None:
    validator.validate(operation, copy.deepcopy(body))


MISSING = "missing_required_parameter"
TYPE = "invalid_type"
VALUE = "invalid_value"

# (operation, body, param, code, exact message or None)
INVALID: list[tuple[str, dict[str, Any], str | None, str, str | None]] = [
    ("chat", {"model": "gpt-4o"}, "messages", MISSING, "Missing required parameter: 'messages'."),
    ("chat", {"messages": [{"role": "user", "content": "x"}]}, "model", MISSING, None),
    ("chat", {}, "model", MISSING, "Missing required parameter: 'model'."),
    ("chat", {"model": 4, "messages": [{"role": "user", "content": "x"}]}, "model", TYPE, None),
    (
        "chat",
        {"model": "m", "messages": []},
        "messages",
        VALUE,
        "Invalid value for 'messages': must contain at least 1 item, got 0.",
    ),
    (
        "chat",
        {"model": "m", "messages": "hi"},
        "messages",
        TYPE,
        "Invalid type for 'messages': expected an array, but got a string instead.",
    ),
    ("chat", _messages(5), "messages[0]", TYPE, None),  # type: ignore[arg-type]
    (
        "chat",
        _messages({"role": "bogus", "content": "x"}),
        "messages[0].role",
        VALUE,
        "Invalid value for 'messages[0].role': 'bogus' is not one of 'system', 'developer', 'user', "
        "'assistant', 'tool', 'function'.",
    ),
    ("chat", _messages({"role": 1, "content": "x"}), "messages[0].role", TYPE, None),
    ("chat", _messages({"content": "x"}), "messages[0].role", MISSING, None),
    ("chat", _messages({"role": "user"}), "messages[0].content", MISSING, None),
    (
        "chat",
        _messages({"role": "user", "content": 5}),
        "messages[0].content",
        TYPE,
        "Invalid type for 'messages[0].content': expected a string or an array, but got an integer instead.",
    ),
    ("chat", _messages({"role": "user", "content": []}), "messages[0].content", VALUE, None),
    ("chat", _messages({"role": "user", "content": "x", "name": 5}), "messages[0].name", TYPE, None),
    (
        "chat",
        _messages({"role": "system", "content": "x"}, _user({"type": 5})),
        "messages[1].content[0].type",
        TYPE,
        None,
    ),
    ("chat", _messages(_user({"text": "x"})), "messages[0].content[0].type", MISSING, None),
    ("chat", _messages(_user({"type": "text"})), "messages[0].content[0].text", MISSING, None),
    (
        "chat",
        _messages(
            _user({"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"detail": "low"}})
        ),
        "messages[0].content[1].image_url.url",
        MISSING,
        "Missing required parameter: 'messages[0].content[1].image_url.url'.",
    ),
    (
        "chat",
        _messages(_user({"type": "image_url", "image_url": {"url": "u", "detail": "ultra"}})),
        "messages[0].content[0].image_url.detail",
        VALUE,
        None,
    ),
    (
        "chat",
        _messages(_user({"type": "image_url", "image_url": "https://x"})),
        "messages[0].content[0].image_url",
        TYPE,
        None,
    ),
    (
        "chat",
        _messages(_user({"type": "input_audio", "input_audio": {"data": "x", "format": "ogg"}})),
        "messages[0].content[0].input_audio.format",
        VALUE,
        None,
    ),
    (
        "chat",
        _messages({"role": "system", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}),
        "messages[0].content[0].type",
        VALUE,
        None,
    ),
    ("chat", _messages({"role": "tool", "content": "x"}), "messages[0].tool_call_id", MISSING, None),
    ("chat", _messages({"role": "function", "content": "x"}), "messages[0].name", MISSING, None),
    ("chat", _messages({"role": "assistant", "content": 5}), "messages[0].content", TYPE, None),
    (
        "chat",
        _messages(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
                ],
            }
        ),
        "messages[0].tool_calls[0].function.arguments",
        TYPE,
        "Invalid type for 'messages[0].tool_calls[0].function.arguments': expected a string, "
        "but got an object instead.",
    ),
    (
        "chat",
        _messages({"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]}),
        "messages[0].tool_calls[0].function",
        MISSING,
        None,
    ),
    (
        "chat",
        _chat(temperature="hot"),
        "temperature",
        TYPE,
        "Invalid type for 'temperature': expected a number, but got a string instead.",
    ),
    (
        "chat",
        _chat(temperature=3),
        "temperature",
        VALUE,
        "Invalid value for 'temperature': must be at most 2, got 3.",
    ),
    ("chat", _chat(temperature=True), "temperature", TYPE, None),
    ("chat", _chat(top_p=-0.5), "top_p", VALUE, "Invalid value for 'top_p': must be at least 0, got -0.5."),
    ("chat", _chat(n=0), "n", VALUE, None),
    ("chat", _chat(n=129), "n", VALUE, None),
    ("chat", _chat(n=1.5), "n", TYPE, "Invalid type for 'n': expected an integer, but got a number instead."),
    ("chat", _chat(presence_penalty=-2.5), "presence_penalty", VALUE, None),
    ("chat", _chat(frequency_penalty="0"), "frequency_penalty", TYPE, None),
    ("chat", _chat(stream="yes"), "stream", TYPE, None),
    ("chat", _chat(stream_options={"include_usage": "yes"}), "stream_options.include_usage", TYPE, None),
    ("chat", _chat(stream_options=True), "stream_options", TYPE, None),
    (
        "chat",
        _chat(stop=["a", "b", "c", "d", "e"]),
        "stop",
        VALUE,
        "Invalid value for 'stop': must contain at most 4 items, got 5.",
    ),
    (
        "chat",
        _chat(stop=5),
        "stop",
        TYPE,
        "Invalid type for 'stop': expected a string or an array, but got an integer instead.",
    ),
    ("chat", _chat(stop=[1]), "stop[0]", TYPE, None),
    ("chat", _chat(max_tokens=1.5), "max_tokens", TYPE, None),
    ("chat", _chat(max_completion_tokens="10"), "max_completion_tokens", TYPE, None),
    ("chat", _chat(logprobs="true"), "logprobs", TYPE, None),
    ("chat", _chat(top_logprobs=21), "top_logprobs", VALUE, None),
    ("chat", _chat(logit_bias={"50256": "-1"}), "logit_bias.50256", TYPE, None),
    ("chat", _chat(logit_bias=[1]), "logit_bias", TYPE, None),
    ("chat", _chat(seed="42"), "seed", TYPE, None),
    (
        "chat",
        _chat(user=5),
        "user",
        TYPE,
        "Invalid type for 'user': expected a string, but got an integer instead.",
    ),
    ("chat", _chat(tools={"type": "function"}), "tools", TYPE, None),
    ("chat", _chat(tools=[{"type": "function"}]), "tools[0].function", MISSING, None),
    ("chat", _chat(tools=[{"function": {"name": "f"}}]), "tools[0].type", MISSING, None),
    ("chat", _chat(tools=[{"type": "retrieval"}]), "tools[0].type", VALUE, None),
    (
        "chat",
        _chat(tools=[FUNCTION_TOOL, {"type": "function", "function": {"name": 5}}]),
        "tools[1].function.name",
        TYPE,
        "Invalid type for 'tools[1].function.name': expected a string, but got an integer instead.",
    ),
    (
        "chat",
        _chat(tools=[{"type": "function", "function": {"name": "f", "strict": "yes"}}]),
        "tools[0].function.strict",
        TYPE,
        "Invalid type for 'tools[0].function.strict': expected a boolean, but got a string instead.",
    ),
    (
        "chat",
        _chat(tools=[{"type": "function", "function": {"name": "f", "parameters": "{}"}}]),
        "tools[0].function.parameters",
        TYPE,
        None,
    ),
    ("chat", _chat(tools=[{"type": "custom", "custom": {}}]), "tools[0].custom.name", MISSING, None),
    (
        "chat",
        _chat(tool_choice="sometimes"),
        "tool_choice",
        VALUE,
        "Invalid value for 'tool_choice': 'sometimes' is not one of 'none', 'auto', 'required'.",
    ),
    (
        "chat",
        _chat(tool_choice=5),
        "tool_choice",
        TYPE,
        "Invalid type for 'tool_choice': expected a string or an object, but got an integer instead.",
    ),
    ("chat", _chat(tool_choice={"type": "function"}), "tool_choice.function", MISSING, None),
    (
        "chat",
        _chat(tool_choice={"type": "function", "function": {}}),
        "tool_choice.function.name",
        MISSING,
        None,
    ),
    (
        "chat",
        _chat(tool_choice={"type": "allowed_tools", "allowed_tools": {"mode": "any", "tools": []}}),
        "tool_choice.allowed_tools.mode",
        VALUE,
        None,
    ),
    ("chat", _chat(parallel_tool_calls=None), "parallel_tool_calls", TYPE, None),
    ("chat", _chat(function_call="required"), "function_call", VALUE, None),
    ("chat", _chat(response_format="json"), "response_format", TYPE, None),
    ("chat", _chat(response_format={"type": "xml"}), "response_format.type", VALUE, None),
    ("chat", _chat(response_format={"type": "json_schema"}), "response_format.json_schema", MISSING, None),
    (
        "chat",
        _chat(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
        "response_format.json_schema.name",
        MISSING,
        None,
    ),
    (
        "chat",
        _chat(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": True}}),
        "response_format.json_schema.schema",
        TYPE,
        None,
    ),
    ("chat", _chat(metadata={"k": 1}), "metadata.k", TYPE, None),
    (
        "chat",
        _chat(reasoning_effort="extreme"),
        "reasoning_effort",
        VALUE,
        "Invalid value for 'reasoning_effort': 'extreme' is not one of 'none', 'minimal', 'low', 'medium', "
        "'high', 'xhigh', 'max', null.",
    ),
    ("chat", _chat(service_tier=1), "service_tier", VALUE, None),
    ("chat", _chat(modalities=["video"]), "modalities[0]", VALUE, None),
    ("chat", _chat(audio={"voice": "alloy"}), "audio.format", MISSING, None),
    ("chat", _chat(prediction={"type": "content"}), "prediction.content", MISSING, None),
    # Several errors: a missing field wins over a wrong value, a shallow error over a deep one.
    ("chat", {"model": "m", "temperature": 5}, "messages", MISSING, None),
    ("chat", _messages(_user({"type": "text"})) | {"top_p": 2}, "top_p", VALUE, None),
    ("completions", {"model": "m"}, "prompt", MISSING, "Missing required parameter: 'prompt'."),
    (
        "completions",
        {"model": "m", "prompt": 5},
        "prompt",
        TYPE,
        "Invalid type for 'prompt': expected a string or an array, but got an integer instead.",
    ),
    (
        "completions",
        {"model": "m", "prompt": ["a", 1]},
        "prompt[1]",
        TYPE,
        "Invalid type for 'prompt[1]': expected a string, but got an integer instead.",
    ),
    (
        "completions",
        {"model": "m", "prompt": [1, "a"]},
        "prompt[1]",
        TYPE,
        "Invalid type for 'prompt[1]': expected an integer, but got a string instead.",
    ),
    ("completions", {"model": "m", "prompt": [[1], [2, "x"]]}, "prompt[1][1]", TYPE, None),
    (
        "completions",
        {"model": "m", "prompt": [1.5]},
        "prompt[0]",
        TYPE,
        "Invalid type for 'prompt[0]': expected a string, an integer or an array, but got a number instead.",
    ),
    ("completions", {"model": "m", "prompt": [[]]}, "prompt[0]", VALUE, None),
    ("completions", {"model": "m", "prompt": "x", "logprobs": 6}, "logprobs", VALUE, None),
    ("completions", {"model": "m", "prompt": "x", "logprobs": True}, "logprobs", TYPE, None),
    ("completions", {"model": "m", "prompt": "x", "max_tokens": -1}, "max_tokens", VALUE, None),
    ("completions", {"model": "m", "prompt": "x", "best_of": 21}, "best_of", VALUE, None),
    ("completions", {"model": "m", "prompt": "x", "echo": "no"}, "echo", TYPE, None),
    ("completions", {"model": "m", "prompt": "x", "suffix": 1}, "suffix", TYPE, None),
    ("embeddings", {"model": "e"}, "input", MISSING, None),
    ("embeddings", {"input": "x"}, "model", MISSING, None),
    (
        "embeddings",
        {"model": "e", "input": []},
        "input",
        VALUE,
        "Invalid value for 'input': must contain at least 1 item, got 0.",
    ),
    ("embeddings", {"model": "e", "input": 5}, "input", TYPE, None),
    ("embeddings", {"model": "e", "input": [[]]}, "input[0]", VALUE, None),
    ("embeddings", {"model": "e", "input": ["a", None]}, "input[1]", TYPE, None),
    (
        "embeddings",
        {"model": "e", "input": "x", "encoding_format": "int8"},
        "encoding_format",
        VALUE,
        "Invalid value for 'encoding_format': 'int8' is not one of 'float', 'base64'.",
    ),
    ("embeddings", {"model": "e", "input": "x", "dimensions": 0}, "dimensions", VALUE, None),
    ("embeddings", {"model": "e", "input": "x", "dimensions": "256"}, "dimensions", TYPE, None),
]


@pytest.mark.parametrize(
    ("operation", "body", "param", "code", "message"),
    INVALID,
    ids=[f"{case[0]}:{case[2]}:{case[3]}:{i}" for i, case in enumerate(INVALID)],
)
def test_invalid_bodies_get_an_openai_style_400(
    validator: RequestValidator,
    operation: str,
    body: dict[str, Any],
    param: str | None,
    code: str,
    message: str | None,
) -> None:
    with pytest.raises(GatewayError) as caught:
        validator.validate(operation, body)
    error = caught.value
    assert (error.status, error.type, error.param, error.code) == (400, "invalid_request_error", param, code)
    if message is not None:
        assert error.message == message


def _object(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {name: schema}}


# Keywords our request schemas no longer use (issue 12 loosened them to the spec's) keep their wording,
# for a schema that uses them again: (schema, body, param, message)
WORDING: list[tuple[dict[str, Any], dict[str, Any], str, str]] = [
    (
        _object("name", {"pattern": "^[a-z]+$"}),
        {"name": "A!"},
        "name",
        "Invalid value for 'name': 'A!' does not match the pattern '^[a-z]+$'.",
    ),
    (
        _object("m", {"propertyNames": {"maxLength": 3}}),
        {"m": {"abcd": "v"}},
        "m",
        "Invalid key 'abcd' in 'm': must be at most 3 characters long, got 4.",
    ),
    (
        _object("m", {"maxProperties": 1}),
        {"m": {"a": 1, "b": 2}},
        "m",
        "Invalid value for 'm': must have at most 1 key, got 2.",
    ),
    (
        _object("m", {"additionalProperties": {"maxLength": 2}}),
        {"m": {"k": "abc"}},
        "m.k",
        "Invalid value for 'm.k': must be at most 2 characters long, got 3.",
    ),
]


@pytest.mark.parametrize(
    ("schema", "body", "param", "message"), WORDING, ids=[w[2] + ":" + w[3][:20] for w in WORDING]
)
def test_other_keywords_are_worded_too(
    schema: dict[str, Any], body: dict[str, Any], param: str, message: str
) -> None:
    error = error_for(error_finder_class({})(schema), body)
    assert error is not None
    assert (error.status, error.param, error.code, error.message) == (400, param, "invalid_value", message)


def test_a_non_object_body_is_a_type_error(validator: RequestValidator) -> None:
    with pytest.raises(GatewayError) as caught:
        validator.validate("chat", [1, 2])  # type: ignore[arg-type]
    assert caught.value.param is None
    assert caught.value.message == (
        "Invalid type for the request body: expected an object, but got an array instead."
    )


def test_unknown_operation_is_a_key_error(validator: RequestValidator) -> None:
    with pytest.raises(KeyError):
        validator.validate("images", {"model": "m"})


def test_a_long_conversation_points_at_its_bad_message(validator: RequestValidator) -> None:
    turns = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}] * 500
    with pytest.raises(GatewayError) as caught:
        validator.validate("chat", _messages(*turns, {"role": "user", "content": [{"type": "text"}]}))
    assert caught.value.param == "messages[1000].content[0].text"


def test_many_bad_items_cost_one_error(validator: RequestValidator) -> None:
    """Only the first bad item of an array is examined (plain jsonschema takes seconds here)."""
    body = {"model": "e", "input": [*range(50_000), "x", *(["y"] * 50_000)]}
    started = time.perf_counter()
    with pytest.raises(GatewayError) as caught:
        validator.validate("embeddings", body)
    assert time.perf_counter() - started < 1.0  # about 30 ms; generous for slow CI machines
    assert (
        caught.value.message
        == "Invalid type for 'input[50000]': expected an integer, but got a string instead."
    )


def test_the_schemas_are_checked_and_compiled_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every app builds a RequestValidator (create_app, so each test and each worker); checking and
    compiling the schemas is ~50 ms of it, done by the first one only. Later ones answer the same."""
    real_check = Draft202012Validator.check_schema
    checked: list[Any] = []

    def counting_check(schema: Any, *args: Any, **kwargs: Any) -> None:
        checked.append(schema)
        real_check(schema, *args, **kwargs)

    RequestValidator()  # the process's first one, if no test built one before
    monkeypatch.setattr(Draft202012Validator, "check_schema", staticmethod(counting_check))
    monkeypatch.setattr(PredicateCompiler, "compile", lambda *_: pytest.fail("compiled again"))
    later = RequestValidator()
    assert checked == []
    later.validate("chat", _chat())
    with pytest.raises(GatewayError) as caught:
        later.validate("chat", _chat(temperature="hot"))
    assert caught.value.param == "temperature"


# --- decode_json_body ----------------------------------------------------------------------------------


def test_decode_returns_the_object() -> None:
    assert decode_json_body(b'{"model": "m", "n": 1}') == {"model": "m", "n": 1}


@pytest.mark.parametrize(
    ("raw", "code", "start"),
    [
        (b"", None, "We could not parse the JSON body of your request: the body is empty."),
        (b" \r\n\t", None, "We could not parse the JSON body of your request: the body is empty."),
        (b'{"model": ', None, "We could not parse the JSON body of your request. (HINT:"),
        (b"{'model': 'm'}", None, "We could not parse the JSON body of your request. (HINT:"),
        (b'{"a": 1} x', None, "We could not parse the JSON body of your request. (HINT:"),
        (b'{"a": NaN}', None, "We could not parse the JSON body of your request. (HINT:"),
        (b'"\xff"', None, "We could not parse the JSON body of your request. (HINT:"),
        (b"[" * 2000 + b"]" * 2000, None, "We could not parse the JSON body of your request. (HINT:"),
        (
            b"[]",
            "invalid_type",
            "Invalid type for the request body: expected a JSON object, but got an array",
        ),
        (b"null", "invalid_type", "Invalid type for the request body: expected a JSON object, but got null"),
        (
            b'"x"',
            "invalid_type",
            "Invalid type for the request body: expected a JSON object, but got a string",
        ),
        (
            b"12",
            "invalid_type",
            "Invalid type for the request body: expected a JSON object, but got an integer",
        ),
    ],
)
def test_decode_rejects_what_is_not_a_json_object(raw: bytes, code: str | None, start: str) -> None:
    with pytest.raises(GatewayError) as caught:
        decode_json_body(raw)
    error = caught.value
    assert (error.status, error.type, error.param, error.code) == (400, "invalid_request_error", None, code)
    assert error.message.startswith(start)


def test_deeply_nested_values_give_a_400(validator: RequestValidator) -> None:
    deep = b"[" * 1000 + b"]" * 1000
    body = json_codec.loads(
        b'{"model": ' + deep + b', "messages": [{"role": "user", "content": ' + deep + b"}]}"
    )
    with pytest.raises(GatewayError) as caught:
        validator.validate("chat", body)
    assert caught.value.status == 400


def _nested(depth: int, objects: bool = False) -> bytes:
    """A chat body whose deepest value sits `depth` levels down (the body itself is level 1)."""
    inner = depth - 4  # body { tools [ {function: { parameters: ... } } ] }
    nest = (b'{"a":' * inner + b"1" + b"}" * inner) if objects else (b"[" * inner + b"1" + b"]" * inner)
    return (
        b'{"model":"m","messages":[{"role":"user","content":"x"}],'
        b'"tools":[{"type":"function","function":{"name":"f","parameters":' + nest + b"}}]}"
    )


# Bodies orjson reads (up to 1024 levels) but cannot write again past 254: a 400 naming the limit before
# anything else touches them. The limit counts levels of arrays and objects, the body being level 1.
@pytest.mark.parametrize(
    ("raw", "max_depth", "too_deep"),
    [
        pytest.param(_nested(100), 100, False, id="100-of-100"),
        pytest.param(_nested(101), 100, True, id="101-of-100"),
        pytest.param(_nested(101, objects=True), 100, True, id="objects-101-of-100"),
        pytest.param(_nested(100, objects=True), 100, False, id="objects-100-of-100"),
        pytest.param(_nested(255), 100, True, id="255-orjson-cannot-write"),
        pytest.param(_nested(1024), 100, True, id="1024-orjson-reads"),
        pytest.param(_nested(150), 200, False, id="150-of-200"),
        pytest.param(_nested(9), 8, True, id="9-of-8"),
        # more brackets than the limit, but inside strings or side by side: not deep
        pytest.param(b'{"model":"m","x":"' + b"[{" * 300 + b'"}', 100, False, id="brackets-in-a-string"),
        pytest.param(b'{"model":"m","x":[' + b"[]," * 300 + b"[]]}", 100, False, id="wide"),
    ],
)
def test_nesting_deeper_than_the_limit_is_400(raw: bytes, max_depth: int, too_deep: bool) -> None:
    if not too_deep:
        assert decode_json_body(raw, max_depth)["model"] == "m"
        return
    with pytest.raises(GatewayError) as caught:
        decode_json_body(raw, max_depth)
    error = caught.value
    assert (error.status, error.type, error.param, error.code) == (
        400,
        "invalid_request_error",
        None,
        "json_too_deep",
    )
    assert f"at most {max_depth} levels" in error.message
    assert "limits.max_json_depth" in error.message


def test_the_default_depth_limit_is_100() -> None:
    assert decode_json_body(_nested(100))["model"] == "m"
    with pytest.raises(GatewayError):
        decode_json_body(_nested(101))


# --- Fuzzing: any JSON gives a 400 or passes, and the fast path agrees with jsonschema -------------------

_WORDS = [
    "model", "messages", "role", "content", "type", "text", "image_url", "url", "tool_calls", "function",
    "name", "arguments", "tools", "tool_choice", "user", "assistant", "system", "tool", "developer",
    "json_schema", "response_format", "prompt", "input", "stop", "metadata", "custom", "allowed_tools",
    "refusal", "file", "input_audio", "format", "detail", "strict", "parameters", "temperature", "",
    "é\u2028", "x" * 70,
]  # fmt: skip
_SCALARS: list[Any] = [
    None, True, False, 0, 1, -1, 2, 3, 2.0, 0.5, -2.5, 1e308, -0.0, 128, 2**63 - 1, -(2**63), 2**64 - 1,
]  # fmt: skip


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.45:
        return rng.choice(_SCALARS) if rng.random() < 0.5 else rng.choice(_WORDS)
    if roll < 0.7:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(_WORDS): _random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _mutate(rng: random.Random, body: Any) -> Any:
    """Replace, delete or add one thing somewhere in a (deep) copy of body."""
    body = copy.deepcopy(body)
    node, path = body, []
    while isinstance(node, dict | list) and node and rng.random() < 0.75:
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        path.append((node, key))
        node = node[key]
    if not path:
        return _random_value(rng) if rng.random() < 0.2 else body | {rng.choice(_WORDS): _random_value(rng)}
    parent, key = path[-1]
    action = rng.random()
    if action < 0.2 and isinstance(parent, dict):
        del parent[key]
    elif action < 0.35 and isinstance(parent, dict):
        parent[rng.choice(_WORDS)] = _random_value(rng)
    elif action < 0.5 and isinstance(parent[key], str):
        parent[key] = rng.choice(_WORDS)
    else:
        parent[key] = _random_value(rng)
    return body


_SEEDS: dict[str, list[dict[str, Any]]] = {
    "chat": [body for op, _, body in VALID if op == "chat"],
    "completions": [body for op, _, body in VALID if op == "completions"],
    "embeddings": [body for op, _, body in VALID if op == "embeddings"],
    "anthropic.messages": [
        {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]},
        {
            "model": "m",
            "max_tokens": 1024,
            "stream": True,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "w", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "18C"}]},
            ],
            "tools": [{"name": "w", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "auto"},
            "thinking": {"type": "enabled", "budget_tokens": 2048},
        },
    ],
}
_SEEDS["openai-responses.responses"] = [
    {"model": "gpt-x", "input": "Hello"},
    {
        "model": "gpt-x",
        "instructions": "Be brief.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
        "tools": [
            {"type": "function", "name": "f", "parameters": {"type": "object"}},
            {"type": "web_search"},
        ],
        "stream": True,
        "max_output_tokens": 64,
        "temperature": 0.5,
        "text": {"format": {"type": "text"}},
        "reasoning": {"effort": "low"},
    },
]
_SEEDS["anthropic.count_tokens"] = [
    {key: value for key, value in body.items() if key != "max_tokens"}
    for body in _SEEDS["anthropic.messages"]
]


def _error_of(validator: RequestValidator, operation: str, body: Any) -> GatewayError | None:
    try:
        validator.validate(operation, body)
    except GatewayError as error:
        return error
    return None


@pytest.mark.parametrize("operation", sorted(SCHEMA_FILES))
def test_fuzzed_bodies_pass_or_get_a_400(validator: RequestValidator, operation: str) -> None:
    rng = random.Random(f"fuzz-{operation}")
    reference = Draft202012Validator(load_schema(SCHEMA_FILES[operation]))
    outcomes = {True: 0, False: 0}
    for _ in range(600):
        body = _mutate(rng, rng.choice(_SEEDS[operation]))
        for _ in range(rng.randrange(3)):
            body = _mutate(rng, body) if isinstance(body, dict) else body
        error = _error_of(validator, operation, body)  # anything but a GatewayError fails the test
        if error is not None:
            assert (error.status, error.type) == (400, "invalid_request_error")
            assert error.param is None or isinstance(error.param, str)
            assert error.message
            assert error.code in {"missing_required_parameter", "invalid_type", "invalid_value"}
        assert (error is None) == reference.is_valid(body), body
        outcomes[error is None] += 1
    assert min(outcomes.values()) > 50  # the fuzzer exercised both sides


@pytest.mark.parametrize("operation", sorted(SCHEMA_FILES))
def test_compiled_predicate_agrees_with_jsonschema(operation: str) -> None:
    schema = load_schema(SCHEMA_FILES[operation])
    predicate = PredicateCompiler(schema).compile(schema)  # raises if a keyword is not supported
    reference = Draft202012Validator(schema)
    rng = random.Random(f"agree-{operation}")
    for _ in range(1500):
        body = _mutate(rng, rng.choice(_SEEDS[operation]))
        assert predicate(body) == reference.is_valid(body), body


def test_compiled_predicate_follows_recursive_refs() -> None:
    schema = {
        "$defs": {
            "node": {"type": "object", "required": ["v"], "properties": {"next": {"$ref": "#/$defs/node"}}}
        },
        "$ref": "#/$defs/node",
    }
    predicate = PredicateCompiler(schema).compile(schema)
    assert predicate({"v": 1, "next": {"v": 2, "next": {"v": 3}}})
    assert not predicate({"v": 1, "next": {"v": 2, "next": {}}})


INTEGER: dict[str, Any] = {"type": "integer"}
_TAGGED_BRANCHES = [
    {"if": {"required": ["role"], "properties": {"role": {"enum": ["a", "b"]}}}, "then": {"required": ["x"]}},
    {
        "if": {"required": ["role"], "properties": {"role": {"const": "b"}}},
        "then": {"properties": {"x": INTEGER}},
    },
    {"if": {"required": ["role"], "properties": {"role": {"const": "c"}}}, "then": {"minLength": 2}},
]
TAGGED_UNIONS: dict[str, dict[str, Any]] = {
    "in allOf": {"allOf": _TAGGED_BRANCHES},
    "one pair": {"type": "object", **_TAGGED_BRANCHES[0]},
    "with an else (not a tagged union)": {**_TAGGED_BRANCHES[0], "else": {"required": ["y"]}},
    "two tags": {
        "allOf": [
            *_TAGGED_BRANCHES,
            {"if": {"required": ["t"], "properties": {"t": {"const": "a"}}}, "then": False},
        ]
    },
}
TAGGED_VALUES: list[Any] = [
    {"role": "a", "x": "s"}, {"role": "a"}, {"role": "b", "x": 1}, {"role": "b", "x": "s"}, {"role": "b"},
    {"role": "c"}, {"role": "d"}, {}, {"y": 1}, {"role": 5}, {"role": None}, {"role": ["a"]}, {"role": {}},
    {"t": "a"}, {"t": "a", "role": "a", "x": 1}, "s", "ss", 1, None, [],
]  # fmt: skip


@pytest.mark.parametrize("schema", TAGGED_UNIONS.values(), ids=TAGGED_UNIONS)
def test_compiled_tagged_unions_agree_with_jsonschema(schema: dict[str, Any]) -> None:
    """A tagged union's if/then pairs are one lookup of the tag (schema_predicate._tag_dispatch): the
    same answers as each `if` in turn, for objects with and without the tag, and for other values."""
    predicate = PredicateCompiler(schema).compile(schema)
    reference = Draft202012Validator(schema)
    assert [predicate(value) for value in TAGGED_VALUES] == [reference.is_valid(v) for v in TAGGED_VALUES]


def test_a_tag_that_is_not_json_is_left_to_jsonschema() -> None:
    schema = TAGGED_UNIONS["in allOf"]
    with pytest.raises(NotPlainJSON):
        PredicateCompiler(schema).compile(schema)({"role": ("a",)})


def test_compiled_predicate_refuses_keywords_it_does_not_know() -> None:
    with pytest.raises(UnsupportedSchema):
        PredicateCompiler({"multipleOf": 2}).compile({"multipleOf": 2})
