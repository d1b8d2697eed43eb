"""Stream usage is always counted and shown only when asked, in every dialect, through the whole app.

Every recorded stream case (tests/fixtures/<dialect>/) is replayed once more with the client's
`stream_options` left out. The client must then get no usage at all (no `choices: []` usage chunk, no
`usage` member: what OpenAI sends without `include_usage`), while the gateway still counts what the
upstream reported (the access log's `usage`, which the key's `tpm`, the token metrics and the log
read): the usage the case shows a client that asked. The upstream is asked the same either way.
Then the counting itself, end to end: a key's `tpm` and the token metrics see a stream whose client
did not ask for usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from aiohttp.test_utils import TestClient, TestServer

from gateway import json_codec
from gateway.app import create_app
from gateway.config.loader import config_from_text, key_digest
from gateway.engine.dialect_sources import resolve_dialects
from gateway.engine.registry import build_registry
from gateway.reload import RegistryHolder
from gateway.upstream.mock import MockTransport
from tests.engine.replay_transport import ReplayTransport
from tests.engine.sequential_ids import sequential_ids
from tests.engine.test_dialect_fixtures import FIXTURES, upstream_headers, upstream_parts
from tests.observability.exposition import parse, value

STREAM_CASES = sorted(
    path
    for path in FIXTURES.glob("*/*.yaml")
    if (yaml.safe_load(path.read_text())["client_request"].get("stream") is True)
)


def _case(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = yaml.safe_load(path.read_text())
    return case


def _asked(request: dict[str, Any]) -> bool:
    options = request.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _shown_usage(stream: list[Any]) -> Any:
    """The usage a client that asked was shown (the last one the stream carried), or None."""
    usages = [c["usage"] for c in stream if isinstance(c, dict) and c.get("usage") is not None]
    return usages[-1] if usages else None


def _without_usage(stream: list[Any]) -> list[Any]:
    """What a client that did not ask gets: the same stream without the usage chunk or any usage member."""
    return [
        {k: v for k, v in c.items() if k != "usage"} if isinstance(c, dict) else c
        for c in stream
        if not (isinstance(c, dict) and c.get("usage") is not None and c.get("choices") == [])
    ]


def _routes(dialect: str, case: dict[str, Any]) -> str:
    provider = {"dialect": dialect, "base_url": "http://upstream.test/base", "api_key": "sk-provider-key"}
    provider.update(case.get("provider") or {})
    model = case.get("upstream_model", "upstream-model")
    return yaml.safe_dump(
        {"providers": {"p": provider}, "models": {"client-model": [{"provider": "p", "model": model}]}}
    )


def _payloads(raw: bytes) -> list[Any]:
    payloads: list[Any] = []
    for block in raw.decode().split("\n\n"):
        if block.strip():
            data = block.removeprefix("data: ")
            payloads.append(data if data == "[DONE]" else json_codec.loads(data))
    return payloads


def _fix_created(value: Any) -> Any:
    return {**value, "created": 1700000000} if isinstance(value, dict) and "created" in value else value


async def _replay(
    path: Path, request: dict[str, Any], aiohttp_client: Any
) -> tuple[list[Any], Any, ReplayTransport]:
    """The client's stream, the usage the gateway counted (access log) and what the upstream was sent."""
    case = _case(path)
    registry = build_registry(config_from_text(_routes(path.parent.name, case), "routes.yaml", {}))
    transport = ReplayTransport(
        status=case.get("upstream_status", 200), headers=upstream_headers(case), parts=upstream_parts(case)
    )
    app = create_app(RegistryHolder("routes.yaml", registry), transports={"http": transport})
    client = await aiohttp_client(app)
    with sequential_ids(), structlog.testing.capture_logs() as logs:
        response = await client.post(case.get("endpoint", "/v1/chat/completions"), json=request)
        raw = await response.read()
    assert response.status == case.get("client_status", 200), raw.decode()
    access = [entry for entry in logs if entry["event"] == "request"]
    assert len(access) == 1
    return [_fix_created(p) for p in _payloads(raw)], access[0].get("usage"), transport


