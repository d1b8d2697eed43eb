"""Span attribute names (OpenTelemetry's GenAI, HTTP and server conventions, and the gateway's own)
and the values read from what a request learned on its way (its RequestRecord)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span

from gateway import json_codec
from gateway.proxy.request_record import RequestRecord

OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
ERROR_TYPE = "error.type"
STATUS_CODE = "http.response.status_code"
METHOD = "http.request.method"
ROUTE = "http.route"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ALIAS = "gateway.alias"
TARGET = "gateway.target"  # the route target's provider (as routes.yaml names it)
ATTEMPT = "gateway.attempt"  # 1 for a request's first upstream attempt, counting retries and fallbacks
CACHE_HIT = "gateway.cache_hit"
KEY = "gateway.key"  # the gateway key's name, never the key
REQUEST_ID = "gateway.request_id"
STREAM = "gateway.stream"
STREAM_OUTCOME = "gateway.stream_outcome"
COST = "gateway.cost_usd"

# the GenAI conventions' operation name of each dialect operation (the others are not GenAI calls)
GEN_AI_OPERATIONS = {"chat": "chat", "completions": "text_completion", "embeddings": "embeddings"}

CONTENT_CAP = 16 * 1024  # characters of message content on a span, when content is captured


# the stream outcomes that are not an error of the call (the client leaving is its own choice)
_NOT_ERRORS = frozenset(("ok", "client_closed"))


def record_usage(span: Span, usage: Mapping[str, Any] | None) -> None:
    """Tokens from the canonical usage the gateway counted (a stream's included)."""
    if not isinstance(usage, Mapping):
        return
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if isinstance(prompt, int):
        span.set_attribute(INPUT_TOKENS, prompt)
    if isinstance(completion, int):
        span.set_attribute(OUTPUT_TOKENS, completion)
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
    if isinstance(cached, int) and cached:
        span.set_attribute(CACHE_READ_TOKENS, cached)


def stream_error(access: RequestRecord) -> str | None:
    """A started stream that did not end well: how it ended (an upstream error event, a stall, ...)."""
    outcome = access.stream_outcome
    return outcome if outcome is not None and outcome not in _NOT_ERRORS else None


def capped(value: Any) -> str:
    """JSON of `value`, cut at CONTENT_CAP characters (a span is not a transcript store)."""
    text = value if isinstance(value, str) else json_codec.dumps_str(value)
    return text if len(text) <= CONTENT_CAP else text[:CONTENT_CAP] + "…"
