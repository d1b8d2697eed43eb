"""Every recorded case under tests/fixtures/<dialect>/<case>.yaml, through the whole gateway app.

A case is data (keys below); adding a case needs no code.
- `description`; `endpoint` (default /v1/chat/completions); `upstream_model`; `provider`: extra
  provider settings (vars, unsupported_params, headers, ...);
- `client_request` (model is added);
- what the upstream must receive: `upstream_request` (body), `upstream_path`, `upstream_headers_sent`;
- the upstream's reply: `upstream_status`, `upstream_headers`, and one of `upstream_response` (JSON),
  `upstream_stream` (raw text, e.g. SSE), `upstream_ndjson` (list of objects), `upstream_eventstream`
  (list of `{event: name, data: {...}}` / `{exception: name, data: {...}}`, AWS binary framing);
- what the client must get: `client_status`, `client_headers`, `client_response` or `client_stream`
  (data payloads in order, `"[DONE]"` included), `client_schema` (spec schema to check against).
Client-facing output is also checked against the official OpenAI spec when ../shared/spec is present.
Ids the gateway generates (`random_id(prefix)`) are prefix + a counter from 1 in 24 hex digits per case.
"""

from __future__ import annotations

import array
import base64
import functools
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from gateway import json_codec
from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.registry import Registry, build_registry
from gateway.reload import RegistryHolder
from tests.engine.replay_transport import ReplayTransport
from tests.engine.sequential_ids import sequential_ids
from tests.support.aws_eventstream import event as aws_event
from tests.support.aws_eventstream import exception as aws_exception
from tests.support.spec_check import spec_errors

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CASES = sorted(FIXTURES.glob("*/*.yaml"))
FIXED_CREATED = 1700000000


def _routes(dialect: str, upstream_model: str, provider_extra: dict[str, Any] | None = None) -> str:
    provider = {"dialect": dialect, "base_url": "http://upstream.test/base", "api_key": "sk-provider-key"}
    provider.update(provider_extra or {})
    routes = {
        "providers": {"p": provider},
        "models": {"client-model": [{"provider": "p", "model": upstream_model}]},
    }
    return yaml.safe_dump(routes)


@functools.cache
def _registry(routes: str) -> Registry:
    """One registry per routes text for the whole run (62 for the 241 cases): a registry is immutable,
    and building one (every shipped dialect loaded and compiled) costs ~25 ms."""
    return build_registry(config_from_text(routes, "routes.yaml", {}))


def upstream_headers(case: dict[str, Any]) -> dict[str, str]:
    """The recorded reply's headers; a streamed request's reply is an event stream unless stated."""
    streamed = case["client_request"].get("stream") is True and case.get("upstream_status", 200) < 300
    default = "text/event-stream" if streamed else "application/json"
    return {"Content-Type": default, **(case.get("upstream_headers") or {})}


def upstream_parts(case: dict[str, Any]) -> list[bytes]:
    """The recorded upstream reply as bytes, cut into small pieces to exercise split framing."""
    if "upstream_stream" in case:  # raw text: SSE, or any body
        raw = case["upstream_stream"].encode()
    elif "upstream_ndjson" in case:
        raw = b"".join(json_codec.dumps(line) + b"\n" for line in case["upstream_ndjson"])
    elif "upstream_eventstream" in case:  # [{event|exception: name, data: {...}}]
        raw = b"".join(
            aws_exception(m["exception"], json_codec.dumps(m["data"]))
            if "exception" in m
            else aws_event(m["event"], json_codec.dumps(m["data"]))
            for m in case["upstream_eventstream"]
        )
    elif "upstream_response" in case:
        return [json_codec.dumps(case["upstream_response"])]
    else:
        return []
    return [raw[i : i + 37] for i in range(0, len(raw), 37)]


def _stream_payloads(raw: bytes) -> list[Any]:
    payloads: list[Any] = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), f"not an SSE data frame: {block!r}"
        data = block[len("data: ") :]
        payloads.append(data if data == "[DONE]" else json_codec.loads(data))
    return payloads


def _as_specified(chunk: dict[str, Any], schema: str) -> dict[str, Any]:
    """The spec has no schema for streamed completions; it reuses CreateCompletionResponse, whose
    finish_reason cannot be null. OpenAI's own streams send null until the last chunk, as we do."""
    if schema != "CreateCompletionResponse":
        return chunk
    choices = [{**c, "finish_reason": c["finish_reason"] or "stop"} for c in chunk.get("choices", [])]
    return {**chunk, "choices": choices}


def _embeddings_as_floats(body: Any, schema: str) -> Any:
    """The spec knows embeddings only as float arrays; `encoding_format: base64` answers (OpenAI's
    little-endian float32, which the SDK asks for by default) are checked decoded."""
    if schema != "CreateEmbeddingResponse" or not isinstance(body, dict):
        return body
    if not isinstance(body.get("data"), list):
        return body
    data = [
        {**item, "embedding": list(array.array("f", base64.b64decode(item["embedding"])))}
        if isinstance(item, dict) and isinstance(item.get("embedding"), str)
        else item
        for item in body["data"]
    ]
    return {**body, "data": data}


def _fix_created(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("created"), int):
        return {**value, "created": FIXED_CREATED}
    return value


@pytest.mark.parametrize("case_path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
async def test_fixture_case(case_path: Path, aiohttp_client: Any) -> None:
    case = yaml.safe_load(case_path.read_text())
    dialect = case_path.parent.name
    routes = _routes(dialect, case.get("upstream_model", "upstream-model"), case.get("provider"))
    registry = _registry(routes)
    transport = ReplayTransport(
        status=case.get("upstream_status", 200),
        headers=upstream_headers(case),
        parts=upstream_parts(case),
    )
    app = create_app(RegistryHolder("routes.yaml", registry), transports={"http": transport})
    client: TestClient[Any, Any] = await aiohttp_client(app)
    request = {"model": "client-model", **case["client_request"]}
    with sequential_ids():  # generated ids (random_id) count from 1 in each case
        response = await client.post(case.get("endpoint", "/v1/chat/completions"), json=request)
        raw = await response.read()

    if "upstream_request" in case:
        assert transport.sent, "the gateway sent nothing upstream"
        assert transport.sent[0].body == case["upstream_request"]
    if "upstream_path" in case:
        assert transport.sent[0].url == "http://upstream.test/base" + case["upstream_path"]
    for name, value in (case.get("upstream_headers_sent") or {}).items():
        assert transport.sent[0].headers.get(name) == value

    assert response.status == case.get("client_status", 200), raw.decode()
    for name, value in (case.get("client_headers") or {}).items():
        assert response.headers.get(name) == value
    if "client_stream" in case:
        payloads = [_fix_created(p) for p in _stream_payloads(raw)]
        assert payloads == case["client_stream"]
        for chunk in payloads:
            if isinstance(chunk, dict):
                chunk_schema = case.get("client_schema", "CreateChatCompletionStreamResponse")
                schema = "ErrorResponse" if "error" in chunk else chunk_schema
                assert spec_errors(schema, _as_specified(chunk, schema)) == []
    if "client_response" in case:
        body = _fix_created(json_codec.loads(raw))
        assert body == case["client_response"]
        schema = case.get("client_schema") or (
            "ErrorResponse" if response.status >= 400 else "CreateChatCompletionResponse"
        )
        assert spec_errors(schema, _embeddings_as_floats(body, schema)) == []