@pytest.mark.parametrize("case_path", STREAM_CASES, ids=[f"{p.parent.name}/{p.stem}" for p in STREAM_CASES])
async def test_a_client_that_did_not_ask_gets_no_usage_and_the_gateway_counts_it(
    case_path: Path, aiohttp_client: Any
) -> None:
    case = _case(case_path)
    request = {"model": "client-model", **case["client_request"]}
    request.pop("stream_options", None)
    stream, counted, transport = await _replay(case_path, request, aiohttp_client)

    assert [c for c in stream if isinstance(c, dict) and "usage" in c] == []
    if _asked(case["client_request"]):
        assert stream == _without_usage(case["client_stream"])
        assert counted == _shown_usage(case["client_stream"])
        if "upstream_request" in case:  # the upstream is asked for usage whether the client asked or not
            assert transport.sent[0].body == case["upstream_request"]
    elif "client_stream" in case:
        assert stream == case["client_stream"]


@pytest.mark.parametrize(
    "case_path",
    [p for p in STREAM_CASES if _asked(_case(p)["client_request"])],
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
async def test_a_client_that_asked_is_shown_what_the_gateway_counts(
    case_path: Path, aiohttp_client: Any
) -> None:
    case = _case(case_path)
    stream, counted, _ = await _replay(
        case_path, {"model": "client-model", **case["client_request"]}, aiohttp_client
    )
    assert stream == case["client_stream"]
    assert counted == _shown_usage(stream)


def test_every_dialect_has_a_stream_case_that_asks_for_usage() -> None:
    """So that the two tests above cover every dialect that streams (all have chat; the mock one
    speaks the openai dialect's wire, and is counted below)."""
    asked = {p.parent.name for p in STREAM_CASES if _asked(_case(p)["client_request"])}
    streaming = {
        name
        for name, (_, spec) in resolve_dialects({}).items()
        if name != "mock" and spec["operations"].get("chat")
    }
    assert streaming - asked == set()


# ---- counting, end to end: tpm, metrics and the access log ----------------------------------------

KEY = "gw-usage-0123456789abcdef"
SCRAPER = "gw-scraper-0123456789abcd"
TPM = 10_000
ROUTES = f"""
auth:
  keys:
    - {{name: counted, hash: "{key_digest(KEY)}", tpm: {TPM}}}
    - {{name: scraper, hash: "{key_digest(SCRAPER)}", metrics: true, models: []}}
providers:
  mock: {{dialect: mock, transport: mock}}
  claude: {{dialect: anthropic, base_url: "http://upstream.test", api_key: k}}
models:
  mock: [{{provider: mock, model: m}}]
  claude: [{{provider: claude, model: claude-x}}]
"""
MESSAGES = [{"role": "user", "content": "one two three four five six"}]
ANTHROPIC_STREAM = FIXTURES / "anthropic" / "stream_text.yaml"


@pytest.mark.parametrize(
    "model",
    [pytest.param("mock", id="passthrough"), pytest.param("claude", id="translated")],
)
async def test_tpm_metrics_and_the_access_log_count_a_stream_whose_client_did_not_ask(model: str) -> None:
    case = _case(ANTHROPIC_STREAM)
    replay = ReplayTransport(headers=upstream_headers(case), parts=upstream_parts(case))
    registry = build_registry(config_from_text(ROUTES, "routes.yaml", {}))
    app = create_app(
        RegistryHolder("routes.yaml", registry), transports={"http": replay, "mock": MockTransport()}
    )
    auth = {"Authorization": f"Bearer {KEY}"}
    async with TestClient(TestServer(app)) as client:
        with structlog.testing.capture_logs() as logs:
            streamed = await client.post(
                "/v1/chat/completions",
                json={"model": model, "messages": MESSAGES, "stream": True},
                headers=auth,
            )
            body = await streamed.read()
        assert streamed.status == 200 and b'"usage"' not in body
        used = next(entry for entry in logs if entry["event"] == "request")["usage"]["total_tokens"]
        assert used > 0
        # the stream's tokens were spent: the next request sees them gone from the key's minute
        after = await client.post(
            "/v1/chat/completions", json={"model": model, "messages": MESSAGES, "stream": True}, headers=auth
        )
        await after.read()
        assert int(after.headers["x-ratelimit-remaining-tokens"]) == TPM - used
        metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPER}"})
        samples = parse(await metrics.text())
    provider = "mock" if model == "mock" else "claude"
    tokens_out = value(samples, "gateway_tokens_total", model=model, provider=provider, direction="out")
    assert tokens_out is not None and tokens_out > 0
