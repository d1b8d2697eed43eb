"""Stored responses through the official `openai` SDK: `store`, `previous_response_id`, `responses.retrieve`,
`responses.delete` and `responses.input_items.list`, against translated upstreams (the conversation
rebuilt from what the gateway stored) and an upstream that speaks the Responses API itself (its ids go to
it untouched). Every body the SDK gets is checked against the OpenAI spec (tests/support/spec_transport.py).

Two gateway keys: a key sees only its own responses. The stores' own bounds, TTL and failures are in
tests/responses_store/; here, the Redis store shared by two gateways and what a request meets when the
store is down.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.observability.keys import METRICS
from gateway.redis_client import REDIS_CALL_TIMEOUT_S
from gateway.reload import RegistryHolder
from gateway.responses_store.backends import MemoryResponses
from tests.support.anthropic_ingress_upstreams import FAKES, UPSTREAMS, Upstream
from tests.support.fake_upstreams import FakeUpstream
from tests.support.responses_native import NATIVE_TEXT, native_reply
from tests.support.responses_spec import assert_valid_response, assert_valid_stored
from tests.support.routes import CLIENT_KEY
from tests.support.sdk_harness import checked_client, fake_fixtures, running_gateway, sdk_fixtures
from tests.support.servers import closed_port
from tests.support.spec_check import spec_errors

fake_openai, _fresh_fake_openai = fake_fixtures("fake_openai", FAKES["fake_openai"])
fake_compatible, _fresh_fake_compatible = fake_fixtures("fake_compatible", FAKES["fake_compatible"])
fake_anthropic, _fresh_fake_anthropic = fake_fixtures("fake_anthropic", FAKES["fake_anthropic"])

TRANSLATED = {name: UPSTREAMS[name] for name in ("compatible", "anthropic")}
NATIVE_ALIAS = "gw-native"
OTHER_KEY = "sk-another-team-key-0123456789"

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.fixture(scope="module")
def state_gateway(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[str]:
    providers = {up.name: up.provider(request.getfixturevalue(up.fake).url) for up in TRANSLATED.values()}
    models: dict[str, Any] = {
        up.alias: [{"provider": up.name, "model": up.model}] for up in TRANSLATED.values()
    }
    providers["openai"] = UPSTREAMS["openai"].provider(request.getfixturevalue("fake_openai").url)
    models[NATIVE_ALIAS] = [{"provider": "openai", "model": "gpt-5-2025-08-07"}]
    config = {
        "log": {"level": "warning", "format": "json"},
        "auth": {"keys": [{"name": "team-a", "key": CLIENT_KEY}, {"name": "team-b", "key": OTHER_KEY}]},
        "providers": providers,
        "models": models,
    }
    with running_gateway(tmp_path_factory.mktemp("state") / "routes.yaml", config) as url:
        yield url


client, async_client, http = sdk_fixtures("state_gateway")

each_translated = pytest.mark.parametrize("upstream", list(TRANSLATED.values()), ids=list(TRANSLATED))
each_way = pytest.mark.parametrize("streamed", [False, True], ids=["create", "stream"])


def fake_of(upstream: Upstream, request: pytest.FixtureRequest) -> FakeUpstream:
    fake: FakeUpstream = request.getfixturevalue(upstream.fake)
    return fake


def create(sdk: openai.OpenAI, streamed: bool, **params: Any) -> Any:
    """The Response made: created, or the `response` of the stream's last event (as the client got it)."""
    if streamed:
        events = list(sdk.responses.create(**params, stream=True))
        ends = [event.response for event in events if event.type == "response.completed"]
        assert len(ends) == 1 and events[-1].type == "response.completed"
        return ends[0]
    return sdk.responses.create(**params)


@pytest.fixture
def other_client(state_gateway: str) -> Iterator[openai.OpenAI]:
    with checked_client(state_gateway) as sdk:
        sdk.api_key = OTHER_KEY
        yield sdk


# ---- previous_response_id on a translated route ----------------------------------------------------------


