"""A scripted model behind two real upstream wires, for driving a real agent client (Claude Code).

The model answers from what the conversation carries, so one fake serves every turn of a tool loop
without the test queueing replies: a tool result in the latest turn gets `The command printed: <the
result>`; a user asking `Use the Bash tool to run `<command>`` (and offered a Bash tool) gets a call of
that tool; anything else gets `PLAIN_ANSWER`. The command's output is never in the prompt (the command
computes it), so an answer quoting it proves the client ran the command and sent its result back.

`ScriptedAnthropic` speaks the Messages API (POST /v1/messages), `ScriptedOpenAI` Chat Completions
(POST /v1/chat/completions), each streamed or not as asked, and both record every request (see
FakeUpstream). A tool call's id is fixed per wire (`TOOL_USE_ID`, `TOOL_CALL_ID`); a tool-calling turn
says `TOOL_PREAMBLE` first, and on the Messages API, when the request turned thinking on, thinks before
that in a block signed `SIGNATURE`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tests.support.fake_upstreams import (
    ANTHROPIC_MODEL,
    OPENAI_MODEL,
    FakeAnthropic,
    FakeOpenAI,
    Part,
    Recorded,
    Reply,
    anthropic_error,
    anthropic_event,
    anthropic_message,
    anthropic_stream,
    json_reply,
    openai_chat_chunks,
    openai_chat_completion,
    openai_error,
    openai_tool_call,
    split_text,
    sse_reply,
    text_block,
    tool_use_block,
)

PLAIN_ANSWER = "Hello from the scripted model."
TOOL_PREAMBLE = "I will run that command."
TOOL_NAME = "Bash"
TOOL_DESCRIPTION = "Print a marker"
TOOL_USE_ID = "toolu_01ScriptedBashCall"
TOOL_CALL_ID = "call_ScriptedBashCall01"
THINKING = "The user wants the output of a command: run it."
SIGNATURE = "EqQBCkYIBxgCKkDScriptedSignatureThatMustComeBackUntouched=="
RUN_REQUEST = re.compile(r"Use the Bash tool to run `([^`]+)`")


def run_prompt(command: str) -> str:
    """A prompt the scripted model answers with a call of the Bash tool running `command`."""
    return f"Use the Bash tool to run `{command}` and tell me what it printed."


def answer_for(tool_output: str) -> str:
    return f"The command printed: {tool_output.strip()}"


@dataclass(frozen=True)
class Turn:
    """What the model says next: a text, and the shell command it asks to run (or None)."""

    text: str
    command: str | None = None


def next_turn(
    user_texts: Iterable[str],
    tool_output: str | None,
    offered_tools: Iterable[str],
    *,
    tool: str = TOOL_NAME,
    request: re.Pattern[str] = RUN_REQUEST,
    answer: Callable[[str], str] = answer_for,
) -> Turn:
    """The script itself, wire-independent: `user_texts` are the texts of the user's turns, `tool_output`
    the tool result in the latest turn (None when it carries none); `tool` is the shell tool it calls
    when a user text matches `request` (its group: the command), `answer` what it says of the tool's
    output."""
    if tool_output is not None:
        return Turn(answer(tool_output))
    if tool in offered_tools:
        for text in user_texts:
            asked = request.search(text)
            if asked is not None:
                return Turn(TOOL_PREAMBLE, asked.group(1))
    return Turn(PLAIN_ANSWER)


def content_texts(content: Any) -> list[str]:
    """The text of a message's content: a string, or blocks / parts of type `text`."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)]
    return []


# ---- Messages API ------------------------------------------------------------------------------------------


Script = Callable[[list[str], "str | None", list[str]], Turn]  # next_turn's first three arguments


