"""Every recorded case under tests/fixtures/<dialect>/<case>.yaml, through the whole gateway app.

A case is data: the client request; what the upstream must receive (body, path, headers); the
upstream's reply (JSON body, raw SSE text, or an error with a status); what the client must get
(status, body or stream payloads, headers). Adding a case needs no code. Client-facing output is
also checked against the official OpenAI spec when ../shared/spec is present.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from gateway import json_codec
from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.reload import RegistryHolder
from tests.engine.replay_transport import ReplayTransport
from tests.support.spec_check import spec_errors

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CASES = sorted(FIXTURES.glob("*/*.yaml"))
FIXED_CREATED = 1700000000


def _routes(dialect: str, upstream_model: str) -> str:
    return f"""
providers:
  p: {{dialect: {dialect}, base_url: "http://upstream.test/base", api_key: sk-provider-key}}
models:
  client-model: [{{provider: p, model: {upstream_model}}}]
"""


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


def _fix_created(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("created"), int):
        return {**value, "created": FIXED_CREATED}
    return value


@pytest.mark.parametrize("case_path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
async def test_fixture_case(case_path: Path, aiohttp_client: Any) -> None:
    case = yaml.safe_load(case_path.read_text())
    dialect = case_path.parent.name
    registry = build_registry(
        config_from_text(_routes(dialect, case.get("upstream_model", "upstream-model")), "routes.yaml", {})
    )
    reply = case.get("upstream_stream")
    transport = ReplayTransport(
        status=case.get("upstream_status", 200),
        headers=case.get("upstream_headers", {}),
        parts=(
            [
                reply.encode()[i : i + 37] for i in range(0, len(reply.encode()), 37)
            ]  # split mid-line on purpose
            if reply is not None
            else [json_codec.dumps(case["upstream_response"])]
            if "upstream_response" in case
            else []
        ),
    )
    app = create_app(RegistryHolder("routes.yaml", registry), transports={"http": transport})
    client: TestClient[Any, Any] = await aiohttp_client(app)
    request = {"model": "client-model", **case["client_request"]}
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
        assert spec_errors(schema, body) == []