@each_translated
@each_way
def test_a_tool_loop_continued_by_previous_response_id(
    client: openai.OpenAI, upstream: Upstream, streamed: bool, request: pytest.FixtureRequest
) -> None:
    """The second request sends only the tool's output; the upstream gets the whole conversation (the
    first request's input and output, then this input), without the first request's instructions."""
    fake = fake_of(upstream, request)
    fake.enqueue(upstream.calls([("get_weather", {"city": "Paris"})], streamed))
    first = create(
        client,
        streamed,
        model=upstream.alias,
        input="Weather in Paris?",
        instructions="Be brief.",
        tools=[WEATHER],
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    assert first.store is True and first.previous_response_id is None
    assert upstream.conversation(fake.requests[0]) == [("system", "Be brief."), ("user", "Weather in Paris?")]

    output: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}]
    second = create(
        client, streamed, model=upstream.alias, input=output, previous_response_id=first.id, tools=[WEATHER]
    )
    assert second.output_text == (upstream.text if not streamed else second.output_text)
    assert second.previous_response_id == first.id and second.id != first.id
    assert upstream.conversation(fake.requests[1]) == [
        ("user", "Weather in Paris?"),
        ("call", "get_weather", {"city": "Paris"}),
        ("result", "Sunny, 21 C"),
    ]

    third = create(
        client, streamed, model=upstream.alias, input="And tomorrow?", previous_response_id=second.id
    )
    conversation = upstream.conversation(fake.requests[2])
    assert conversation[:3] == upstream.conversation(fake.requests[1])
    assert conversation[3][0] == "assistant" and conversation[4:] == [("user", "And tomorrow?")]
    assert third.previous_response_id == second.id


