"""The built-in mock: what it answers (echoes, tool and function calls with valid arguments, structured
output, n choices, streams of each), and that nothing it allocates grows with a number a client sends."""

from __future__ import annotations

import base64
import http.client
import random
import struct
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gateway import json_codec
from gateway.upstream import mock
from gateway.upstream.mock import (
    MAX_CHOICES,
    MAX_CHOICES_CHARS,
    MAX_DIMENSIONS,
    MAX_INPUTS,
    MAX_STREAM_DELTAS,
    MAX_VECTOR_VALUES,
    respond,
)
from gateway.upstream.mock_reply import JSON_PIECE
from tests.support.gateway_process import GatewayProcess
from tests.support.openai_spec import CHAT as CHAT_RESPONSE
from tests.support.openai_spec import assert_valid, assert_valid_stream

EMBEDDINGS = "mock://v1/embeddings"
CHAT = "mock://v1/chat/completions"
COMPLETIONS = "mock://v1/completions"


def _json(url: str, request: dict[str, Any]) -> tuple[int, Any]:
    reply = respond(url, request)
    return reply.status, json_codec.loads(b"".join(reply._parts))


def _sse_payloads(url: str, request: dict[str, Any]) -> list[Any]:
    reply = respond(url, request)
    assert reply.status == 200
    frames = [part.removeprefix(b"data: ").strip() for part in reply._parts]
    assert frames[-1] == b"[DONE]"
    return [json_codec.loads(frame) for frame in frames[:-1]]


# ---- what it answers -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("request_body", "count", "dimensions"),
    [
        ({"input": "hello"}, 1, 8),
        ({"input": ["a", "b", "c"], "dimensions": 3}, 3, 3),
        ({"input": "x", "dimensions": MAX_DIMENSIONS}, 1, MAX_DIMENSIONS),
        ({"input": ["x"] * MAX_INPUTS}, MAX_INPUTS, 8),
        ({"input": ["x"] * (MAX_VECTOR_VALUES // 1024), "dimensions": 1024}, MAX_VECTOR_VALUES // 1024, 1024),
        ({"input": "x", "dimensions": 16.0}, 1, 16),  # an integral number, as JSON may write it
    ],
)
def test_embeddings_within_the_bounds(request_body: dict[str, Any], count: int, dimensions: int) -> None:
    status, body = _json(EMBEDDINGS, {"model": "m", **request_body})
    assert status == 200
    assert len(body["data"]) == count
    assert {len(item["embedding"]) for item in body["data"]} == {dimensions}
    assert all(-1.0 <= v <= 1.0 for v in body["data"][0]["embedding"])


def test_embeddings_are_deterministic_and_base64_carries_the_same_floats() -> None:
    _, floats = _json(EMBEDDINGS, {"model": "m", "input": "same", "dimensions": 40})
    _, again = _json(EMBEDDINGS, {"model": "m", "input": "same", "dimensions": 40})
    _, packed = _json(
        EMBEDDINGS, {"model": "m", "input": "same", "dimensions": 40, "encoding_format": "base64"}
    )
    assert floats == again
    decoded = struct.unpack("<40f", base64.b64decode(packed["data"][0]["embedding"]))
    assert decoded == pytest.approx(floats["data"][0]["embedding"], abs=1e-6)


# A number in the request that would make the mock allocate without bound is a 400 naming the field.
@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        pytest.param({"input": "x", "dimensions": 220458534923}, "dimensions", id="issue-10"),
        pytest.param({"input": "x", "dimensions": 50_000_000}, "dimensions", id="50M"),
        pytest.param({"input": "x", "dimensions": MAX_DIMENSIONS + 1}, "dimensions", id="max+1"),
        pytest.param({"input": "x", "dimensions": 0}, "dimensions", id="zero"),
        pytest.param({"input": "x", "dimensions": 1e300}, "dimensions", id="1e300"),
        pytest.param({"input": "x", "dimensions": 2.5}, "dimensions", id="fraction"),
        pytest.param({"input": "x", "dimensions": True}, "dimensions", id="boolean"),
        pytest.param({"input": "x", "dimensions": "8"}, "dimensions", id="string"),
        pytest.param({"input": ["x"] * (MAX_INPUTS + 1)}, "input", id="inputs"),
        pytest.param(
            {"input": ["x"] * (MAX_VECTOR_VALUES // MAX_DIMENSIONS + 1), "dimensions": MAX_DIMENSIONS},
            "input",
            id="values",
        ),
    ],
)
def test_embeddings_out_of_bounds_are_400_naming_the_field(request_body: dict[str, Any], param: str) -> None:
    started = time.perf_counter()
    status, body = _json(EMBEDDINGS, {"model": "m", **request_body})
    assert time.perf_counter() - started < 0.5
    assert status == 400
    assert body["error"]["param"] == param
    assert body["error"]["type"] == "invalid_request_error"
    assert param in body["error"]["message"]


def test_chat_echo_streams_word_by_word() -> None:
    request = {"model": "m", "messages": [{"role": "user", "content": "one two  three"}], "stream": True}
    chunks = _sse_payloads(CHAT, request)
    deltas = [c["choices"][0]["delta"].get("content") for c in chunks]
    assert deltas == ["", "You", " said:", " one", " two", " ", " three", None]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_a_long_echo_is_cut_into_at_most_max_stream_deltas() -> None:
    """A prompt of millions of words is not millions of chunks (each a dict and a JSON frame)."""
    words = 3 * MAX_STREAM_DELTAS
    text = " ".join(["w"] * words)
    for url, body in (
        (CHAT, {"messages": [{"role": "user", "content": text}]}),
        (COMPLETIONS, {"prompt": text}),
    ):
        chunks = _sse_payloads(url, {"model": "m", "stream": True, **body})
        if url == CHAT:
            pieces = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
        else:
            pieces = [c["choices"][0]["text"] for c in chunks]
        assert len(pieces) == MAX_STREAM_DELTAS
        assert "".join(pieces).endswith(" You said: " + text if url == COMPLETIONS else "You said: " + text)
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("seed", range(20))
def test_word_count_is_split_without_the_list(seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(rng.choice("ab \n\t") for _ in range(rng.randint(0, 300_000)))
    assert mock.word_count(text) == len(text.split())


def test_usage_counts_words() -> None:
    status, body = _json(CHAT, {"model": "m", "messages": [{"role": "user", "content": "ping pong"}]})
    assert status == 200
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6}


# ---- chat: tools, legacy functions, structured output, n (issue 11, item 5) --------------------------
USER = {"role": "user", "content": "hello there"}
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}, "days": {"type": "integer"}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}


