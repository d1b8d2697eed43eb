"""Fake thinking models that are as strict about replayed reasoning as the real APIs.

Each fake answers a weather tool loop in each provider's own wire format: turns 1 and 2 think and call
`get_weather`, turn 3 thinks and answers. What it thinks is signed with a signature only it can make
(an HMAC over the text), and it checks every request the way the real API does:

- Anthropic (Messages) and Claude on Bedrock (Converse): with thinking on, the assistant turn whose
  tool calls the request answers must open with its thinking block(s), and every thinking block,
  anywhere, must carry the signature issued for exactly that text (redacted blocks: data issued).
  Otherwise 400 — the messages the real APIs give.
- Gemini 3: every functionCall part of the current turn must carry the thoughtSignature issued for
  it; a signature on a text part, when sent, must be one issued for that text.
- DeepSeek (thinking mode): an assistant turn with tool calls in the current tool loop must carry the
  reasoning_content it was given; reasoning_content anywhere else is refused (older models' 400).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

from tests.support.fake_bedrock import (
    AwsKey,
    FakeBedrock,
    bedrock_error,
    bedrock_json,
    converse_response,
    converse_usage,
    eventstream_reply,
    stream_event,
)
from tests.support.fake_gemini import FakeGemini, candidate, gemini_error, gemini_response, gemini_sse
from tests.support.fake_upstreams import (
    FakeUpstream,
    Part,
    Recorded,
    Reply,
    anthropic_error,
    anthropic_event,
    anthropic_message,
    anthropic_usage,
    json_reply,
    sse_reply,
)

TOOL_TURNS = 2  # tool calls before the answer
ANSWER = "It is sunny in Paris."
CITIES = ("Paris", "Lyon")


def thought(turn: int) -> str:
    if turn < TOOL_TURNS:
        return f"Turn {turn + 1}: I need the weather in {CITIES[turn]}; call get_weather."
    return f"Turn {turn + 1}: I have both results; answer."


class Signer:
    """Signatures only this fake can make; `valid` says whether one was made for exactly this text."""

    def __init__(self) -> None:
        self._key = os.urandom(16)

    def sign(self, text: str) -> str:
        return base64.b64encode(hmac.new(self._key, text.encode(), hashlib.sha256).digest()).decode()

    def valid(self, signature: Any, text: Any) -> bool:
        return isinstance(signature, str) and isinstance(text, str) and signature == self.sign(text)

    def redacted(self, turn: int) -> str:
        return "REDACTED:" + self.sign(f"redacted {turn}")


def _pieces(text: str, count: int = 3) -> list[str]:
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)]


# =================================================================================================
# Anthropic Messages
# =================================================================================================


class ThinkingAnthropic(FakeUpstream):
    name = "thinking-anthropic"

    def __init__(self) -> None:
        super().__init__()
        self.signer = Signer()

    def default(self, rec: Recorded) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        problem = self.problem(body)
        if problem is not None:
            return anthropic_error(400, "invalid_request_error", problem)
        turn = sum(1 for m in body["messages"] if _has_block(m, "tool_result"))
        thinking = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
        blocks: list[dict[str, Any]] = []
        if thinking:
            text = thought(turn)
            blocks.append({"type": "thinking", "thinking": text, "signature": self.signer.sign(text)})
            if turn == 0:
                blocks.append({"type": "redacted_thinking", "data": self.signer.redacted(turn)})
        if turn < TOOL_TURNS:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_0{turn}",
                    "name": "get_weather",
                    "input": {"city": CITIES[turn]},
                }
            )
        else:
            blocks.append({"type": "text", "text": ANSWER})
        if body.get("stream") is True:
            return sse_reply(_anthropic_stream(body["model"], blocks))
        return json_reply(anthropic_message(body["model"], blocks))

    def problem(self, body: dict[str, Any]) -> str | None:
        thinking = body.get("thinking") or {}
        if thinking.get("type") == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            if budget >= body.get("max_tokens", 0):
                return "`max_tokens` must be greater than `thinking.budget_tokens`."
            if body.get("temperature", 1) != 1:
                return "`temperature` may only be set to 1 when thinking is enabled."
        for i, message in enumerate(body.get("messages") or []):
            for j, block in enumerate(message["content"] if isinstance(message["content"], list) else []):
                if block["type"] == "thinking" and not self.signer.valid(
                    block.get("signature"), block["thinking"]
                ):
                    return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                if block["type"] == "redacted_thinking" and not str(block.get("data")).startswith(
                    "REDACTED:"
                ):
                    return f"messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block"
        if thinking.get("type") in ("enabled", "adaptive"):
            return _unopened_tool_turn(body["messages"], "tool_use", ("thinking", "redacted_thinking"))
        return None


def _has_block(message: dict[str, Any], kind: str) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(b.get("type") == kind for b in content)


def _unopened_tool_turn(
    messages: list[dict[str, Any]], tool_kind: str, opening: tuple[str, ...]
) -> str | None:
    """With thinking on, the last assistant turn, when it called tools, must open with thinking."""
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if message["role"] != "assistant":
            continue
        content = message["content"] if isinstance(message["content"], list) else []
        if not any(tool_kind in b or b.get("type") == tool_kind for b in content):
            return None
        first = content[0]
        kind = first.get("type") or next(iter(first))
        if kind not in opening and not any(k in first for k in opening):
            return (
                f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                f"`{kind}`. When `thinking` is enabled, a final `assistant` message must start with a "
                "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks)."
            )
        return None
    return None


def _anthropic_stream(model: str, blocks: list[dict[str, Any]]) -> list[Part]:
    usage = anthropic_usage()
    start = {
        "id": "msg_01THINK",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    parts: list[Part] = [anthropic_event("message_start", {"type": "message_start", "message": start})]

    def delta(i: int, body: dict[str, Any]) -> bytes:
        return anthropic_event(
            "content_block_delta", {"type": "content_block_delta", "index": i, "delta": body}
        )

    for i, block in enumerate(blocks):
        kind = block["type"]
        opening = {
            "thinking": {"type": "thinking", "thinking": ""},
            "redacted_thinking": block,
            "tool_use": {**block, "input": {}},
            "text": {"type": "text", "text": ""},
        }[kind]
        parts.append(
            anthropic_event(
                "content_block_start", {"type": "content_block_start", "index": i, "content_block": opening}
            )
        )
        if kind == "thinking":
            parts += [delta(i, {"type": "thinking_delta", "thinking": p}) for p in _pieces(block["thinking"])]
            parts.append(delta(i, {"type": "signature_delta", "signature": block["signature"]}))
        elif kind == "tool_use":
            arguments = json.dumps(block["input"])
            parts += [delta(i, {"type": "input_json_delta", "partial_json": p}) for p in _pieces(arguments)]
        elif kind == "text":
            parts += [delta(i, {"type": "text_delta", "text": p}) for p in _pieces(block["text"])]
        parts.append(anthropic_event("content_block_stop", {"type": "content_block_stop", "index": i}))
    stop = "tool_use" if blocks[-1]["type"] == "tool_use" else "end_turn"
    parts.append(
        anthropic_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
    )
    parts.append(anthropic_event("message_stop", {"type": "message_stop"}))
    return parts


# =================================================================================================
# Claude on Bedrock (Converse / ConverseStream)
# =================================================================================================


class ThinkingBedrock(FakeBedrock):
    name = "thinking-bedrock"

    def __init__(self, keys: dict[str, AwsKey], api_keys: list[str]) -> None:
        super().__init__(keys, api_keys)
        self.signer = Signer()

    def default(self, rec: Recorded) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        problem = self.problem(body)
        if problem is not None:
            return bedrock_error(400, "ValidationException", problem)
        turn = sum(1 for m in body["messages"] if any("toolResult" in b for b in m["content"]))
        thinking = ((body.get("additionalModelRequestFields") or {}).get("thinking") or {}).get(
            "type"
        ) == "enabled"
        blocks: list[dict[str, Any]] = []
        if thinking:
            text = thought(turn)
            blocks.append(
                {"reasoningContent": {"reasoningText": {"text": text, "signature": self.signer.sign(text)}}}
            )
            if turn == 0:
                blocks.append({"reasoningContent": {"redactedContent": self.signer.redacted(turn)}})
        if turn < TOOL_TURNS:
            use = {"toolUseId": f"tooluse_0{turn}", "name": "get_weather", "input": {"city": CITIES[turn]}}
            blocks.append({"toolUse": use})
        else:
            blocks.append({"text": ANSWER})
        stop = "tool_use" if "toolUse" in blocks[-1] else "end_turn"
        if rec.path.endswith("/converse-stream"):
            return eventstream_reply(_converse_stream(blocks, stop))
        return bedrock_json(
            {
                **converse_response(),
                "output": {"message": {"role": "assistant", "content": blocks}},
                "stopReason": stop,
            }
        )

    def problem(self, body: dict[str, Any]) -> str | None:
        thinking = (body.get("additionalModelRequestFields") or {}).get("thinking") or {}
        if thinking.get("type") == "enabled":
            max_tokens = (body.get("inferenceConfig") or {}).get("maxTokens", 4096)
            if thinking.get("budget_tokens", 0) >= max_tokens:
                return (
                    "The model returned the following errors: "
                    "`max_tokens` must be greater than `thinking.budget_tokens`."
                )
        for i, message in enumerate(body.get("messages") or []):
            for j, block in enumerate(message["content"]):
                reasoning = block.get("reasoningContent")
                if reasoning is None:
                    continue
                text = reasoning.get("reasoningText")
                if text is not None and not self.signer.valid(text.get("signature"), text.get("text")):
                    return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                if text is None and not str(reasoning.get("redactedContent")).startswith("REDACTED:"):
                    return f"messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block"
        if thinking.get("type") == "enabled":
            return _unopened_tool_turn(body["messages"], "toolUse", ("reasoningContent",))
        return None


def _converse_stream(blocks: list[dict[str, Any]], stop: str) -> list[Part]:
    parts: list[Part] = [stream_event("messageStart", {"role": "assistant"})]

    def delta(i: int, body: dict[str, Any]) -> bytes:
        return stream_event("contentBlockDelta", {"contentBlockIndex": i, "delta": body})

    for i, block in enumerate(blocks):
        if "reasoningContent" in block:
            reasoning = block["reasoningContent"]
            if "redactedContent" in reasoning:
                parts.append(
                    delta(i, {"reasoningContent": {"redactedContent": reasoning["redactedContent"]}})
                )
            else:
                text = reasoning["reasoningText"]
                parts += [delta(i, {"reasoningContent": {"text": p}}) for p in _pieces(text["text"])]
                parts.append(delta(i, {"reasoningContent": {"signature": text["signature"]}}))
        elif "toolUse" in block:
            use = block["toolUse"]
            start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
            parts.append(stream_event("contentBlockStart", {"contentBlockIndex": i, "start": start}))
            parts += [delta(i, {"toolUse": {"input": p}}) for p in _pieces(json.dumps(use["input"]))]
        else:
            parts += [delta(i, {"text": p}) for p in _pieces(block["text"])]
        parts.append(stream_event("contentBlockStop", {"contentBlockIndex": i}))
    parts.append(stream_event("messageStop", {"stopReason": stop}))
    parts.append(stream_event("metadata", {"usage": converse_usage(), "metrics": {"latencyMs": 120}}))
    return parts


# =================================================================================================
# Gemini 3 (generateContent / streamGenerateContent)
# =================================================================================================


class ThinkingGemini(FakeGemini):
    name = "thinking-gemini"

    def __init__(self) -> None:
        super().__init__()
        self.signer = Signer()

    def default(self, rec: Recorded) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        if not rec.path.endswith(("generateContent", "streamGenerateContent")):
            return super().default(rec)
        problem = self.problem(body["contents"])
        if problem is not None:
            return gemini_error(400, "INVALID_ARGUMENT", problem)
        turn = sum(1 for c in body["contents"] for p in c["parts"] if "functionResponse" in p)
        include = ((body.get("generationConfig") or {}).get("thinkingConfig") or {}).get("includeThoughts")
        parts: list[dict[str, Any]] = [{"text": thought(turn), "thought": True}] if include else []
        if turn < TOOL_TURNS:
            call = {"name": "get_weather", "args": {"city": CITIES[turn]}}
            parts.append({"functionCall": call, "thoughtSignature": self.signer.sign(json.dumps(call))})
        else:
            parts.append({"text": ANSWER, "thoughtSignature": self.signer.sign(ANSWER)})
        if rec.path.endswith("streamGenerateContent"):
            chunks = [
                {
                    "candidates": [candidate([part], "STOP" if i == len(parts) - 1 else None)],
                    "modelVersion": "gemini-3-pro-fake",
                    "responseId": "think-0001",
                }
                for i, part in enumerate(parts)
            ]
            return sse_reply([gemini_sse(chunk) for chunk in chunks])
        return json_reply(gemini_response(parts))

    def problem(self, contents: list[dict[str, Any]]) -> str | None:
        # the current turn: everything after the last user content that is not only function responses
        start = max(
            (
                i
                for i, c in enumerate(contents)
                if c["role"] == "user" and any("text" in p for p in c["parts"])
            ),
            default=0,
        )
        for i, content in enumerate(contents):
            if content["role"] != "model":
                continue
            calls = [p for p in content["parts"] if "functionCall" in p]
            for j, part in enumerate(content["parts"]):
                signature = part.get("thoughtSignature")
                if "functionCall" in part:
                    signed = json.dumps(part["functionCall"])
                    if signature is None and i > start and part is calls[0]:
                        return (
                            "Function call is missing a thought_signature in functionCall parts. This is "
                            "required for tools to work correctly, and missing thought_signature may lead to "
                            "degraded model performance. Additional data, function call "
                            f"`{part['functionCall']['name']}` , position {j + 1}."
                        )
                    if signature is not None and not self.signer.valid(signature, signed):
                        return f"Corrupted thought signature in contents[{i}].parts[{j}]."
                elif signature is not None and not self.signer.valid(signature, part.get("text")):
                    return f"Corrupted thought signature in contents[{i}].parts[{j}]."
        return None


# =================================================================================================
# DeepSeek thinking mode (OpenAI chat shape, reasoning_content)
# =================================================================================================


class ThinkingDeepSeek(FakeUpstream):
    name = "thinking-deepseek"

    def default(self, rec: Recorded) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        problem = self.problem(body["messages"])
        if problem is not None:
            error = {
                "message": problem,
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_request_error",
            }
            return json_reply({"error": error}, 400)
        turn = sum(1 for m in body["messages"] if m["role"] == "tool")
        message: dict[str, Any] = {"role": "assistant", "content": None, "reasoning_content": thought(turn)}
        if turn < TOOL_TURNS:
            arguments = json.dumps({"city": CITIES[turn]})
            message["tool_calls"] = [
                {
                    "id": f"call_0{turn}",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": arguments},
                }
            ]
            finish = "tool_calls"
        else:
            message["content"] = ANSWER
            finish = "stop"
        if body.get("stream") is True:
            return sse_reply(_deepseek_stream(body["model"], message, finish))
        return json_reply(
            {
                "id": "ds-think-1",
                "object": "chat.completion",
                "created": 1_735_689_600,
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": {"prompt_tokens": 16, "completion_tokens": 40, "total_tokens": 56},
            }
        )

    def problem(self, messages: list[dict[str, Any]]) -> str | None:
        last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=0)
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            reasoning = message.get("reasoning_content")
            if message.get("tool_calls"):
                if i > last_user and not reasoning:
                    return "The `reasoning_content` in the thinking mode must be passed back to the API."
            elif reasoning is not None:
                return f"messages[{i}]: reasoning_content is not allowed in input messages"
        return None


def _deepseek_stream(model: str, message: dict[str, Any], finish: str) -> list[Part]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        body = {
            "id": "ds-think-s",
            "object": "chat.completion.chunk",
            "created": 1_735_689_600,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    parts: list[Part] = [chunk({"role": "assistant", "content": None, "reasoning_content": ""})]
    parts += [chunk({"content": None, "reasoning_content": p}) for p in _pieces(message["reasoning_content"])]
    if message.get("tool_calls"):
        call = message["tool_calls"][0]
        parts.append(chunk({"tool_calls": [{"index": 0, **call}]}))
    else:
        parts += [chunk({"content": p, "reasoning_content": None}) for p in _pieces(message["content"])]
    parts.append(chunk({}, finish))
    parts.append(b"data: [DONE]\n\n")
    return parts