async def test_async_sdk_continues_a_response(
    async_client: openai.AsyncOpenAI, fake_compatible: FakeUpstream
) -> None:
    upstream = TRANSLATED["compatible"]
    first = await async_client.responses.create(model=upstream.alias, input="Hi")
    second = await async_client.responses.create(
        model=upstream.alias, input="Again", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    assert upstream.conversation(fake_compatible.requests[1]) == [
        ("user", "Hi"),
        ("assistant", upstream.text),
        ("user", "Again"),
    ]


# ---- item_reference (the AI SDK's default tool loop) -------------------------------------------------


@each_way
def test_an_item_reference_is_the_stored_item_it_names(
    client: openai.OpenAI, other_client: openai.OpenAI, streamed: bool, fake_compatible: FakeUpstream
) -> None:
    """An earlier response's message sent back by id alone reaches the upstream as that message; an
    id no stored response of this key has is a 404 naming it, before any upstream call."""
    upstream = TRANSLATED["compatible"]
    first = create(client, streamed, model=upstream.alias, input="Hi")
    [said] = [item for item in first.output if item.type == "message"]
    assert said.id.removeprefix("msg_") == first.id.removeprefix("resp_")  # (how the gateway finds it)
    reference: Any = [
        {"role": "user", "content": "Hi"},
        {"type": "item_reference", "id": said.id},
        {"role": "user", "content": "Again"},
    ]
    create(client, streamed, model=upstream.alias, input=reference)
    assert upstream.conversation(fake_compatible.requests[1]) == [
        ("user", "Hi"),
        ("assistant", said.content[0].text),  # type: ignore[union-attr]
        ("user", "Again"),
    ]
    for sdk, item_id in ((client, "msg_000000000000000000000000"), (other_client, said.id)):
        with pytest.raises(openai.NotFoundError) as caught:
            sdk.responses.create(model=upstream.alias, input=[{"type": "item_reference", "id": item_id}])
        assert caught.value.body["message"] == f"Item with id '{item_id}' not found."  # type: ignore[index]
        assert caught.value.body["param"] == "input"  # type: ignore[index]
    assert len(fake_compatible.requests) == 2


# ---- retrieve, delete, input items ---------------------------------------------------------------------


@each_way
def test_retrieve_answers_the_response_as_it_was_made(client: openai.OpenAI, streamed: bool) -> None:
    made = create(client, streamed, model="gw-mistral", input="Hello?", metadata={"run": "7"})
    kept = client.responses.retrieve(made.id)
    assert kept.model_dump() == made.model_dump()


def test_input_items_list_the_whole_conversation_a_page_at_a_time(
    client: openai.OpenAI, fake_compatible: FakeUpstream
) -> None:
    upstream = TRANSLATED["compatible"]
    fake_compatible.enqueue(upstream.calls([("get_weather", {"city": "Paris"})], False))
    first = client.responses.create(model=upstream.alias, input="Weather in Paris?", tools=[WEATHER])
    [call] = first.output
    output: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"}]  # type: ignore[union-attr]
    second = client.responses.create(model=upstream.alias, input=output, previous_response_id=first.id)

    page = client.responses.input_items.list(second.id, order="asc")
    kinds = [(item.type, getattr(item, "role", None)) for item in page.data]
    assert kinds == [("message", "user"), ("function_call", None), ("function_call_output", None)]
    assert page.data[1].id == call.id  # (the output item as the first response had it)
    assert all(item.id for item in page.data) and len({item.id for item in page.data}) == 3

    newest = client.responses.input_items.list(second.id)  # desc by default
    assert [item.id for item in newest.data] == [item.id for item in page.data][::-1]
    one = client.responses.input_items.list(second.id, order="asc", limit=1)
    assert [item.id for item in one.data] == [page.data[0].id] and one.has_more is True
    rest = client.responses.input_items.list(second.id, order="asc", limit=5, after=page.data[0].id)
    assert [item.id for item in rest.data] == [item.id for item in page.data[1:]] and rest.has_more is False
    assert [item.id for item in client.responses.input_items.list(second.id, order="asc", limit=1)] == [
        item.id for item in page.data
    ]  # (the SDK's auto-pagination follows `after`)


def test_delete_then_everything_about_the_response_is_404(client: openai.OpenAI) -> None:
    made = client.responses.create(model="gw-mistral", input="Hi")
    client.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError, match=made.id):
        client.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list(made.id)
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="gw-mistral", input="Again", previous_response_id=made.id)
    assert missing.value.code == "previous_response_not_found"
    assert missing.value.body == {
        "message": f"Previous response with id '{made.id}' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }


def test_another_keys_response_does_not_exist_for_it(
    client: openai.OpenAI, other_client: openai.OpenAI, fake_compatible: FakeUpstream
) -> None:
    made = client.responses.create(model="gw-mistral", input="Hi")
    with pytest.raises(openai.NotFoundError):
        other_client.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        other_client.responses.input_items.list(made.id)
    with pytest.raises(openai.NotFoundError):
        other_client.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        other_client.responses.create(model="gw-mistral", input="Again", previous_response_id=made.id)
    assert len(fake_compatible.requests) == 1
    assert client.responses.retrieve(made.id).id == made.id  # (still there for its owner)


def test_without_a_key_nothing_is_read(state_gateway: str) -> None:
    reply = httpx2.get(f"{state_gateway}/v1/responses/resp_whatever", timeout=10)
    assert reply.status_code == 401


@each_way
def test_store_false_stores_nothing(client: openai.OpenAI, streamed: bool) -> None:
    made = create(client, streamed, model="gw-mistral", input="Hi", store=False)
    assert made.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)


def test_response_ids_are_the_gateways_own_and_unguessable(client: openai.OpenAI) -> None:
    ids = {client.responses.create(model="gw-mistral", input="Hi").id for _ in range(3)}
    assert len(ids) == 3
    for made in ids:
        assert made.startswith("resp_") and len(made) == len("resp_") + 24  # 96 random bits