def _tool(name: str, parameters: Any = None) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


def _chat(**fields: Any) -> dict[str, Any]:
    status, body = _json(CHAT, {"model": "m", "messages": [USER], **fields})
    assert status == 200, body
    return body


def _streamed(**fields: Any) -> list[Any]:
    return _sse_payloads(CHAT, {"model": "m", "messages": [USER], "stream": True, **fields})


def _called(body: dict[str, Any]) -> list[str]:
    return [c["function"]["name"] for c in body["choices"][0]["message"].get("tool_calls") or []]


TOOL_CHOICES = {
    "auto: the first tool": ({}, [USER], ["weather"]),
    "none: text": ({"tool_choice": "none"}, [USER], []),
    "named": ({"tool_choice": {"type": "function", "function": {"name": "time"}}}, [USER], ["time"]),
    "allowed_tools": (
        {
            "tool_choice": {
                "type": "allowed_tools",
                "allowed_tools": {"mode": "required", "tools": [_tool("time")]},
            }
        },
        [USER],
        ["time"],
    ),
    "a custom tool chosen: text": ({"tool_choice": {"type": "custom", "custom": {"name": "x"}}}, [USER], []),
    "after a tool result: text": ({}, [USER, {"role": "tool", "tool_call_id": "c", "content": "22 C"}], []),
    "after a tool result, required: a call": (
        {"tool_choice": "required"},
        [USER, {"role": "tool", "tool_call_id": "c", "content": "22 C"}],
        ["weather"],
    ),
}


@pytest.mark.parametrize(
    ("fields", "messages", "called"), list(TOOL_CHOICES.values()), ids=list(TOOL_CHOICES)
)
def test_tool_choice(fields: dict[str, Any], messages: list[Any], called: list[str]) -> None:
    tools = [_tool("weather", WEATHER), _tool("time")]
    body = _chat(**{"tools": tools, **fields, "messages": messages})
    assert _called(body) == called
    choice = body["choices"][0]
    assert choice["finish_reason"] == ("tool_calls" if called else "stop")
    if not called:
        assert choice["message"]["content"].startswith(("You said: ", "Tool result: 22 C"))


