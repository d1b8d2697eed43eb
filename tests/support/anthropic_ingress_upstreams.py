"""The upstreams behind the gateway's Messages ingress in the SDK tests, one per wire: what each fake
answers by default, how to make it call a tool or fail, and what it was sent, read back in one shape
whatever its wire (`conversation`), so that one test asserts the same thing against every upstream.

`conversation(rec)` lists what an upstream request carried, in order, as tuples:
("system", text), ("user", text), ("image", media type, base64 data), ("assistant", text),
("call", name, input), ("result", text). Each wire's tool-call ids are checked on the way (every
result answers the call before it, by the wire's own id) and left out, since they differ by wire.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.fake_bedrock import (
    AwsKey,
    FakeBedrock,
    bedrock_error,
    bedrock_json,
    converse_response,
    converse_stream,
    eventstream_reply,
    stream_exception,
)
from tests.support.fake_bedrock import tool_use_block as bedrock_tool_use
from tests.support.fake_gemini import (
    FakeGemini,
    function_call_part,
    gemini_error,
    gemini_response,
    gemini_stream,
    gemini_stream_error,
)
from tests.support.fake_openai_compatible import (
    FakeCompatible,
    base_url,
    chat_completion,
    chat_stream,
    midstream_error_parts,
    tool_call,
)
from tests.support.fake_upstreams import (
    FakeAnthropic,
    FakeOpenAI,
    FakeUpstream,
    Recorded,
    Reply,
    anthropic_error,
    anthropic_message,
    anthropic_stream,
    anthropic_stream_error,
    json_reply,
    openai_chat_chunks,
    openai_chat_completion,
    openai_error,
    openai_sse,
    openai_tool_call,
    sse_reply,
    tool_use_block,
)

BEDROCK_KEY = "bedrock-api-key-ABSKingress01"
STREAM_TEXT = "Hello from the fake stream."

Call = tuple[str, dict[str, Any]]  # a tool call: name, input


@dataclass(frozen=True)
class Upstream:
    name: str  # the test id, and the provider's name in the routes
    alias: str  # the model the client asks for
    model: str  # the upstream model behind it
    fake: str  # the fixture serving the fake
    native: bool  # speaks the Messages API itself (passthrough)
    text: str  # the default answer's text
    usage: tuple[int, int]  # the default answer's input and output tokens, as the client sees them
    stream_usage: tuple[int, int]
    calls: Callable[[list[Call], bool], Reply]  # a reply calling these tools (streamed or not)
    error: Callable[[str], Reply]  # a reply failing: rate_limit, server, overloaded
    broken: Callable[[], Reply]  # a stream that says "Hel", then fails
    conversation: Callable[[Recorded], list[tuple[Any, ...]]]

    def provider(self, fake_url: str) -> dict[str, Any]:
        return PROVIDERS[self.name](fake_url)


# ---- reading what each wire was sent ---------------------------------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


class _Ids:
    """The wire's tool-call ids: a result must answer a call made before it."""

    def __init__(self) -> None:
        self.open: set[Any] = set()

    def called(self, call_id: Any) -> None:
        assert call_id, "a tool call without an id"
        self.open.add(call_id)

    def answered(self, call_id: Any) -> None:
        assert call_id in self.open, f"a result for {call_id!r}, calls made: {sorted(map(str, self.open))}"


def openai_conversation(rec: Recorded) -> list[tuple[Any, ...]]:
    ids = _Ids()
    out: list[tuple[Any, ...]] = []
    for message in rec.json["messages"]:
        role, content = message["role"], message.get("content")
        if role in ("system", "developer"):
            out.append(("system", _text(content)))
        elif role == "user":
            parts: list[Any] = [{"type": "text", "text": content}] if isinstance(content, str) else content
            for part in parts:
                if part["type"] == "text":
                    out.append(("user", part["text"]))
                elif part["type"] == "image_url":
                    head, _, data = part["image_url"]["url"].partition(";base64,")
                    out.append(("image", head.removeprefix("data:"), data))
                else:
                    out.append((part["type"],))
        elif role == "assistant":
            if content:
                out.append(("assistant", _text(content)))
            for call in message.get("tool_calls") or []:
                ids.called(call["id"])
                out.append(("call", call["function"]["name"], json.loads(call["function"]["arguments"])))
        elif role == "tool":
            ids.answered(message["tool_call_id"])
            out.append(("result", _text(content)))
    return out