def test_bad_list_parameters_are_400s(state_gateway: str, client: openai.OpenAI) -> None:
    made = client.responses.create(model="gw-mistral", input="Hi")
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    for query, param in (
        ("limit=0", "limit"),
        ("limit=x", "limit"),
        ("order=up", "order"),
        ("after=nope", "after"),
    ):
        reply = httpx2.get(
            f"{state_gateway}/v1/responses/{made.id}/input_items?{query}", headers=headers, timeout=10
        )
        assert reply.status_code == 400, query
        assert reply.json()["error"]["param"] == param
        assert spec_errors("ErrorResponse", reply.json()) == []


# ---- a route whose upstream speaks the Responses API itself --------------------------------------------


def test_native_previous_response_id_goes_upstream_untouched(
    client: openai.OpenAI, fake_openai: FakeUpstream
) -> None:
    fake_openai.enqueue(native_reply())
    made = client.responses.create(
        model=NATIVE_ALIAS, input="Again", previous_response_id="resp_native0123456789"
    )
    assert made.output_text == NATIVE_TEXT
    sent = fake_openai.only().json
    assert sent["previous_response_id"] == "resp_native0123456789" and sent["input"] == "Again"
    with pytest.raises(openai.NotFoundError):  # (the upstream's own: not the gateway's to read)
        client.responses.retrieve(made.id)


def test_a_gateway_response_continued_on_a_native_route_is_sent_whole(
    client: openai.OpenAI, fake_openai: FakeUpstream
) -> None:
    first = client.responses.create(model="gw-mistral", input="Hi")
    fake_openai.enqueue(native_reply())
    client.responses.create(model=NATIVE_ALIAS, input="Again", previous_response_id=first.id)
    sent = fake_openai.only().json
    assert "previous_response_id" not in sent  # the upstream never saw that id
    assert [(item["type"], item["role"]) for item in sent["input"]] == [
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
    ]
    assert not any("id" in item for item in sent["input"])  # (no ids the upstream would look up)
    assert sent["input"][1]["content"][0]["text"] == first.output_text


# ---- the store's backends, through whole gateways ------------------------------------------------------

ROUTES = """
responses: STORE
providers: {mock: {dialect: mock, transport: mock}}
models:
  mock: [{provider: mock, model: m}]
"""


def app_for(store: str) -> Any:
    registry = build_registry(config_from_text(ROUTES.replace("STORE", store), "routes.yaml", {}))
    return create_app(RegistryHolder("routes.yaml", registry))


async def test_two_gateways_share_a_redis_store(redis_url: str) -> None:
    store = f"{{store: redis, redis_url: '{redis_url}', ttl: 1h}}"
    async with (
        TestClient(TestServer(app_for(store))) as first,
        TestClient(TestServer(app_for(store))) as second,
    ):
        made = await (await first.post("/v1/responses", json={"model": "mock", "input": "Hello"})).json()
        kept = await second.get(f"/v1/responses/{made['id']}")  # the reply waited for the write
        assert kept.status == 200 and await kept.json() == made
        reply = await second.post(
            "/v1/responses", json={"model": "mock", "input": "Again", "previous_response_id": made["id"]}
        )
        assert reply.status == 200
        continued = assert_valid_response(await reply.json())
        items = await (await first.get(f"/v1/responses/{continued['id']}/input_items?order=asc")).json()
        assert_valid_stored("GET", f"/responses/{continued['id']}/input_items", items)
        assert [item["role"] for item in items["data"]] == ["user", "assistant", "user"]
        assert (await first.delete(f"/v1/responses/{made['id']}")).status == 200
        assert (await second.get(f"/v1/responses/{made['id']}")).status == 404


async def test_a_streamed_response_is_stored_before_its_last_event_goes_out(redis_url: str) -> None:
    """The client continues on another replica the moment `response.completed` arrives: the event waited
    for the write, so the other replica finds the response."""
    store = f"{{store: redis, redis_url: '{redis_url}', ttl: 1h}}"
    async with (
        TestClient(TestServer(app_for(store))) as first,
        TestClient(TestServer(app_for(store))) as second,
    ):
        reply = await first.post("/v1/responses", json={"model": "mock", "input": "Hello", "stream": True})
        completed = None
        async for line in reply.content:
            if line.startswith(b"data: ") and b'"response.completed"' in line:
                completed = json.loads(line[6:])["response"]
                break  # (what the client has the moment the event arrives; the rest is not read)
        assert completed is not None
        kept = await second.get(f"/v1/responses/{completed['id']}")
        assert kept.status == 200 and (await kept.json())["id"] == completed["id"]