def anthropic_turn(body: dict[str, Any], script: Script = next_turn) -> Turn:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    user_texts = [t for m in messages if m.get("role") == "user" for t in content_texts(m.get("content"))]
    tool_output = None
    last = messages[-1] if messages else {}
    if last.get("role") == "user" and isinstance(last.get("content"), list):
        results = [b for b in last["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]
        if results:
            content = results[-1].get("content")
            tool_output = "".join(content_texts(content))
    offered = [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
    return script(user_texts, tool_output, [name for name in offered if isinstance(name, str)])


def thinks(body: dict[str, Any]) -> str | None:
    """The thinking the model shows before it calls a tool, when the request turned thinking on: none of
    its text when the request asked for it to be omitted (the API then sends only the signature)."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive"):
        return None
    return "" if thinking.get("display") == "omitted" else THINKING


class ScriptedAnthropic(FakeAnthropic):
    """Streams (or not, as asked) the turn; a tool-calling turn of a request with thinking on starts
    with a thinking block signed `SIGNATURE`, which a client must send back untouched."""

    name = "scripted-anthropic"

    def default(self, rec: Recorded) -> Reply:
        if (rec.method, rec.path) != ("POST", "/v1/messages") or not isinstance(rec.json, dict):
            return anthropic_error(404, "not_found_error", f"Not found: {rec.method} {rec.path}")
        model = rec.json.get("model", ANTHROPIC_MODEL)
        turn = anthropic_turn(rec.json)
        calls = [] if turn.command is None else [_bash_input(turn.command)]
        thinking = thinks(rec.json) if calls else None
        if rec.json.get("stream") is True:
            stream = anthropic_stream(
                model,
                split_text(turn.text, 3),
                tool_calls=[{"id": TOOL_USE_ID, "name": TOOL_NAME, "input": call} for call in calls],
            )
            if thinking is not None:
                stream = with_thinking_first(stream, thinking)
            return sse_reply(stream, {"request-id": "req_011SCRIPTED"})
        blocks = [text_block(turn.text), *(tool_use_block(TOOL_USE_ID, TOOL_NAME, call) for call in calls)]
        if thinking is not None:
            blocks.insert(0, {"type": "thinking", "thinking": thinking, "signature": SIGNATURE})
        return json_reply(anthropic_message(model, blocks), headers={"request-id": "req_011SCRIPTED"})


def with_thinking_first(stream: list[Part], thinking: str) -> list[Part]:
    """An `anthropic_stream` (message_start and a ping first) with a thinking block at index 0 and every
    other block one index later, as the API streams a turn that thinks before it answers."""
    block = {"type": "content_block_start", "index": 0}
    thinking_events = [
        anthropic_event(
            "content_block_start",
            {**block, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        ),
        *(
            [anthropic_event("content_block_delta", _delta({"type": "thinking_delta", "thinking": thinking}))]
            if thinking
            else []
        ),
        anthropic_event("content_block_delta", _delta({"type": "signature_delta", "signature": SIGNATURE})),
        anthropic_event("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ]
    head, rest = stream[:2], stream[2:]
    return [*head, *thinking_events, *(_one_block_later(part) for part in rest)]


def _delta(delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": 0, "delta": delta}


def _one_block_later(part: Part) -> Part:
    if not isinstance(part, bytes):
        return part
    event, data = part.rstrip(b"\n").split(b"\n", 1)
    payload = json.loads(data.removeprefix(b"data: "))
    if "index" not in payload:
        return part
    return anthropic_event(
        event.removeprefix(b"event: ").decode(), {**payload, "index": payload["index"] + 1}
    )


# ---- Chat Completions --------------------------------------------------------------------------------------


def openai_turn(body: dict[str, Any], script: Script = next_turn) -> Turn:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    user_texts = [t for m in messages if m.get("role") == "user" for t in content_texts(m.get("content"))]
    last = messages[-1] if messages else {}
    tool_output = "".join(content_texts(last.get("content"))) if last.get("role") == "tool" else None
    offered = [(t.get("function") or {}).get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
    return script(user_texts, tool_output, [name for name in offered if isinstance(name, str)])


class ScriptedOpenAI(FakeOpenAI):
    name = "scripted-openai"

    def default(self, rec: Recorded) -> Reply:
        if (rec.method, rec.path) != ("POST", "/v1/chat/completions") or not isinstance(rec.json, dict):
            return openai_error(404, f"Invalid URL ({rec.method} {rec.path})", "invalid_request_error")
        model = rec.json.get("model", OPENAI_MODEL)
        turn = openai_turn(rec.json)
        calls = (
            []
            if turn.command is None
            else [openai_tool_call(TOOL_CALL_ID, TOOL_NAME, json.dumps(_bash_input(turn.command)))]
        )
        if rec.json.get("stream") is True:
            include_usage = bool((rec.json.get("stream_options") or {}).get("include_usage"))
            return sse_reply(text_then_tool_chunks(model, turn.text, calls, include_usage=include_usage))
        return json_reply(openai_chat_completion(model, turn.text, tool_calls=calls))


def text_then_tool_chunks(
    model: str, text: str, calls: list[dict[str, Any]], *, include_usage: bool
) -> list[Part]:
    """A chat stream with the text first and then the tool calls, as models that say what they are about
    to do send it: the text chunks of a plain stream (without its finish chunk), then the tool-call
    chunks of a tool stream (without its role chunk)."""
    if not calls:
        return openai_chat_chunks(model, split_text(text, 3), include_usage=include_usage)
    text_stream = openai_chat_chunks(model, split_text(text, 3), include_usage=include_usage, done=False)
    text_chunks = text_stream[: -2 if include_usage else -1]  # no finish chunk, no usage chunk
    _role, *tool_chunks = openai_chat_chunks(model, tool_calls=calls, include_usage=include_usage)
    return [*text_chunks, *tool_chunks]


def _bash_input(command: str) -> dict[str, Any]:
    return {"command": command, "description": TOOL_DESCRIPTION}
