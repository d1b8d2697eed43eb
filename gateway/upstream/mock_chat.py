"""The built-in mock's chat completions: every feature a client library leans on, answered
deterministically from the request, so `make run` can demo them without a key.

What it answers, in this order:
- a tool call when `tools` are offered: the first function tool, or the one `tool_choice` names
  (`allowed_tools` restricts the choice); not with `tool_choice: "none"`, and not right after a tool
  result unless the choice is "required" or a named tool. Its arguments are a value valid against the
  tool's `parameters` (schema_instance): required fields present, types right, enums respected.
- a legacy `function_call` when `functions` are offered (and no tools), by the same rules with
  `function_call` ("none", "auto", {"name": ...}); finish_reason "function_call".
- otherwise content: with `response_format` json_schema, the JSON text of a value valid against its
  schema; with json_object, `{"message": "You said: ..."}`; else the text `You said: <last user text>`
  (`Tool result: <text>` after a tool result).
Each of `n` choices (1 to MAX_CHOICES) is made the same way with its own seed: the second one's text
ends with " (2)", its values are drawn differently. A stream sends text word by word, JSON text and
arguments in pieces of JSON_PIECE characters, the choices' chunks interleaved.

A schema the mock cannot satisfy within schema_instance's caps (deep, huge or self-contradictory) is a
400 naming the request field, as an upstream would refuse it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from gateway import json_codec
from gateway.framing.sse import DONE_FRAME, encode_data
from gateway.upstream.mock_reply import (
    JSON_HEADERS,
    SSE_HEADERS,
    MockRejection,
    MockReply,
    choice_count,
    choice_suffix,
    digest,
    json_pieces,
    stream_deltas,
    text_of,
    usage,
)
from gateway.upstream.schema_instance import schema_instance
from gateway.upstream.schema_keywords import SchemaUnmet


@dataclass(frozen=True, slots=True)
class _Plan:
    """What every choice of this answer is: `kind` text, json, tool or function; for json, tool and
    function, the schema of the value (None: any object) and the request field it came from."""

    kind: str
    schema: Any = None
    param: str = ""
    name: str = ""


@dataclass(slots=True)
class _Choice:
    content: str | None
    tool_call: dict[str, Any] | None = None
    function_call: dict[str, str] | None = None
    json: bool = False  # content is JSON text: streamed in pieces, not word by word

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_call else "function_call" if self.function_call else "stop"

    @property
    def text(self) -> str:
        call = self.tool_call["function"] if self.tool_call else self.function_call
        return str(call["arguments"]) if call else self.content or ""


def chat(request: dict[str, Any]) -> MockReply:
    raw_messages = request.get("messages")
    messages = raw_messages if isinstance(raw_messages, list) else []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    after_result = last.get("role") in ("tool", "function")
    text = ("Tool result: " if after_result else "You said: ") + text_of(last.get("content"))
    n = choice_count(request, len(text))
    plan = _plan(request, after_result)
    seed = digest(messages)
    choices = [_choice(plan, text + choice_suffix(i), seed, i) for i in range(n)]
    prompt = " ".join(text_of(m.get("content")) for m in messages if isinstance(m, dict))
    base = {"id": "chatcmpl-mock-" + seed, "created": int(time.time()), "model": request.get("model")}
    counted = usage(prompt, " ".join(c.text for c in choices))
    if request.get("stream"):
        return MockReply(200, SSE_HEADERS, _stream(base, choices, counted, request))
    body = {
        **base,
        "object": "chat.completion",
        "choices": [
            {"index": i, "message": _message(c), "logprobs": None, "finish_reason": c.finish_reason}
            for i, c in enumerate(choices)
        ],
        "usage": counted,
    }
    return MockReply(200, JSON_HEADERS, [json_codec.dumps(body)])


# ---- what to answer ---------------------------------------------------------------------------------
_PLANNING = {"tools", "functions", "response_format"}
_TEXT = _Plan("text")


def _plan(request: dict[str, Any], after_result: bool) -> _Plan:
    if not (request.keys() & _PLANNING):  # the plain chat of `make run`: nothing to decide
        return _TEXT
    tools = [
        (i, t["function"])
        for i, t in enumerate(_list(request.get("tools")))
        if isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("function"), dict)
    ]
    if tools:
        picked = _picked_tool(tools, request.get("tool_choice"), after_result)
        if picked is not None:
            index, function = picked
            param = f"tools[{index}].function.parameters"
            return _Plan("tool", function.get("parameters"), param, str(function.get("name", "")))
    elif request.get("functions"):
        functions = [(i, f) for i, f in enumerate(_list(request.get("functions"))) if isinstance(f, dict)]
        picked = _picked_function(functions, request.get("function_call"), after_result)
        if picked is not None:
            index, function = picked
            param = f"functions[{index}].parameters"
            return _Plan("function", function.get("parameters"), param, str(function.get("name", "")))
    response_format = request.get("response_format")
    if not isinstance(response_format, dict):
        return _TEXT
    if response_format.get("type") == "json_schema":
        described = response_format.get("json_schema")
        schema = described.get("schema") if isinstance(described, dict) else None
        param = "response_format.json_schema.schema"
        return _Plan("json", schema if isinstance(schema, dict) else None, param)
    return _Plan("json") if response_format.get("type") == "json_object" else _TEXT


def _picked_tool(tools: list[tuple[int, dict[str, Any]]], choice: Any, after_result: bool) -> Any:
    """The (index, function) to call, or None for content."""
    kind = choice.get("type") if isinstance(choice, dict) else None
    if choice == "none" or kind == "custom":
        return None
    if kind == "function":
        return _named(tools, _name_of(choice, "function"), "tool_choice")
    if kind == "allowed_tools":
        allowed = _field(choice, "allowed_tools")
        names = {_name_of(t, "function") for t in _list(allowed.get("tools"))}
        tools = [(i, f) for i, f in tools if f.get("name") in names]
        if not tools:
            return None
        choice = allowed.get("mode", "auto")
    if after_result and choice != "required":
        return None
    return tools[0]


def _picked_function(functions: list[tuple[int, dict[str, Any]]], choice: Any, after_result: bool) -> Any:
    if choice == "none" or not functions:
        return None
    if isinstance(choice, dict):
        return _named(functions, choice.get("name"), "function_call")
    return None if after_result else functions[0]


def _named(functions: list[tuple[int, dict[str, Any]]], name: Any, param: str) -> tuple[int, dict[str, Any]]:
    for index, function in functions:
        if function.get("name") == name:
            return index, function
    raise MockRejection(f"Invalid '{param}': no function named {name!r} was offered.", param)


def _choice(plan: _Plan, text: str, seed: str, index: int) -> _Choice:
    if plan.kind == "text":
        return _Choice(text)
    if plan.kind == "json" and plan.schema is None:
        return _Choice(json_codec.dumps_str({"message": text}), json=True)
    schema = plan.schema
    if plan.kind != "json" and not (isinstance(schema, dict) and "type" in schema):
        # arguments are an object, also where the schema leaves the type open (or is missing)
        schema = {"type": "object", **schema} if isinstance(schema, dict) else {"type": "object"}
    try:
        value = schema_instance(schema, seed=f"{seed}:{index}", text=text)
    except SchemaUnmet as unmet:
        message = f"Invalid '{plan.param}': the mock cannot make a value of this schema, {unmet}."
        raise MockRejection(message, plan.param) from None
    arguments = json_codec.dumps_str(value)
    if plan.kind == "json":
        return _Choice(arguments, json=True)
    if plan.kind == "function":
        return _Choice(None, function_call={"name": plan.name, "arguments": arguments})
    call_id = "call_" + seed[:16] + (f"_{index}" if index else "")
    function = {"name": plan.name, "arguments": arguments}
    return _Choice(None, {"id": call_id, "type": "function", "function": function})


def _message(choice: _Choice) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": choice.content, "refusal": None}
    if choice.tool_call:
        message["tool_calls"] = [choice.tool_call]
    if choice.function_call:
        message["function_call"] = choice.function_call
    return message


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _field(value: Any, key: str) -> dict[str, Any]:
    inner = value.get(key) if isinstance(value, dict) else None
    return inner if isinstance(inner, dict) else {}


def _name_of(value: Any, key: str) -> Any:
    """`value[key]["name"]`, or None where either is missing."""
    return _field(value, key).get("name")


# ---- streams ----------------------------------------------------------------------------------------
def _deltas(choice: _Choice) -> list[dict[str, Any]]:
    """One choice's deltas after the first (its role), in order."""
    if choice.tool_call:
        call = choice.tool_call
        head = {**call, "index": 0, "function": {**call["function"], "arguments": ""}}
        pieces = json_pieces(call["function"]["arguments"])
        return [{"tool_calls": [head]}] + [
            {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]} for piece in pieces
        ]
    if choice.function_call:
        head = {"name": choice.function_call["name"], "arguments": ""}
        pieces = json_pieces(choice.function_call["arguments"])
        return [{"function_call": head}] + [{"function_call": {"arguments": piece}} for piece in pieces]
    content = choice.content or ""
    return [{"content": piece} for piece in (json_pieces if choice.json else stream_deltas)(content)]


def _stream(
    base: dict[str, Any], choices: list[_Choice], counted: dict[str, int], request: dict[str, Any]
) -> list[bytes]:
    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return encode_data(json_codec.dumps({**base, "object": "chat.completion.chunk", "choices": [choice]}))

    role: dict[str, Any] = {"role": "assistant", "content": ""}
    lanes = [[(role, None), *((d, None) for d in _deltas(c)), ({}, c.finish_reason)] for c in choices]
    parts = [
        chunk(index, *lane[step])
        for step in range(max(len(lane) for lane in lanes))
        for index, lane in enumerate(lanes)
        if step < len(lane)
    ]
    if _field(request, "stream_options").get("include_usage"):
        usage_chunk = {**base, "object": "chat.completion.chunk", "choices": [], "usage": counted}
        parts.append(encode_data(json_codec.dumps(usage_chunk)))
    parts.append(DONE_FRAME)
    return parts