async def test_a_store_that_is_down_fails_no_response_and_reads_are_503() -> None:
    """Writes: logged and counted, the client's response goes out; reads: 503, retryable (the response
    may exist: a 404 would tell the client to start over)."""
    url = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"
    app = app_for(f"{{store: redis, redis_url: '{url}'}}")
    started = time.monotonic()
    async with TestClient(TestServer(app)) as gateway:
        with structlog.testing.capture_logs() as logs:
            reply = await gateway.post("/v1/responses", json={"model": "mock", "input": "Hello"})
            assert reply.status == 200
            made = await reply.json()
            continued = await gateway.post(
                "/v1/responses", json={"model": "mock", "input": "Again", "previous_response_id": made["id"]}
            )
            assert continued.status == 503 and continued.headers["retry-after"] == "1"
            error = (await continued.json())["error"]
            assert error["code"] == "response_store_unavailable"
            assert (await gateway.get(f"/v1/responses/{made['id']}")).status == 503
    assert time.monotonic() - started < 3 * REDIS_CALL_TIMEOUT_S  # (refused at once: no call waited long)
    errors = {
        operation: app[METRICS].registry.get_sample_value(
            "gateway_response_store_errors_total", {"operation": operation}
        )
        for operation in ("put", "get")
    }
    assert errors == {"put": 1.0, "get": 2.0}
    failures = [line for line in logs if line["event"] == "response_store_error"]
    assert failures and failures[0]["operation"] in ("put", "get")
    assert not any("hunter2" in json.dumps(line, default=str) for line in logs)


async def test_the_memory_store_is_bounded_by_max_entries() -> None:
    async with TestClient(TestServer(app_for("{max_entries: 2}"))) as gateway:
        made = [
            await (await gateway.post("/v1/responses", json={"model": "mock", "input": f"n{i}"})).json()
            for i in range(3)
        ]
        statuses = [(await gateway.get(f"/v1/responses/{one['id']}")).status for one in made]
        assert statuses == [404, 200, 200]


async def test_an_expired_response_is_not_found() -> None:
    now = [1000.0]
    backend = MemoryResponses(ttl=3600, max_entries=10, max_bytes=100_000, clock=lambda: now[0])
    registry = build_registry(config_from_text(ROUTES.replace("STORE", "{ttl: 1h}"), "routes.yaml", {}))
    app = create_app(RegistryHolder("routes.yaml", registry), responses_backend=backend)
    async with TestClient(TestServer(app)) as gateway:
        made = await (await gateway.post("/v1/responses", json={"model": "mock", "input": "Hi"})).json()
        now[0] += 3599
        assert (await gateway.get(f"/v1/responses/{made['id']}")).status == 200
        now[0] += 1
        assert (await gateway.get(f"/v1/responses/{made['id']}")).status == 404
        reply = await gateway.post(
            "/v1/responses", json={"model": "mock", "input": "x", "previous_response_id": made["id"]}
        )
        assert reply.status == 404 and (await reply.json())["error"]["code"] == "previous_response_not_found"