def gemini_conversation(rec: Recorded) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if "systemInstruction" in rec.json:
        out.append(("system", _text(rec.json["systemInstruction"]["parts"])))
    called: set[str] = set()
    for content in rec.json["contents"]:
        for part in content["parts"]:
            if "text" in part:
                out.append(("assistant" if content["role"] == "model" else "user", part["text"]))
            elif "inlineData" in part:
                out.append(("image", part["inlineData"]["mimeType"], part["inlineData"]["data"]))
            elif "functionCall" in part:
                called.add(part["functionCall"]["name"])
                out.append(("call", part["functionCall"]["name"], part["functionCall"]["args"]))
            elif "functionResponse" in part:
                assert part["functionResponse"]["name"] in called, part
                response = part["functionResponse"]["response"]
                out.append(("result", response.get("output", json.dumps(response))))
    return out


def bedrock_conversation(rec: Recorded) -> list[tuple[Any, ...]]:
    ids = _Ids()
    out: list[tuple[Any, ...]] = [("system", block["text"]) for block in rec.json.get("system") or []]
    for message in rec.json["messages"]:
        for block in message["content"]:
            if "text" in block:
                out.append(("assistant" if message["role"] == "assistant" else "user", block["text"]))
            elif "image" in block:
                out.append(("image", f"image/{block['image']['format']}", block["image"]["source"]["bytes"]))
            elif "toolUse" in block:
                ids.called(block["toolUse"]["toolUseId"])
                out.append(("call", block["toolUse"]["name"], block["toolUse"]["input"]))
            elif "toolResult" in block:
                ids.answered(block["toolResult"]["toolUseId"])
                out.append(("result", _text(block["toolResult"]["content"])))
    return out


def anthropic_conversation(rec: Recorded) -> list[tuple[Any, ...]]:
    ids = _Ids()
    system = rec.json.get("system")
    out: list[tuple[Any, ...]] = [("system", _text(system))] if system else []
    for message in rec.json["messages"]:
        content = message["content"]
        blocks: list[Any] = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks:
            kind = block["type"]
            if kind == "text":
                out.append((message["role"], block["text"]))
            elif kind == "image":
                out.append(("image", block["source"]["media_type"], block["source"]["data"]))
            elif kind == "tool_use":
                ids.called(block["id"])
                out.append(("call", block["name"], block["input"]))
            elif kind == "tool_result":
                ids.answered(block["tool_use_id"])
                out.append(("result", _text(block["content"])))
    return out


# ---- replies ---------------------------------------------------------------------------------------


def _arguments(tool_input: dict[str, Any]) -> str:
    return json.dumps(tool_input)


def openai_calls(calls: list[Call], stream: bool) -> Reply:
    made = [openai_tool_call(f"call_{i}abc", name, _arguments(args)) for i, (name, args) in enumerate(calls)]
    if stream:
        return sse_reply(openai_chat_chunks(tool_calls=made, include_usage=True))
    return json_reply(openai_chat_completion(content=None, tool_calls=made))


def mistral_calls(calls: list[Call], stream: bool) -> Reply:
    made = [tool_call(f"Mi{i}stral01", name, _arguments(args)) for i, (name, args) in enumerate(calls)]
    if stream:
        return sse_reply(chat_stream("mistral", "mistral-large-latest", tool_calls=made))
    return json_reply(chat_completion("mistral", "mistral-large-latest", tool_calls=made))


def gemini_calls(calls: list[Call], stream: bool) -> Reply:
    parts = [function_call_part(name, args) for name, args in calls]
    if stream:
        return sse_reply(gemini_stream(pieces=(), function_calls=parts))
    return json_reply(gemini_response(parts))


def bedrock_calls(calls: list[Call], stream: bool) -> Reply:
    blocks = [bedrock_tool_use(f"tooluse_{i}Bedrock", name, args) for i, (name, args) in enumerate(calls)]
    if stream:
        return eventstream_reply(converse_stream(pieces=(), tool_calls=blocks))
    return bedrock_json(converse_response(blocks))


def anthropic_calls(calls: list[Call], stream: bool) -> Reply:
    blocks = [tool_use_block(f"toolu_0{i}Native", name, args) for i, (name, args) in enumerate(calls)]
    if stream:
        return sse_reply(anthropic_stream(pieces=(), tool_calls=blocks))
    return json_reply(anthropic_message(content=blocks))


