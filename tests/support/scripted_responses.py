"""A scripted model behind the OpenAI Responses API (POST /v1/responses), for driving the real Codex CLI.

The script is the one of tests/support/scripted_models.py, for Codex's shell tool instead of Claude
Code's Bash tool: a `function_call_output` as the latest input item gets `The command printed: <what
the command printed>` (out of Codex's report); a user asking `Use the shell to run `<command>`` (and
offered `SHELL_TOOL`) gets a call of that tool; anything else gets `PLAIN_ANSWER`. The command's output
is never in the prompt (the command computes it), so an answer quoting it proves the client ran the
command and sent its result back.

`ScriptedResponses` streams (or not, as asked) a `Response` the way api.openai.com does: named SSE
events with a strictly increasing `sequence_number`. A tool-calling turn first reasons, in a
`reasoning` item whose `encrypted_content` is `ENCRYPTED_REASONING` (a client replaying its history
must send it back untouched), then says `TOOL_PREAMBLE`, then calls the tool under `SHELL_CALL_ID`.

`ScriptedCodexChat` and `ScriptedCodexAnthropic` are the same script behind Chat Completions and the
Messages API (a `ScriptedOpenAI` / `ScriptedAnthropic` whose tool is `SHELL_TOOL`), for the gateway's
translated routes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from tests.support import scripted_models as models
from tests.support.fake_upstreams import (
    ANTHROPIC_MODEL,
    CREATED,
    OPENAI_MODEL,
    FakeUpstream,
    Part,
    Recorded,
    Reply,
    anthropic_error,
    anthropic_message,
    anthropic_stream,
    dumps,
    json_reply,
    openai_chat_completion,
    openai_error,
    openai_tool_call,
    split_text,
    sse_reply,
    text_block,
    tool_use_block,
)
from tests.support.scripted_models import (
    TOOL_CALL_ID,
    TOOL_USE_ID,
    ScriptedAnthropic,
    ScriptedOpenAI,
    Turn,
    answer_for,
    content_texts,
    text_then_tool_chunks,
)

SHELL_TOOL = "exec_command"  # what Codex offers a model it does not know (unified exec)
SHELL_CALL_ID = "call_ScriptedShellCall01"
RESPONSE_ID = "resp_0ScriptedResponse"
ENCRYPTED_REASONING = "gAAAAABScriptedEncryptedReasoningThatMustComeBackUntouched=="
REASONING_SUMMARY = "The user wants the output of a command: run it."
RUN_REQUEST = re.compile(r"Use the shell to run `([^`]+)`")


def shell_prompt(command: str) -> str:
    """A prompt the scripted model answers with a call of the shell tool running `command`."""
    return f"Use the shell to run `{command}` and tell me what it printed."


def shell_arguments(command: str) -> dict[str, Any]:
    """The arguments of an `exec_command` call (Codex runs `cmd` in a login shell)."""
    return {"cmd": command}


def command_output(tool_output: str) -> str:
    """What the command printed: Codex's exec_command result is a report whose last section is
    `Output:` (after the chunk id, wall time, exit code and token count)."""
    _report, marker, printed = tool_output.rpartition("Output:\n")
    return printed if marker else tool_output


def next_turn(user_texts: Iterable[str], tool_output: str | None, offered_tools: Iterable[str]) -> Turn:
    """The scripted models' script, with Codex's shell tool (its output read as `exec_command` gives it)."""
    return models.next_turn(
        user_texts,
        tool_output,
        offered_tools,
        tool=SHELL_TOOL,
        request=RUN_REQUEST,
        answer=lambda out: answer_for(command_output(out)),
    )


def offered_function_names(tools: Any) -> list[str]:
    """Function tools by name, those grouped in a `namespace` tool too (both the flat Responses shape and
    Chat Completions' `{"type": "function", "function": {...}}`)."""
    names: list[str] = []
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        if tool.get("type") == "namespace":
            names += offered_function_names(tool.get("tools"))
        name = tool.get("name", (tool.get("function") or {}).get("name"))
        if isinstance(name, str):
            names.append(name)
    return names


# ---- Responses API -----------------------------------------------------------------------------------------


def responses_turn(body: dict[str, Any]) -> Turn:
    raw = body.get("input")
    items: list[Any] = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw or []
    items = [item for item in items if isinstance(item, dict)]
    user_texts = [
        text
        for item in items
        if item.get("type", "message") == "message" and item.get("role") == "user"
        for text in content_texts(item.get("content"))
    ]
    last = items[-1] if items else {}
    tool_output = None
    if last.get("type") == "function_call_output":
        output = last.get("output")
        tool_output = "".join(content_texts(output))
    return next_turn(user_texts, tool_output, offered_function_names(body.get("tools")))


def responses_usage() -> dict[str, Any]:
    return {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 19,
    }


def output_items(turn: Turn) -> list[dict[str, Any]]:
    """The finished output items of a turn: [reasoning,] message[, function_call]."""
    items: list[dict[str, Any]] = []
    if turn.command is not None:
        items.append(
            {
                "type": "reasoning",
                "id": "rs_0Scripted",
                "summary": [{"type": "summary_text", "text": REASONING_SUMMARY}],
                "encrypted_content": ENCRYPTED_REASONING,
            }
        )
    items.append(
        {
            "type": "message",
            "id": "msg_0Scripted",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": turn.text, "annotations": [], "logprobs": []}],
        }
    )
    if turn.command is not None:
        items.append(
            {
                "type": "function_call",
                "id": "fc_0Scripted",
                "status": "completed",
                "call_id": SHELL_CALL_ID,
                "name": SHELL_TOOL,
                "arguments": json.dumps(shell_arguments(turn.command)),
            }
        )
    return items


def response_object(body: dict[str, Any], output: list[dict[str, Any]], status: str) -> dict[str, Any]:
    """A `Response` with the request's settings echoed, as the API returns it."""
    return {
        "id": RESPONSE_ID,
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model", OPENAI_MODEL),
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "metadata": {},
        **({"usage": responses_usage()} if status == "completed" else {}),
    }


class _Events:
    """Named SSE events with a strictly increasing `sequence_number`."""

    def __init__(self) -> None:
        self.parts: list[Part] = []

    def add(self, event_type: str, **fields: Any) -> None:
        data = {"type": event_type, "sequence_number": len(self.parts), **fields}
        self.parts.append(f"event: {event_type}\ndata: ".encode() + dumps(data) + b"\n\n")


def responses_stream(body: dict[str, Any], turn: Turn) -> list[Part]:
    """The events of one streamed turn, each item added, filled in and done, then `response.completed`."""
    events = _Events()
    events.add("response.created", response=response_object(body, [], "in_progress"))
    events.add("response.in_progress", response=response_object(body, [], "in_progress"))
    done = output_items(turn)
    for index, item in enumerate(done):
        added = {**item, "status": "in_progress"} if "status" in item else dict(item)
        if item["type"] == "message":
            added["content"] = []
        elif item["type"] == "function_call":
            added["arguments"] = ""
        elif item["type"] == "reasoning":
            added["summary"] = []
        events.add("response.output_item.added", output_index=index, item=added)
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            part = item["content"][0]
            empty = {**part, "text": ""}
            events.add("response.content_part.added", **where, content_index=0, part=empty)
            for piece in split_text(turn.text, 3):
                events.add("response.output_text.delta", **where, content_index=0, delta=piece, logprobs=[])
            events.add("response.output_text.done", **where, content_index=0, text=turn.text, logprobs=[])
            events.add("response.content_part.done", **where, content_index=0, part=part)
        elif item["type"] == "function_call":
            events.add("response.function_call_arguments.delta", **where, delta=item["arguments"])
            events.add(
                "response.function_call_arguments.done",
                **where,
                name=item["name"],
                arguments=item["arguments"],
            )
        else:
            summary = item["summary"][0]
            events.add("response.reasoning_summary_part.added", **where, summary_index=0, part={**summary})
            events.add(
                "response.reasoning_summary_text.delta", **where, summary_index=0, delta=summary["text"]
            )
            events.add("response.reasoning_summary_text.done", **where, summary_index=0, text=summary["text"])
            events.add("response.reasoning_summary_part.done", **where, summary_index=0, part=summary)
        events.add("response.output_item.done", output_index=index, item=item)
    events.add("response.completed", response=response_object(body, done, "completed"))
    return events.parts


class ScriptedResponses(FakeUpstream):
    """POST /v1/responses, streamed or not as asked; anything else is the API's 404."""

    name = "scripted-responses"

    def default(self, rec: Recorded) -> Reply:
        if (rec.method, rec.path) != ("POST", "/v1/responses") or not isinstance(rec.json, dict):
            return openai_error(404, f"Invalid URL ({rec.method} {rec.path})", "invalid_request_error")
        turn = responses_turn(rec.json)
        headers = {"x-request-id": "req_0ScriptedResponses"}
        if rec.json.get("stream") is True:
            return sse_reply(responses_stream(rec.json, turn), headers)
        return json_reply(response_object(rec.json, output_items(turn), "completed"), headers=headers)


# ---- Chat Completions --------------------------------------------------------------------------------------


def chat_turn(body: dict[str, Any]) -> Turn:
    return models.openai_turn(body, next_turn)


class ScriptedCodexChat(ScriptedOpenAI):
    """`ScriptedOpenAI` with Codex's shell tool: what a chat-only provider sees of Codex once the gateway
    has translated its Responses requests."""

    name = "scripted-codex-chat"

    def default(self, rec: Recorded) -> Reply:
        if (rec.method, rec.path) != ("POST", "/v1/chat/completions") or not isinstance(rec.json, dict):
            return super().default(rec)
        model = rec.json.get("model", OPENAI_MODEL)
        turn = chat_turn(rec.json)
        calls = (
            []
            if turn.command is None
            else [openai_tool_call(TOOL_CALL_ID, SHELL_TOOL, json.dumps(shell_arguments(turn.command)))]
        )
        if rec.json.get("stream") is True:
            include_usage = bool((rec.json.get("stream_options") or {}).get("include_usage"))
            return sse_reply(text_then_tool_chunks(model, turn.text, calls, include_usage=include_usage))
        return json_reply(openai_chat_completion(model, turn.text, tool_calls=calls))


# ---- Messages API ------------------------------------------------------------------------------------------


def anthropic_turn(body: dict[str, Any]) -> Turn:
    return models.anthropic_turn(body, next_turn)


class ScriptedCodexAnthropic(ScriptedAnthropic):
    """`ScriptedAnthropic` with Codex's shell tool: what Anthropic sees of Codex once the gateway has
    translated its Responses requests."""

    name = "scripted-codex-anthropic"

    def default(self, rec: Recorded) -> Reply:
        if (rec.method, rec.path) != ("POST", "/v1/messages") or not isinstance(rec.json, dict):
            return anthropic_error(404, "not_found_error", f"Not found: {rec.method} {rec.path}")
        model = rec.json.get("model", ANTHROPIC_MODEL)
        turn = anthropic_turn(rec.json)
        calls = [] if turn.command is None else [shell_arguments(turn.command)]
        if rec.json.get("stream") is True:
            uses = [{"id": TOOL_USE_ID, "name": SHELL_TOOL, "input": call} for call in calls]
            return sse_reply(anthropic_stream(model, split_text(turn.text, 3), tool_calls=uses))
        blocks = [text_block(turn.text), *(tool_use_block(TOOL_USE_ID, SHELL_TOOL, call) for call in calls)]
        return json_reply(anthropic_message(model, blocks))
