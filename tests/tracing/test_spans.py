"""Spans of traced requests, read from the SDK's in-memory exporter: a SERVER span per request, a CLIENT
span per upstream attempt, with the GenAI conventions' attributes and the gateway's own; the client's
trace continued and carried upstream; no message content unless asked for; never a secret."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import structlog

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed (pip install -e '.[otel]')")

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from gateway.app_keys import TRANSPORTS
from gateway.tracing.client_span import TracedTransport
from gateway.upstream.transport import HttpTransport
from tests.support.fake_upstreams import (
    ABORT,
    FakeOpenAI,
    json_reply,
    openai_chat_chunks,
    openai_error,
    openai_usage,
    sse_reply,
)
from tests.support.gates import Gate
from tests.support.routes import (
    EMBED_ALIAS,
    EMBED_UPSTREAM_MODEL,
    MOCK_ALIAS,
    OPENAI_ALIAS,
    OPENAI_UPSTREAM_MODEL,
    UNREACHABLE_ALIAS,
)
from tests.tracing.rig import AUTH, RETRY_ALIAS, SECRETS, Traced, traced_client

CHAT = {"messages": [{"role": "user", "content": "a secret prompt"}]}
CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def without_price(found: dict[str, Any]) -> dict[str, Any]:
    """The attributes but the cost (there when the model has a price: the price table's business)."""
    return {name: value for name, value in found.items() if name != "gateway.cost_usd"}


def no_secret_in(spans: list[ReadableSpan]) -> None:
    text = repr([(span.name, attrs(span), [dict(e.attributes or {}) for e in span.events]) for span in spans])
    for secret in SECRETS:
        assert secret not in text


async def test_a_chat_request_is_a_server_span_with_one_client_span(
    traced: Traced, fake_openai: FakeOpenAI
) -> None:
    response = await traced.client.post(
        "/v1/chat/completions", json={"model": OPENAI_ALIAS, **CHAT}, headers=AUTH
    )
    assert response.status == 200
    server, client = traced.one("SERVER"), traced.one("CLIENT")
    assert server.name == f"chat {OPENAI_ALIAS}"
    assert client.name == f"chat {OPENAI_UPSTREAM_MODEL}"
    assert client.parent is not None and client.parent.span_id == server.context.span_id
    assert client.context.trace_id == server.context.trace_id
    usage = {"gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 7}
    assert without_price(attrs(server)) == {
        "http.request.method": "POST",
        "http.route": "/v1/chat/completions",
        "http.response.status_code": 200,
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": OPENAI_ALIAS,
        "gen_ai.provider.name": "openai",
        "gateway.alias": OPENAI_ALIAS,
        "gateway.target": "openai-fake",
        "gateway.key": "team-a",
        "gateway.request_id": response.headers["x-request-id"],
        "gateway.stream": False,
        "gen_ai.response.model": OPENAI_UPSTREAM_MODEL,  # (the reply's own `model`)
        "gen_ai.response.id": "chatcmpl-fake0001",
        "gen_ai.response.finish_reasons": ("stop",),
        **usage,
    }
    port = int(fake_openai.url.rsplit(":", 1)[1])
    assert attrs(client) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": OPENAI_UPSTREAM_MODEL,
        "gateway.target": "openai-fake",
        "gateway.attempt": 1,
        "server.address": "127.0.0.1",
        "server.port": port,
        "http.response.status_code": 200,
        **usage,
    }
    assert server.status.status_code is StatusCode.UNSET and client.status.status_code is StatusCode.UNSET
    no_secret_in(traced.spans())


async def test_embeddings_are_their_operation(traced: Traced) -> None:
    body = {"model": EMBED_ALIAS, "input": ["one", "two"]}
    response = await traced.client.post("/v1/embeddings", json=body, headers=AUTH)
    assert response.status == 200
    assert traced.one("SERVER").name == f"embeddings {EMBED_ALIAS}"
    client = traced.one("CLIENT")
    assert client.name == f"embeddings {EMBED_UPSTREAM_MODEL}"
    assert attrs(client)["gen_ai.operation.name"] == "embeddings"


async def test_a_stream_span_ends_with_the_stream_and_has_its_usage(
    traced: Traced, fake_openai: FakeOpenAI
) -> None:
    chunks = openai_chat_chunks(include_usage=True, usage=openai_usage(30, 5, cached=10))
    held = Gate("the end of the stream")
    fake_openai.enqueue(sse_reply([*chunks[:2], held, *chunks[2:]]))
    body = {"model": OPENAI_ALIAS, "stream": True, **CHAT}
    async with traced.client.post("/v1/chat/completions", json=body, headers=AUTH) as response:
        assert response.status == 200
        assert await response.content.readuntil(b"\n\n")  # the stream has started...
        assert traced.spans() == []  # ...and no span ends before it does
        held.set()
        await response.read()
    server, client = traced.one("SERVER"), traced.one("CLIENT")
    for span in (server, client):
        assert attrs(span)["gen_ai.usage.input_tokens"] == 30
        assert attrs(span)["gen_ai.usage.output_tokens"] == 5
        assert attrs(span)["gen_ai.usage.cache_read.input_tokens"] == 10
        assert attrs(span)["gateway.stream_outcome"] == "ok"
        assert "error.type" not in attrs(span)
    assert attrs(server)["gateway.stream"] is True
    # read from the relayed chunks (an OpenAI client's stream goes out as the upstream sent it)
    assert attrs(server)["gen_ai.response.model"] == OPENAI_UPSTREAM_MODEL
    assert attrs(server)["gen_ai.response.finish_reasons"] == ("stop",)
    # the client span covers the relay: it ends after the server span's last byte was written
    assert client.end_time is not None and server.end_time is not None
    assert client.end_time <= server.end_time


async def test_a_retry_is_two_client_spans(traced: Traced, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(openai_error(500, "boom", "server_error"))
    response = await traced.client.post(
        "/v1/chat/completions", json={"model": RETRY_ALIAS, **CHAT}, headers=AUTH
    )
    assert response.status == 200
    first, second = traced.clients()
    assert (attrs(first)["gateway.attempt"], attrs(second)["gateway.attempt"]) == (1, 2)
    assert attrs(first)["http.response.status_code"] == 500
    assert attrs(first)["error.type"] == "500"
    assert first.status.status_code is StatusCode.ERROR
    assert "error.type" not in attrs(second) and attrs(second)["http.response.status_code"] == 200
    server = traced.one("SERVER")
    assert first.parent is not None and second.parent is not None
    assert first.parent.span_id == second.parent.span_id == server.context.span_id
    assert "error.type" not in attrs(server)
    # each attempt sent its own span as the parent upstream
    sent = [rec.headers["traceparent"].split("-")[2] for rec in fake_openai.requests]
    assert sent == [format(first.context.span_id, "016x"), format(second.context.span_id, "016x")]


async def test_an_unreachable_upstream_is_an_error_type(traced: Traced) -> None:
    body = {"model": UNREACHABLE_ALIAS, **CHAT}
    response = await traced.client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert response.status == 502
    client, server = traced.one("CLIENT"), traced.one("SERVER")
    assert attrs(client)["error.type"] == "upstream_unreachable"
    assert "http.response.status_code" not in attrs(client)
    assert client.status.status_code is StatusCode.ERROR
    assert attrs(server)["error.type"] == "upstream_unreachable"
    assert attrs(server)["http.response.status_code"] == 502
    assert server.status.status_code is StatusCode.ERROR


async def test_a_client_error_names_its_code_without_failing_the_span(traced: Traced) -> None:
    response = await traced.client.post("/v1/chat/completions", json={"model": "nope", **CHAT}, headers=AUTH)
    assert response.status == 404
    server = traced.one("SERVER")
    assert server.name == "POST /v1/chat/completions"  # not a model a route serves: not in the name
    assert attrs(server)["gen_ai.request.model"] == "nope" and "gateway.alias" not in attrs(server)
    assert attrs(server)["error.type"] == "model_not_found"
    assert server.status.status_code is StatusCode.UNSET  # a 4xx is the client's, not the server's failure
    assert traced.clients() == []


async def test_the_clients_trace_is_continued_and_sent_upstream(
    traced: Traced, fake_openai: FakeOpenAI
) -> None:
    headers = {**AUTH, "traceparent": TRACEPARENT, "tracestate": "vendor=opaque"}
    response = await traced.client.post(
        "/v1/chat/completions", json={"model": OPENAI_ALIAS, **CHAT}, headers=headers
    )
    assert response.status == 200
    server, client = traced.one("SERVER"), traced.one("CLIENT")
    assert format(server.context.trace_id, "032x") == CLIENT_TRACE
    assert server.parent is not None and format(server.parent.span_id, "016x") == CLIENT_SPAN
    assert server.parent.is_remote
    (sent,) = fake_openai.requests
    assert sent.headers["traceparent"] == f"00-{CLIENT_TRACE}-{client.context.span_id:016x}-01"
    assert sent.headers["tracestate"] == "vendor=opaque"


async def test_no_message_content_by_default(traced: Traced) -> None:
    response = await traced.client.post(
        "/v1/chat/completions", json={"model": OPENAI_ALIAS, **CHAT}, headers=AUTH
    )
    assert response.status == 200
    for span in traced.spans():
        assert not any(
            name.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.system")) for name in attrs(span)
        )
        assert "a secret prompt" not in repr(attrs(span))
        assert span.events == ()


async def test_message_content_when_asked_for_capped(fake_openai: FakeOpenAI) -> None:
    client, exporter = await traced_client(fake_openai.url, capture_content=True)
    fake_openai.enqueue(json_reply({"choices": [], "usage": openai_usage(), "padding": "x" * 40_000}))
    async with client:
        body = {"model": OPENAI_ALIAS, "messages": [{"role": "user", "content": "hello " * 5000}]}
        response = await client.post("/v1/chat/completions", json=body, headers=AUTH)
        assert response.status == 200
    (server,) = [span for span in exporter.get_finished_spans() if span.kind.name == "SERVER"]
    given, answered = attrs(server)["gen_ai.input.messages"], attrs(server)["gen_ai.output.messages"]
    assert given.startswith('[{"role":"user","content":"hello hello')
    assert len(given) == len(answered) == 16 * 1024 + 1 and given.endswith("…")


async def test_probes_are_not_traced(traced: Traced) -> None:
    statuses = [(await traced.client.get(path)).status for path in ("/", "/healthz", "/readyz", "/metrics")]
    assert statuses == [200, 200, 200, 401]  # (/metrics wants the admin key: still untraced)
    assert traced.spans() == []


async def test_without_tracing_no_traceparent_goes_upstream(fake_openai: FakeOpenAI) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from gateway.app import create_app
    from tests.tracing.rig import holder

    app = create_app(holder(fake_openai.url))
    assert not app.middlewares  # (the edge wraps each route; tracing off: nothing inside it)
    async with TestClient(TestServer(app)) as client:
        headers = {**AUTH, "traceparent": TRACEPARENT}
        response = await client.post(
            "/v1/chat/completions", json={"model": OPENAI_ALIAS, **CHAT}, headers=headers
        )
        assert response.status == 200
        assert not any(isinstance(t, TracedTransport) for t in client.app[TRANSPORTS].values())
    (sent,) = fake_openai.requests
    assert "traceparent" not in sent.headers


async def test_a_stream_cut_by_its_upstream_fails_both_spans(traced: Traced, fake_openai: FakeOpenAI) -> None:
    chunks = openai_chat_chunks()
    fake_openai.enqueue(sse_reply([*chunks[:2], ABORT]))
    body = {"model": OPENAI_ALIAS, "stream": True, **CHAT}
    response = await traced.client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert response.status == 200
    await response.read()
    server, client = traced.one("SERVER"), traced.one("CLIENT")
    for span in (server, client):
        assert attrs(span)["gateway.stream_outcome"] in {"truncated", "broken"}
        assert attrs(span)["error.type"] == attrs(span)["gateway.stream_outcome"]
        assert span.status.status_code is StatusCode.ERROR
    assert attrs(server)["http.response.status_code"] == 200


async def test_a_client_that_leaves_mid_stream_ends_both_spans(
    traced: Traced, fake_openai: FakeOpenAI
) -> None:
    chunks = openai_chat_chunks()
    held = Gate("never released by the test (reset releases it)")
    fake_openai.enqueue(sse_reply([*chunks[:2], held, *chunks[2:]]))
    body = {"model": OPENAI_ALIAS, "stream": True, **CHAT}
    ended = asyncio.Event()
    exporter = traced.exporter
    export = exporter.export

    def exported(spans: Any) -> Any:
        result = export(spans)
        if len(exporter.get_finished_spans()) == 2:
            ended.set()
        return result

    exporter.export = exported  # type: ignore[method-assign]
    response = await traced.client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert await response.content.readuntil(b"\n\n")
    response.close()  # the client goes away while the upstream holds the stream
    async with asyncio.timeout(10):
        await ended.wait()
    server, client = traced.one("SERVER"), traced.one("CLIENT")
    assert attrs(server)["error.type"] == "client_closed"
    assert attrs(server)["http.response.status_code"] == 499
    assert attrs(client)["error.type"] == "client_closed"
    assert StatusCode.ERROR not in (
        server.status.status_code,
        client.status.status_code,
    )  # the client's choice


async def test_another_protocols_request_is_its_operation(traced: Traced, fake_openai: FakeOpenAI) -> None:
    """A Messages API client (translated to the OpenAI upstream): a chat, and the traceparent goes
    upstream all the same; the model that answered and why it stopped come from the canonical reply
    in between."""
    body = {"model": OPENAI_ALIAS, "max_tokens": 100, **CHAT}
    headers = {"x-api-key": AUTH["Authorization"].removeprefix("Bearer "), "anthropic-version": "2023-06-01"}
    response = await traced.client.post("/v1/messages", json=body, headers=headers)
    assert response.status == 200, await response.text()
    server, client = traced.one("SERVER"), traced.one("CLIENT")
    assert (server.name, client.name) == (f"chat {OPENAI_ALIAS}", f"chat {OPENAI_UPSTREAM_MODEL}")
    assert attrs(server)["http.route"] == "/v1/messages"
    assert attrs(server)["gen_ai.response.model"] == OPENAI_UPSTREAM_MODEL
    assert attrs(server)["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs(server)["gen_ai.usage.input_tokens"] == 12
    (sent,) = fake_openai.requests
    assert sent.headers["traceparent"].split("-")[2] == format(client.context.span_id, "016x")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_a_relayed_replys_model_and_end_are_read_by_its_protocols_rule(
    traced: Traced, fake_openai: FakeOpenAI, stream: bool
) -> None:
    """A Responses API client relayed to an upstream that speaks it: the reply (or the stream's last
    event) is the protocol's own, summarized by its `passthrough.summary` rule."""
    done = {
        "id": "resp_1",
        "object": "response",
        "model": "gpt-5-2025-08-07",
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "output": [],
        "usage": {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10},
    }
    if stream:
        started = {**done, "status": "in_progress", "incomplete_details": None}
        events = [
            ("response.created", {"type": "response.created", "sequence_number": 0, "response": started}),
            ("response.incomplete", {"type": "response.incomplete", "sequence_number": 1, "response": done}),
        ]
        fake_openai.enqueue(
            sse_reply([f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events])
        )
    else:
        fake_openai.enqueue(json_reply(done))
    body = {"model": OPENAI_ALIAS, "input": "Hi", "stream": stream}
    response = await traced.client.post("/v1/responses", json=body, headers=AUTH)
    assert response.status == 200, await response.text()
    await response.read()
    server = traced.one("SERVER")
    assert attrs(server)["gen_ai.response.model"] == "gpt-5-2025-08-07"
    assert attrs(server)["gen_ai.response.finish_reasons"] == ("max_output_tokens",)


async def test_traced_attempts_do_not_fill_the_header_block_cache(traced: Traced) -> None:
    """Each attempt's traceparent is its own: its header block is encoded, not kept (a cache of blocks
    that are never asked for again would only push out the ones that are)."""
    for _ in range(3):
        response = await traced.client.post(
            "/v1/chat/completions", json={"model": OPENAI_ALIAS, **CHAT}, headers=AUTH
        )
        assert response.status == 200
    http = traced.client.app[TRANSPORTS]["http"]
    assert isinstance(http, TracedTransport) and isinstance(http.inner, HttpTransport)
    assert http.inner._header_blocks == {}


async def test_a_client_that_does_not_sample_is_followed(traced: Traced, fake_openai: FakeOpenAI) -> None:
    """The default sampler follows the client's decision (`parentbased_always_on`): its trace goes on
    upstream, unsampled, and no span is recorded."""
    headers = {**AUTH, "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-00"}
    response = await traced.client.post(
        "/v1/chat/completions", json={"model": OPENAI_ALIAS, **CHAT}, headers=headers
    )
    assert response.status == 200
    assert traced.spans() == []
    (sent,) = fake_openai.requests
    version, trace_id, _, flags = sent.headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", CLIENT_TRACE, "00")


async def test_the_server_span_says_what_the_access_event_says(traced: Traced) -> None:
    """Cost and cache verdict, when the request has them, are the access event's own values."""
    with structlog.testing.capture_logs() as logs:
        response = await traced.client.post(
            "/v1/chat/completions", json={"model": MOCK_ALIAS, **CHAT}, headers=AUTH
        )
        assert response.status == 200
    (event,) = [entry for entry in logs if entry["event"] == "request"]
    server = attrs(traced.one("SERVER"))
    assert server.get("gateway.cost_usd") == event.get("cost_usd")
    assert server.get("gateway.cache_hit") == (
        None if event.get("cache") is None else event["cache"] == "hit"
    )
    assert (
        server["gen_ai.provider.name"] == "mock"
        and server["gateway.request_id"] == response.headers["x-request-id"]
    )
