"""One fake upstream for every OpenAI-compatible provider, each speaking its own flavour of the wire.

The first path segment names the flavour and the rest is that provider's real path:
`/azure-openai/openai/deployments/{deployment}/chat/completions?api-version=...`,
`/azure-openai-v1/openai/v1/chat/completions`, `/mistral/v1/...`, `/groq/openai/v1/...`,
`/deepseek/chat/completions` (no /v1), `/xai/v1/...`, `/vllm/v1/...`. `base_url(flavour)` gives the
provider's base URL. Default replies follow each provider's reference (../shared/providers/*.md):

- azure-openai(-v1): content-filter annotations, a first stream frame with no choices and an empty
  id / model / object, an annotation-only frame (a choice without delta) later in the stream;
- mistral: no logprobs / refusal keys, tool calls streamed whole (several in one chunk, index 0 on
  each, no type), usage on the last chunk whether asked or not, floats-only embeddings;
- groq: `x_groq` on the first and last chunk, usage only in `x_groq.usage` (plus OpenAI's usage
  chunk when include_usage is asked);
- deepseek: `: keep-alive` comments before and inside streams, blank lines before JSON bodies,
  reasoning_content, prompt_cache_hit_tokens / prompt_cache_miss_tokens;
- xai: usage on the finish chunk and an empty trailing chunk;
- vllm: stop_reason extras, `prompt_tokens_details: null`, a first tool-call delta without arguments.

Tests can also queue replies built with the helpers below (`chat_completion`, `chat_stream`, errors).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Any

from tests.support.fake_upstreams import (
    CREATED,
    DONE,
    FakeUpstream,
    Part,
    Recorded,
    Reply,
    dumps,
    json_reply,
    openai_sse,
    split_text,
    sse_reply,
)

FLAVOURS = ("azure-openai", "azure-openai-v1", "mistral", "groq", "deepseek", "xai", "vllm")
# what follows the flavour segment in the provider's base URL
BASE_PATHS = {
    "azure-openai": "/openai",
    "azure-openai-v1": "/openai/v1",
    "mistral": "/v1",
    "groq": "/openai/v1",
    "deepseek": "",
    "xai": "/v1",
    "vllm": "/v1",
}
AZURE = ("azure-openai", "azure-openai-v1")
# flavours whose provider has a legacy /completions endpoint of its own
NATIVE_COMPLETIONS = ("azure-openai", "azure-openai-v1", "xai", "vllm")
EMBEDDINGS = ("azure-openai", "azure-openai-v1", "mistral", "vllm")
ANSWER = "Hello from the fake {flavour} upstream."
PIECES = ("Hello", " from", " the", " fake", " stream.")
FILTER_RESULTS = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}


def base_url(server_url: str, flavour: str) -> str:
    return f"{server_url}/{flavour}{BASE_PATHS[flavour]}"


def usage_for(flavour: str, prompt: int = 12, completion: int = 7) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if flavour == "deepseek":
        usage.update(prompt_cache_hit_tokens=8, prompt_cache_miss_tokens=prompt - 8)
    elif flavour == "groq":
        usage.update(queue_time=0.01, prompt_time=0.002, completion_time=0.01, total_time=0.022)
    elif flavour == "xai":
        usage["prompt_tokens_details"] = {"cached_tokens": 4, "text_tokens": prompt}
    elif flavour == "vllm":
        usage["prompt_tokens_details"] = None
    elif flavour in AZURE:
        usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
    return usage


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def chat_completion(
    flavour: str,
    model: str,
    content: str | None = None,
    *,
    tool_calls: Sequence[dict[str, Any]] = (),
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """A non-streamed chat reply as `flavour` sends it."""
    text = ANSWER.format(flavour=flavour) if content is None and not tool_calls else content
    message: dict[str, Any] = {"role": "assistant", "content": text}
    choice: dict[str, Any] = {"index": 0, "message": message}
    if tool_calls:
        calls = [dict(c) for c in tool_calls]
        if flavour == "mistral":
            calls = [{"id": c["id"], "function": c["function"]} for c in calls]  # no type
        message["tool_calls"] = calls
    choice["finish_reason"] = finish_reason or ("tool_calls" if tool_calls else "stop")
    body: dict[str, Any] = {
        "id": f"chatcmpl-{flavour}-1",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [choice],
        "usage": usage_for(flavour),
    }
    if flavour in AZURE:
        body["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": FILTER_RESULTS}]
        choice["content_filter_results"] = FILTER_RESULTS
    elif flavour == "groq":
        choice["logprobs"] = None
        body["x_groq"] = {"id": "req_01fake"}
        body["system_fingerprint"] = "fp_groq"
    elif flavour == "deepseek":
        choice["logprobs"] = None
        message["reasoning_content"] = "The user greets me."
    elif flavour == "vllm":
        choice.update(logprobs=None, stop_reason=None)
        message["reasoning"] = None
    elif flavour == "xai":
        message["refusal"] = None
    return body


def _frame(obj: Any) -> bytes:
    return openai_sse(obj)


def chat_stream(
    flavour: str,
    model: str,
    pieces: Sequence[str] = PIECES,
    *,
    tool_calls: Sequence[dict[str, Any]] = (),
    include_usage: bool = False,
    finish_reason: str | None = None,
    complete: bool = True,
) -> list[Part]:
    """A streamed chat reply as `flavour` sends it (see the module docstring); `complete=False` stops
    after the content, before the finish chunk."""
    base = {
        "id": f"chatcmpl-{flavour}-s",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
    }
    finish = finish_reason or ("tool_calls" if tool_calls else "stop")

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        if flavour in AZURE:
            choice["content_filter_results"] = FILTER_RESULTS if delta.get("content") else {}
        elif flavour != "mistral":
            choice["logprobs"] = None
        return {**base, "choices": [choice], **extra}

    parts: list[Part] = []
    if flavour in AZURE:
        parts.append(
            _frame(
                {
                    "choices": [],
                    "created": 0,
                    "id": "",
                    "model": "",
                    "object": "",
                    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": FILTER_RESULTS}],
                }
            )
        )
    if flavour == "deepseek":
        parts.append(b": keep-alive\n\n")
    first: dict[str, Any] = {"role": "assistant", "content": ""}
    if flavour == "groq":
        first["tool_calls"] = []
    parts.append(_frame(chunk(first, **({"x_groq": {"id": "req_01fake"}} if flavour == "groq" else {}))))
    if tool_calls:
        if flavour in ("mistral", "xai", "groq"):  # whole calls, all in one chunk
            calls = []
            for index, call in enumerate(tool_calls):
                whole: dict[str, Any] = {"id": call["id"], "function": dict(call["function"])}
                whole["index"] = 0 if flavour == "mistral" else index
                if flavour != "mistral":
                    whole["type"] = "function"
                calls.append(whole)
            parts.append(_frame(chunk({"tool_calls": calls})))
        else:  # OpenAI's layout: id and name first, then argument fragments
            for index, call in enumerate(tool_calls):
                function: dict[str, Any] = {"name": call["function"]["name"]}
                if flavour != "vllm":  # vLLM's first delta may leave "arguments" out
                    function["arguments"] = ""
                head = {"index": index, "id": call["id"], "type": "function", "function": function}
                parts.append(_frame(chunk({"tool_calls": [head]})))
                for fragment in split_text(call["function"]["arguments"], 3):
                    parts.append(
                        _frame(chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}))
                    )
    else:
        for i, piece in enumerate(pieces):
            parts.append(_frame(chunk({"content": piece})))
            if flavour == "deepseek" and i == 1:
                parts.append(b": keep-alive\n\n")
            if flavour in AZURE and i == 1:  # an annotation-only frame: a choice without delta
                annotation = {
                    **base,
                    "choices": [
                        {"index": 0, "finish_reason": None, "content_filter_results": FILTER_RESULTS}
                    ],
                }
                parts.append(_frame(annotation))
    if not complete:
        return parts
    usage = usage_for(flavour)
    last_extra: dict[str, Any] = {}
    if flavour == "mistral" or (flavour == "xai" and include_usage):
        last_extra["usage"] = usage
    if flavour == "groq":
        last_extra["x_groq"] = {"id": "req_01fake", "usage": usage}
    parts.append(_frame(chunk({}, finish, **last_extra)))
    if include_usage and flavour not in ("mistral", "xai"):
        parts.append(_frame({**base, "choices": [], "usage": usage}))
    if flavour == "xai":
        parts.append(_frame({**base, "choices": []}))
    parts.append(DONE)
    return parts


def completion(flavour: str, model: str, text: str = " and so on.") -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
    body: dict[str, Any] = {
        "id": f"cmpl-{flavour}-1",
        "object": "text_completion",
        "created": CREATED,
        "model": model,
        "choices": [choice],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    if flavour in AZURE:
        body["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": FILTER_RESULTS}]
        choice["content_filter_results"] = FILTER_RESULTS
    elif flavour == "xai":
        choice["finish_reason"] = "end_turn"  # the legacy value xAI's completions docs mention
        del choice["logprobs"]
    elif flavour == "vllm":
        choice["stop_reason"] = None
    return body


def completion_stream(
    flavour: str, model: str, pieces: Sequence[str] = (" and", " so", " on.")
) -> list[Part]:
    base = {"id": f"cmpl-{flavour}-s", "object": "text_completion", "created": CREATED, "model": model}
    parts: list[Part] = []
    if flavour in AZURE:
        parts.append(
            _frame(
                {
                    "id": "",
                    "object": "",
                    "created": 0,
                    "model": "",
                    "choices": [],
                    "prompt_filter_results": [],
                }
            )
        )
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        finish = ("end_turn" if flavour == "xai" else "stop") if last else None
        parts.append(
            _frame(
                {**base, "choices": [{"index": 0, "text": piece, "logprobs": None, "finish_reason": finish}]}
            )
        )
    return [*parts, DONE]


def vector(index: int, dimensions: int) -> list[float]:
    """Values exact in float32, so a base64 round trip gives them back unchanged."""
    return [(index + 1) * 0.5 + d * 0.25 for d in range(dimensions)]


def embeddings(
    flavour: str, model: str, inputs: Sequence[Any], *, base64_encoded: bool, dimensions: int
) -> Any:
    data = []
    for i, _ in enumerate(inputs):
        values = vector(i, dimensions)
        embedding: Any = values
        if base64_encoded:
            embedding = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    body: dict[str, Any] = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": 5, "total_tokens": 5},
    }
    if flavour == "mistral":
        body["id"] = "emb-fake"
    return body


# ---- error bodies, each in its provider's shape --------------------------------------------------


def azure_content_filter_error() -> Reply:
    return json_reply(
        {
            "error": {
                "message": "The response was filtered due to the prompt triggering Azure OpenAI's content "
                "management policy.",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": {"hate": {"filtered": True, "severity": "high"}},
                },
            }
        },
        400,
    )


def azure_rate_limit_error() -> Reply:
    body = {
        "error": {
            "code": "429",
            "message": "Requests have exceeded token rate limit. Please retry after 2 seconds.",
        }
    }
    return json_reply(body, 429, {"retry-after": "2", "retry-after-ms": "1500"})


def mistral_extra_forbidden_error(field: str = "stream_options") -> Reply:
    detail = [
        {
            "type": "extra_forbidden",
            "loc": ["body", field],
            "msg": "Extra inputs are not permitted",
            "input": {},
        }
    ]
    body = {
        "object": "error",
        "message": {"detail": detail},
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    return json_reply(body, 422)


def groq_tool_use_failed_error() -> Reply:
    body = {
        "error": {
            "message": "Failed to call a function. Please adjust your prompt. "
            "See 'failed_generation' for more details.",
            "type": "invalid_request_error",
            "code": "tool_use_failed",
            "failed_generation": '<function=get_weather>{"city": Paris}</function>',
        }
    }
    return json_reply(body, 400)


def deepseek_insufficient_balance_error() -> Reply:
    body = {
        "error": {
            "message": "Insufficient Balance",
            "type": "unknown_error",
            "param": None,
            "code": "invalid_request_error",
        }
    }
    return json_reply(body, 402)


def xai_error(message: str = "Model grok-4 does not support parameter stop.") -> Reply:
    return json_reply({"code": "invalid-argument", "error": message}, 400)


def vllm_not_found_error(model: str) -> Reply:
    body = {
        "object": "error",
        "message": f"The model `{model}` does not exist.",
        "type": "NotFoundError",
        "param": "model",
        "code": 404,
    }
    return json_reply(body, 404)


def midstream_error_parts(flavour: str, model: str) -> list[Part]:
    """A stream that starts answering, then fails the way `flavour` reports it."""
    keep = chat_stream(flavour, model, pieces=("Hel",), complete=False)
    base = {
        "id": f"chatcmpl-{flavour}-s",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
    }
    if flavour == "mistral":  # the generation failed: finish_reason error
        choice = {"index": 0, "delta": {"content": "lo"}, "finish_reason": "error"}
        return [*keep, _frame({**base, "choices": [choice]}), DONE]
    if flavour == "groq":
        error = {
            "message": "Service unavailable: the model is over capacity",
            "type": "server_error",
            "code": "service_unavailable",
        }
        return [*keep, _frame({**base, "choices": [], "x_groq": {"id": "req_01fake", "error": error}}), DONE]
    code: Any = 500 if flavour == "vllm" else "internal_error"
    error_type = "InternalServerError" if flavour == "vllm" else "server_error"
    return [
        *keep,
        b"data: "
        + dumps(
            {
                "error": {
                    "message": "upstream exploded mid-stream",
                    "type": error_type,
                    "param": None,
                    "code": code,
                }
            }
        )
        + b"\n\n",
    ]


class FakeCompatible(FakeUpstream):
    name = "fake-openai-compatible"

    def default(self, rec: Recorded) -> Reply:
        flavour, _, rest = rec.path.lstrip("/").partition("/")
        if flavour not in FLAVOURS:
            return json_reply(
                {"error": {"message": f"no flavour {flavour!r}", "type": "invalid_request_error"}}, 404
            )
        body = rec.json if isinstance(rec.json, dict) else {}
        model = str(body.get("model"))
        if flavour == "azure-openai":  # the deployment is in the path
            model = rest.split("/deployments/", 1)[-1].split("/", 1)[0]
        stream = body.get("stream") is True
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if rest.endswith("/chat/completions") or rest == "chat/completions":
            if stream:
                return sse_reply(chat_stream(flavour, model, include_usage=include_usage))
            reply = json_reply(chat_completion(flavour, model))
            if flavour == "deepseek":  # keep-alive blank lines before the JSON body
                return Reply(200, reply.headers, [b"\n\n", *reply.parts])
            return reply
        if rest.endswith("/completions") and flavour in NATIVE_COMPLETIONS:
            if stream:
                return sse_reply(completion_stream(flavour, model))
            return json_reply(completion(flavour, model))
        if rest.endswith("/embeddings") and flavour in EMBEDDINGS:
            raw = body.get("input")
            inputs = [raw] if isinstance(raw, str) else list(raw or [])
            dimensions = body.get("output_dimension") if flavour == "mistral" else body.get("dimensions")
            encoded = flavour != "mistral" and body.get("encoding_format") == "base64"
            return json_reply(
                embeddings(flavour, model, inputs, base64_encoded=encoded, dimensions=dimensions or 4)
            )
        return json_reply(
            {"error": {"message": f"Invalid URL (POST {rec.path})", "type": "invalid_request_error"}}, 404
        )