def test_tool_arguments_are_valid_against_the_parameters() -> None:
    """Before issue 11 the arguments were always "{}": no required field, nothing a parser accepts."""
    body = _chat(tools=[_tool("weather", WEATHER)])
    arguments = json_codec.loads(body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])
    jsonschema.validate(arguments, WEATHER)
    assert set(arguments) == {"city", "unit", "days"}


@pytest.mark.parametrize("parameters", [None, {}, {"properties": {"q": {"type": "string"}}}])
def test_tool_arguments_are_an_object_whatever_the_parameters_leave_open(parameters: Any) -> None:
    body = _chat(tools=[_tool("search", parameters)])
    arguments = json_codec.loads(body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])
    assert isinstance(arguments, dict)


def test_streamed_tool_arguments_come_in_pieces_and_join_to_the_same_call() -> None:
    whole = _chat(tools=[_tool("weather", WEATHER)])["choices"][0]["message"]["tool_calls"][0]
    chunks = _streamed(tools=[_tool("weather", WEATHER)])
    calls = [call for c in chunks for call in c["choices"][0]["delta"].get("tool_calls") or []]
    assert calls[0]["id"] == whole["id"] and calls[0]["function"]["name"] == "weather"
    assert len(calls) > 2
    assert "".join(c["function"]["arguments"] for c in calls) == whole["function"]["arguments"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("function_call", "messages", "called"),
    [
        pytest.param(None, [USER], "weather", id="auto: the first"),
        pytest.param({"name": "time"}, [USER], "time", id="named"),
        pytest.param("none", [USER], None, id="none: text"),
        pytest.param(
            None, [USER, {"role": "function", "name": "weather", "content": "22 C"}], None, id="after"
        ),
    ],
)
def test_legacy_functions(function_call: Any, messages: list[Any], called: str | None) -> None:
    fields: dict[str, Any] = {"functions": [{"name": "weather", "parameters": WEATHER}, {"name": "time"}]}
    if function_call is not None:
        fields["function_call"] = function_call
    choice = _chat(**fields, messages=messages)["choices"][0]
    message = choice["message"]
    assert "tool_calls" not in message
    if called is None:
        assert choice["finish_reason"] == "stop" and "function_call" not in message
        return
    assert choice["finish_reason"] == "function_call" and message["content"] is None
    assert message["function_call"]["name"] == called
    arguments = json_codec.loads(message["function_call"]["arguments"])
    jsonschema.validate(arguments, WEATHER if called == "weather" else {"type": "object"})


def test_tools_win_over_legacy_functions() -> None:
    body = _chat(tools=[_tool("weather", WEATHER)], functions=[{"name": "time"}])
    assert _called(body) == ["weather"] and "function_call" not in body["choices"][0]["message"]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        pytest.param(
            {"tools": [_tool("a")], "tool_choice": {"type": "function", "function": {"name": "b"}}},
            "tool_choice",
        ),
        pytest.param({"functions": [{"name": "a"}], "function_call": {"name": "b"}}, "function_call"),
    ],
)
def test_a_choice_naming_no_offered_function_is_400(fields: dict[str, Any], param: str) -> None:
    status, body = _json(CHAT, {"model": "m", "messages": [USER], **fields})
    assert status == 400 and body["error"]["param"] == param
    assert "no function named 'b'" in body["error"]["message"]


def test_json_schema_content_is_a_valid_value_streamed_in_pieces() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}, "n": {"type": "integer"}}}
    response_format = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema, "strict": True}}
    content = _chat(response_format=response_format)["choices"][0]["message"]["content"]
    jsonschema.validate(json_codec.loads(content), schema)
    pieces = [c["choices"][0]["delta"].get("content") for c in _streamed(response_format=response_format)]
    assert pieces[0] == "" and pieces[-1] is None and len(pieces) > 3
    assert "".join(pieces[1:-1]) == content
    assert all(len(p) <= JSON_PIECE for p in pieces[1:-1])


@pytest.mark.parametrize(
    "response_format",
    [{"type": "json_object"}, {"type": "json_schema", "json_schema": {"name": "no_schema"}}],
    ids=["json_object", "json_schema without a schema"],
)
def test_json_mode_answers_a_json_object(response_format: dict[str, Any]) -> None:
    content = _chat(response_format=response_format)["choices"][0]["message"]["content"]
    assert json_codec.loads(content) == {"message": "You said: hello there"}


