"""An upstream that echoes the request's headers in its error never hands the provider's key to the
client or the logs: error replies and stream error events, openai and anthropic dialects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.reload import RegistryHolder
from tests.support.fake_upstreams import (
    FakeAnthropic,
    FakeOpenAI,
    Recorded,
    Reply,
    anthropic_event,
    json_reply,
    openai_sse,
    sse_reply,
)
from tests.support.routes import ANTHROPIC_ALIAS, ANTHROPIC_KEY, OPENAI_ALIAS, OPENAI_KEY, routes

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def _echo(rec: Recorded) -> str:
    """The request's headers the way upstreams quote them back: as lines, and as JSON."""
    lines = "\n".join(f"{name}: {value}" for name, value in rec.headers.items())
    return f"Request rejected. Headers were:\n{lines}\nAs JSON: {rec.headers}"


def openai_echo(rec: Recorded) -> Reply:
    error = {
        "message": _echo(rec),
        "type": "invalid_request_error",
        "param": rec.headers.get("authorization"),
    }
    return json_reply({"error": {**error, "code": rec.headers.get("authorization")}}, 401)


def anthropic_echo(rec: Recorded) -> Reply:
    error = {"type": "authentication_error", "message": _echo(rec)}
    return json_reply(
        {"type": "error", "error": error, "request": {"x-api-key": rec.headers["x-api-key"]}}, 401
    )


def openai_stream_echo(rec: Recorded) -> Reply:
    return sse_reply([openai_sse({"error": {"message": _echo(rec), "type": "server_error"}})])


def anthropic_stream_echo(rec: Recorded) -> Reply:
    error = {"type": "overloaded_error", "message": _echo(rec)}
    return sse_reply([anthropic_event("error", {"type": "error", "error": error})])


@pytest.fixture
async def client(
    fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> AsyncIterator[TestClient[Any, Any]]:
    import yaml

    text = yaml.safe_dump(routes(fake_openai.url, fake_anthropic.url))
    registry = build_registry(config_from_text(text, "routes.yaml", {}))
    async with TestClient(TestServer(create_app(RegistryHolder("routes.yaml", registry)))) as test_client:
        yield test_client


CASES = [
    ("openai", OPENAI_ALIAS, OPENAI_KEY, openai_echo, False),
    ("openai", OPENAI_ALIAS, OPENAI_KEY, openai_echo, True),
    ("openai", OPENAI_ALIAS, OPENAI_KEY, openai_stream_echo, True),
    ("anthropic", ANTHROPIC_ALIAS, ANTHROPIC_KEY, anthropic_echo, False),
    ("anthropic", ANTHROPIC_ALIAS, ANTHROPIC_KEY, anthropic_echo, True),
    ("anthropic", ANTHROPIC_ALIAS, ANTHROPIC_KEY, anthropic_stream_echo, True),
]


@pytest.mark.parametrize(
    ("dialect", "alias", "key", "echo", "stream"),
    CASES,
    ids=[f"{c[0]}-{c[3].__name__}-{'stream' if c[4] else 'json'}" for c in CASES],
)
async def test_the_provider_key_reaches_neither_client_nor_logs(
    client: TestClient[Any, Any],
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    dialect: str,
    alias: str,
    key: str,
    echo: Callable[[Recorded], Reply],
    stream: bool,
) -> None:
    fake = fake_openai if dialect == "openai" else fake_anthropic
    fake.enqueue(echo)
    with structlog.testing.capture_logs() as events:
        response = await client.post("/v1/chat/completions", json={"model": alias, **CHAT, "stream": stream})
        raw = await response.read()
    assert key in repr(fake.only().headers)  # the upstream did get it, and echoed it
    assert response.status >= 400 or stream
    assert raw, "the client got an answer"
    assert key.encode() not in raw
    assert key not in repr(dict(response.headers))
    assert key not in repr(events)
    assert b"[REDACTED]" in raw  # the echo is still there, without the key


async def test_an_error_rule_that_fails_on_the_echo_logs_it_redacted(
    fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    """JMESPath's type errors quote the value they got: here, the whole echoed body."""
    import yaml

    config = routes(fake_openai.url, fake_anthropic.url)
    config["dialects"] = {"leaky": {"extends": "openai", "errors": {"error": {"message": "abs(text)"}}}}
    config["providers"]["leaky"] = {
        "dialect": "leaky",
        "base_url": f"{fake_openai.url}/v1",
        "api_key": OPENAI_KEY,
    }
    config["models"]["leaky"] = [{"provider": "leaky", "model": "m"}]
    registry = build_registry(config_from_text(yaml.safe_dump(config), "routes.yaml", {}))
    fake_openai.enqueue(openai_echo)
    async with TestClient(TestServer(create_app(RegistryHolder("routes.yaml", registry)))) as client:
        with structlog.testing.capture_logs() as events:
            response = await client.post("/v1/chat/completions", json={"model": "leaky", **CHAT})
            raw = await response.read()
    failed = [e for e in events if e["event"] == "error_rule_failed"]
    assert len(failed) == 1 and "[REDACTED]" in failed[0]["error"]
    assert OPENAI_KEY not in repr(events)
    assert response.status == 401 and OPENAI_KEY.encode() not in raw