OPENAI_ERRORS = {
    "rate_limit": lambda: openai_error(
        429, "Rate limit reached for requests", "requests", code="rate_limit_exceeded"
    ),
    "server": lambda: openai_error(
        500, "The server had an error while processing your request.", "server_error"
    ),
    "overloaded": lambda: openai_error(503, "The engine is currently overloaded.", "server_error"),
}
GEMINI_ERRORS = {
    "rate_limit": lambda: gemini_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted."),
    "server": lambda: gemini_error(500, "INTERNAL", "An internal error has occurred."),
    "overloaded": lambda: gemini_error(
        503, "UNAVAILABLE", "The model is overloaded. Please try again later."
    ),
}
BEDROCK_ERRORS = {
    "rate_limit": lambda: bedrock_error(429, "ThrottlingException", "Too many requests, please wait."),
    "server": lambda: bedrock_error(500, "InternalServerException", "The server encountered an error."),
    "overloaded": lambda: bedrock_error(503, "ServiceUnavailableException", "The service is unavailable."),
}
ANTHROPIC_ERRORS = {
    "rate_limit": lambda: anthropic_error(
        429, "rate_limit_error", "Number of requests has exceeded your rate limit."
    ),
    "server": lambda: anthropic_error(500, "api_error", "Internal server error"),
    "overloaded": lambda: anthropic_error(529, "overloaded_error", "Overloaded"),
}


def openai_broken() -> Reply:
    *started, _finish = openai_chat_chunks(pieces=("Hel",), done=False)
    error = {
        "message": "The server had an error while streaming.",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    return sse_reply([*started, openai_sse({"error": error})])


def mistral_broken() -> Reply:
    return sse_reply(midstream_error_parts("mistral", "mistral-large-latest"))


def gemini_broken() -> Reply:
    started = gemini_stream(pieces=("Hel",), finish_reason=None)
    return sse_reply([*started, gemini_stream_error(503, "UNAVAILABLE", "The model is overloaded.")])


def bedrock_broken() -> Reply:
    started = converse_stream(pieces=("Hel",), complete=False)
    return eventstream_reply(
        [*started, stream_exception("serviceUnavailableException", {"message": "Unavailable"})]
    )


def anthropic_broken() -> Reply:
    return sse_reply([*anthropic_stream(pieces=("Hel",), complete=False), anthropic_stream_error()])


PROVIDERS: dict[str, Callable[[str], dict[str, Any]]] = {
    "openai": lambda url: {"dialect": "openai", "base_url": f"{url}/v1", "api_key": "sk-openai-upstream"},
    "compatible": lambda url: {
        "dialect": "mistral",
        "base_url": base_url(url, "mistral"),
        "api_key": "sk-mistral-upstream",
    },
    "gemini": lambda url: {"dialect": "gemini", "base_url": f"{url}/v1beta", "api_key": "AIza-upstream"},
    "bedrock": lambda url: {"dialect": "bedrock", "base_url": url, "api_key": BEDROCK_KEY},
    "anthropic": lambda url: {"dialect": "anthropic", "base_url": url, "api_key": "sk-ant-upstream"},
}

UPSTREAMS = {
    "openai": Upstream(
        "openai", "gw-openai", "gpt-4o-2024-08-06", "fake_openai", False,
        "Hello from the fake OpenAI upstream.", (12, 7), (12, 7),
        openai_calls, lambda kind: OPENAI_ERRORS[kind](), openai_broken, openai_conversation,
    ),
    "compatible": Upstream(
        "compatible", "gw-mistral", "mistral-large-latest", "fake_compatible", False,
        "Hello from the fake mistral upstream.", (12, 7), (12, 7),
        mistral_calls, lambda kind: OPENAI_ERRORS[kind](), mistral_broken, openai_conversation,
    ),
    "gemini": Upstream(
        "gemini", "gw-gemini", "gemini-2.5-flash", "fake_gemini", False,
        "Hello from the fake Gemini upstream.", (12, 7), (12, 7),
        gemini_calls, lambda kind: GEMINI_ERRORS[kind](), gemini_broken, gemini_conversation,
    ),
    "bedrock": Upstream(
        "bedrock", "gw-bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "fake_bedrock", False,
        "Hello from the fake Bedrock upstream.", (21, 8), (21, 8),
        bedrock_calls, lambda kind: BEDROCK_ERRORS[kind](), bedrock_broken, bedrock_conversation,
    ),
    "anthropic": Upstream(
        "anthropic", "gw-anthropic", "claude-sonnet-4-5-20250929", "fake_anthropic", True,
        "Hello from the fake Anthropic upstream.", (25, 9), (25, 9),
        anthropic_calls, lambda kind: ANTHROPIC_ERRORS[kind](), anthropic_broken, anthropic_conversation,
    ),
}  # fmt: skip

FAKES: dict[str, Callable[[], FakeUpstream]] = {
    "fake_openai": FakeOpenAI,
    "fake_compatible": FakeCompatible,
    "fake_gemini": FakeGemini,
    "fake_bedrock": lambda: FakeBedrock({"AKIDUNUSED": AwsKey("unused")}, [BEDROCK_KEY]),
    "fake_anthropic": FakeAnthropic,
}