def test_n_choices_are_told_apart() -> None:
    body = _chat(n=3)
    assert [(c["index"], c["message"]["content"]) for c in body["choices"]] == [
        (0, "You said: hello there"),
        (1, "You said: hello there (2)"),
        (2, "You said: hello there (3)"),
    ]
    calls = [c["message"]["tool_calls"][0] for c in _chat(n=2, tools=[_tool("weather", WEATHER)])["choices"]]
    assert calls[0]["id"] != calls[1]["id"]
    assert calls[0]["function"]["arguments"] != calls[1]["function"]["arguments"]


def test_streamed_choices_interleave() -> None:
    chunks = _streamed(n=3, stream_options={"include_usage": True})
    indexes = [c["choices"][0]["index"] for c in chunks if c["choices"]]
    assert indexes[:6] == [0, 1, 2, 0, 1, 2]
    texts = ["", "", ""]
    for chunk in chunks[:-1]:
        choice = chunk["choices"][0]
        texts[choice["index"]] += choice["delta"].get("content") or ""
    assert texts == [c["message"]["content"] for c in _chat(n=3)["choices"]]
    finished = [c["choices"][0]["index"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert sorted(finished) == [0, 1, 2]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4 + 5 + 5


def test_completions_honour_n() -> None:
    status, body = _json(COMPLETIONS, {"model": "m", "prompt": "hi", "n": 2})
    assert status == 200
    assert [c["text"] for c in body["choices"]] == [" You said: hi", " You said: hi (2)"]
    chunks = _sse_payloads(COMPLETIONS, {"model": "m", "prompt": "hi", "n": 2, "stream": True})
    indexes = [c["choices"][0]["index"] for c in chunks]
    assert indexes[:4] == [0, 1, 0, 1] and sorted(indexes) == [0] * 4 + [1] * 5
    texts = ["", ""]
    for chunk in chunks:
        texts[chunk["choices"][0]["index"]] += chunk["choices"][0]["text"]
    assert texts == [c["text"] for c in body["choices"]]


def test_completions_stream_reports_usage_when_asked() -> None:
    request = {"model": "m", "prompt": "hi", "stream": True}
    assert all("usage" not in chunk for chunk in _sse_payloads(COMPLETIONS, request))
    chunks = _sse_payloads(COMPLETIONS, {**request, "stream_options": {"include_usage": True}})
    assert chunks[-1]["choices"] == []
    _, body = _json(COMPLETIONS, {"model": "m", "prompt": "hi"})
    assert chunks[-1]["usage"] == body["usage"]


@pytest.mark.parametrize(
    "n",
    [0, MAX_CHOICES + 1, 2.5, "2", True, -1],
    ids=["zero", "max+1", "fraction", "string", "boolean", "negative"],
)
@pytest.mark.parametrize("url", [CHAT, COMPLETIONS])
def test_n_out_of_bounds_is_400_naming_n(url: str, n: Any) -> None:
    status, body = _json(url, {"model": "m", "messages": [USER], "prompt": "x", "n": n})
    assert status == 400 and body["error"]["param"] == "n"
    assert f"1 to {MAX_CHOICES}" in body["error"]["message"]


def test_n_copies_of_a_long_prompt_are_400_naming_n() -> None:
    """16 copies of a 32 MB prompt would be half a gigabyte of answer."""
    long = "x" * (MAX_CHOICES_CHARS // 4)
    started = time.perf_counter()
    status, body = _json(CHAT, {"model": "m", "messages": [{"role": "user", "content": long}], "n": 5})
    assert time.perf_counter() - started < 0.5
    assert status == 400 and body["error"]["param"] == "n"
    assert str(MAX_CHOICES_CHARS) in body["error"]["message"]
    assert _json(CHAT, {"model": "m", "messages": [{"role": "user", "content": long}], "n": 3})[0] == 200


def test_an_unmakeable_schema_is_400_naming_the_field() -> None:
    schema = {
        "type": "object",
        "properties": {"xs": {"type": "array", "minItems": 10_000}},
        "required": ["xs"],
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    status, body = _json(CHAT, {"model": "m", "messages": [USER], "response_format": response_format})
    assert status == 400
    assert body["error"]["param"] == "response_format.json_schema.schema"
    assert "at $.xs: minItems 10000 is more than the 64 items" in body["error"]["message"]
    status, body = _json(
        CHAT,
        {
            "model": "m",
            "messages": [USER],
            "tools": [_tool("t", {}), _tool("u", schema)],
            "tool_choice": "required",
            "parallel_tool_calls": False,
        },
    )
    assert status == 200  # the first tool is called; the second's schema is not looked at


SAME_ANSWER = {
    "text": {},
    "tools": {"tools": [_tool("weather", WEATHER)]},
    "json_schema": {
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER}}
    },
    "functions": {"functions": [{"name": "weather", "parameters": WEATHER}]},
    "n": {"n": 2, "tools": [_tool("weather", WEATHER)]},
}


@pytest.mark.parametrize("fields", list(SAME_ANSWER.values()), ids=list(SAME_ANSWER))
def test_same_request_same_answer_streamed_or_not(fields: dict[str, Any]) -> None:
    first, again = _chat(**fields), _chat(**fields)
    assert {**first, "created": 0} == {**again, "created": 0}
    for index, choice in enumerate(first["choices"]):
        deltas = [c["choices"][0]["delta"] for c in _streamed(**fields) if c["choices"][0]["index"] == index]
        message = choice["message"]
        if message.get("tool_calls"):
            joined = "".join(t["function"]["arguments"] for d in deltas for t in d.get("tool_calls") or [])
            assert joined == message["tool_calls"][0]["function"]["arguments"]
        elif message.get("function_call"):
            joined = "".join(d["function_call"]["arguments"] for d in deltas if "function_call" in d)
            assert joined == message["function_call"]["arguments"]
        else:
            assert "".join(d.get("content") or "" for d in deltas) == message["content"]


@pytest.mark.parametrize("fields", list(SAME_ANSWER.values()), ids=list(SAME_ANSWER))
@pytest.mark.parametrize("stream", [False, True])
def test_every_answer_is_valid_against_the_spec(fields: dict[str, Any], stream: bool) -> None:
    reply = respond(CHAT, {"model": "m", "messages": [USER], "stream": stream, **fields})
    raw = b"".join(reply._parts)
    if stream:
        assert_valid_stream(raw)
    else:
        assert_valid(CHAT_RESPONSE, json_codec.loads(raw))


# ---- the shipped configuration's mock, in a real gateway process ------------------------------------
ADDRESS_SPACE = 1536 * 1024 * 1024  # the child's RLIMIT_AS: an unbounded vector fails, not the machine
ROUTES = """
log: {level: info, format: json}
providers:
  mock: {dialect: mock, transport: mock}
models:
  mock: [{provider: mock, model: mock-1}]
"""


def _post(port: int, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, json_codec.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json_codec.loads(response.read())
    finally:
        connection.close()


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and sets RLIMIT_AS")
@pytest.mark.parametrize("dimensions", [50_000_000, 220458534923])
def test_huge_dimensions_answer_400_fast_and_rss_stays_put(tmp_path: Path, dimensions: int) -> None:
    """Issue 10: one unauthenticated request grew the process until the OOM killer ended it. The child
    runs with an address-space cap so that, were it unbounded, it fails here and not the machine."""
    config = tmp_path / "routes.yaml"
    config.write_text(ROUTES, encoding="utf-8")
    gateway = GatewayProcess(config)
    limit = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE}, {ADDRESS_SPACE}))"
    run = "import runpy, sys; sys.argv[0] = 'gateway'; runpy.run_module('gateway', run_name='__main__')"
    gateway.args = [gateway.args[0], "-c", f"{limit}; {run}", *gateway.args[3:]]
    with gateway:
        assert _post(gateway.port, "/v1/embeddings", {"model": "mock", "input": "warm up"})[0] == 200
        before = _rss_bytes(gateway.pid)
        started = time.perf_counter()
        huge = {"model": "mock", "input": "x", "dimensions": dimensions}
        status, body = _post(gateway.port, "/v1/embeddings", huge)
        elapsed = time.perf_counter() - started
        after = _rss_bytes(gateway.pid)
        assert status == 400, body
        assert body["error"]["param"] == "dimensions"
        assert elapsed < 2.0
        assert after - before < 16 * 1024 * 1024
        assert _post(gateway.port, "/v1/embeddings", {"model": "mock", "input": "still here"})[0] == 200