class HeldWrites:
    """A shared backend (like Redis) whose writes wait for `release`: what a reply must wait for."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.release = asyncio.Event()
        self.writing = asyncio.Event()

    async def put(self, response_id: str, data: bytes) -> bool:
        self.writing.set()
        await self.release.wait()
        self.data[response_id] = data
        return True

    async def get(self, response_id: str) -> bytes | None:
        return self.data.get(response_id)

    async def delete(self, response_id: str) -> bool:
        return self.data.pop(response_id, None) is not None

    async def close(self) -> None:
        pass


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "stream"])
async def test_the_reply_carrying_a_response_waits_until_it_is_stored(streamed: bool) -> None:
    """Neither the JSON reply nor the stream's `response.completed` goes out before the store has the
    response: a client that continues it at once, on any replica, finds it."""
    backend = HeldWrites()
    registry = build_registry(config_from_text(ROUTES.replace("STORE", "{ttl: 1h}"), "routes.yaml", {}))
    app = create_app(RegistryHolder("routes.yaml", registry), responses_backend=backend)
    async with TestClient(TestServer(app)) as gateway:
        body = {"model": "mock", "input": "Hello", "stream": streamed}

        async def whole_reply() -> bytes:
            async with gateway.post("/v1/responses", json=body) as reply:
                return await reply.read()

        reading = asyncio.ensure_future(whole_reply())
        await asyncio.wait_for(backend.writing.wait(), timeout=5)
        done, _ = await asyncio.wait({reading}, timeout=0.2)  # (a bound, not a synchronization)
        assert not done and not backend.data  # held: the reply waits for the write
        backend.release.set()
        raw = await asyncio.wait_for(reading, timeout=5)
        assert list(backend.data)
        assert b"response.completed" in raw if streamed else b'"object":"response"' in raw


async def test_store_none_keeps_nothing() -> None:
    async with TestClient(TestServer(app_for("{store: none}"))) as gateway:
        made = await (await gateway.post("/v1/responses", json={"model": "mock", "input": "Hi"})).json()
        assert (await gateway.get(f"/v1/responses/{made['id']}")).status == 404
        reply = await gateway.post(
            "/v1/responses", json={"model": "mock", "input": "x", "previous_response_id": made["id"]}
        )
        assert reply.status == 400  # (not stored by this gateway: a translated upstream cannot continue it)


# ---- the Agents SDK, server-side conversation state ----------------------------------------------------


async def test_agents_sdk_chains_its_turns_by_previous_response_id(
    state_gateway: str, fake_compatible: FakeUpstream
) -> None:
    """`auto_previous_response_id`: each turn of a run sends only its new items (the tool's output) and
    the previous response's id; a later run continues from `last_response_id`."""
    agents = pytest.importorskip("agents")
    sent: list[Any] = []

    async def record(request: httpx2.Request) -> None:
        sent.append(json.loads(request.content) if request.content else None)

    http_client = httpx2.AsyncClient(event_hooks={"request": [record]})
    async with openai.AsyncOpenAI(
        base_url=f"{state_gateway}/v1", api_key=CLIENT_KEY, http_client=http_client
    ) as sdk:
        agents.set_tracing_disabled(True)
        agents.set_default_openai_client(sdk, use_for_tracing=False)

        def weather(city: str) -> str:
            """The weather in a city."""
            return f"Sunny in {city}, 21 C"

        tool = agents.function_tool(weather, name_override="get_weather")
        agent = agents.Agent(name="weather", instructions="Answer briefly.", model="gw-mistral", tools=[tool])
        upstream = TRANSLATED["compatible"]
        fake_compatible.enqueue(upstream.calls([("get_weather", {"city": "Paris"})], False))
        result = await agents.Runner.run(agent, "Weather in Paris?", auto_previous_response_id=True)
        assert result.final_output == upstream.text
        assert sent[1]["previous_response_id"] and [item["type"] for item in sent[1]["input"]] == [
            "function_call_output"
        ]
        assert upstream.conversation(fake_compatible.requests[1]) == [
            ("system", "Answer briefly."),
            ("user", "Weather in Paris?"),
            ("call", "get_weather", {"city": "Paris"}),
            ("result", "Sunny in Paris, 21 C"),
        ]
        again = await agents.Runner.run(agent, "And in Rome?", previous_response_id=result.last_response_id)
        assert again.final_output == upstream.text
        assert upstream.conversation(fake_compatible.requests[2])[-3:] == [
            ("result", "Sunny in Paris, 21 C"),
            ("assistant", upstream.text),
            ("user", "And in Rome?"),
        ]
        assert sent[2]["previous_response_id"] == result.last_response_id
