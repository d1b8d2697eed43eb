"""A provider from routes.yaml alone: the real gateway process starts without it; routes.yaml is then
rewritten with a `dialects:` entry for a made-up wire format the package does not ship ("toy": JSON
in, JSON or NDJSON out, its own error body), a provider and a model using it; after SIGHUP the
official openai SDK gets OpenAI-shaped answers, streams and errors through it from FakeToy."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
import yaml

from tests.support.fake_toy import (
    TOY_ANSWER,
    TOY_DIALECT_YAML,
    TOY_MODEL,
    FakeToy,
    ndjson_reply,
    toy_failure,
    toy_reply,
    toy_stream,
)
from tests.support.fake_upstreams import FakeAnthropic, FakeOpenAI, json_reply
from tests.support.gateway_process import GatewayProcess
from tests.support.openai_spec import assert_error_body
from tests.support.routes import CLIENT_KEY, OPENAI_ALIAS, routes, write_routes
from tests.support.spec_transport import RecordingTransport, check_all

pytestmark = pytest.mark.subprocess

TOY_ALIAS = "toy-chat"
TOY_KEY = "toy-secret-key"
USER = {"role": "user", "content": "Say hello"}


@pytest.fixture(scope="module")
def fake_toy() -> Iterator[FakeToy]:
    fake = FakeToy().serve()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def base_config(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, fake_toy: FakeToy) -> dict[str, Any]:
    fake_toy.reset()
    return routes(fake_openai.url, fake_anthropic.url)


@pytest.fixture
def proc(tmp_path: Path, base_config: dict[str, Any]) -> Iterator[GatewayProcess]:
    process = GatewayProcess(write_routes(tmp_path / "routes.yaml", base_config))
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def sdk(proc: GatewayProcess) -> Iterator[openai.OpenAI]:
    transport = RecordingTransport()
    with openai.OpenAI(
        base_url=f"{proc.url}/v1",
        api_key=CLIENT_KEY,
        max_retries=0,
        timeout=10.0,
        http_client=httpx2.Client(transport=transport),
    ) as client:
        yield client
    check_all(transport.exchanges)  # every body the SDK got, checked against the OpenAI spec


def add_toy_provider(proc: GatewayProcess, base_config: dict[str, Any], fake_toy: FakeToy) -> dict[str, Any]:
    """routes.yaml rewritten: the toy provider and model, and the toy dialect (the commented snippet of
    tests/support/toy_dialect.yaml, appended as it is); then SIGHUP and its outcome."""
    config = copy.deepcopy(base_config)
    config["providers"]["toy"] = {"dialect": "toy", "base_url": fake_toy.url, "api_key": TOY_KEY}
    config["models"][TOY_ALIAS] = [{"provider": "toy", "model": TOY_MODEL}]
    text = yaml.safe_dump(config, sort_keys=False) + "\n" + TOY_DIALECT_YAML.read_text(encoding="utf-8")
    tmp = proc.config_path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(proc.config_path)
    return proc.reload()


def test_toy_dialect_from_routes_yaml_after_sighup(
    proc: GatewayProcess, sdk: openai.OpenAI, base_config: dict[str, Any], fake_toy: FakeToy
) -> None:
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model=TOY_ALIAS, messages=[USER])
    assert fake_toy.requests == []

    event = add_toy_provider(proc, base_config, fake_toy)
    assert event["event"] == "config_reloaded", event
    assert TOY_ALIAS in event["models"]
    assert TOY_ALIAS in {m.id for m in sdk.models.list()}

    # chat: OpenAI in, the toy's body out, and back
    completion = sdk.chat.completions.create(
        model=TOY_ALIAS,
        messages=[{"role": "system", "content": "Be brief."}, USER],
        max_tokens=20,
        temperature=0.5,
        stop="END",
    )
    assert completion.object == "chat.completion"
    assert completion.id == "toy-req-1"
    assert completion.model == TOY_MODEL
    assert completion.choices[0].message.content == TOY_ANSWER
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
        completion.usage.total_tokens,
    ) == (
        6,
        5,
        11,
    )
    rec = fake_toy.only()
    assert rec.path == "/v0/generate"
    assert rec.headers["x-toy-key"] == TOY_KEY
    assert "authorization" not in rec.headers
    assert rec.json == {
        "model_name": TOY_MODEL,
        "prompt_messages": [
            {"speaker": "system", "text": "Be brief."},
            {"speaker": "human", "text": "Say hello"},
        ],
        "settings": {"max_len": 20, "temperature": 0.5, "stop_words": ["END"]},
    }

    # the other providers keep working on the reloaded config
    assert sdk.chat.completions.create(model=OPENAI_ALIAS, messages=[USER]).choices[0].message.content


def test_toy_stream_errors_and_completions(
    proc: GatewayProcess, sdk: openai.OpenAI, base_config: dict[str, Any], fake_toy: FakeToy
) -> None:
    assert add_toy_provider(proc, base_config, fake_toy)["event"] == "config_reloaded"

    # a stream: NDJSON lines become chat.completion.chunk events, with the usage chunk asked for
    chunks = list(
        sdk.chat.completions.create(
            model=TOY_ALIAS,
            messages=[USER],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert {c.id for c in chunks} == {"toy-stream-1"}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from the toy."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 11
    assert fake_toy.requests[-1].path == "/v0/generate/stream"

    # the stream helper; and the toy's `limit` end reason
    fake_toy.enqueue(ndjson_reply(toy_stream(pieces=["Once", " upon"])))
    with sdk.chat.completions.stream(model=TOY_ALIAS, messages=[USER]) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Once upon"
    assert final.choices[0].finish_reason == "stop"
    fake_toy.enqueue(json_reply(toy_reply("Once upon a", end="limit")))
    assert sdk.chat.completions.create(model=TOY_ALIAS, messages=[USER]).choices[0].finish_reason == "length"

    # the toy's error body, in OpenAI's envelope with a status the SDK understands
    fake_toy.enqueue(toy_failure(400, "bad_input", "prompt_messages must not be empty"))
    with pytest.raises(openai.BadRequestError) as bad:
        sdk.chat.completions.create(model=TOY_ALIAS, messages=[USER])
    error = assert_error_body(bad.value.response.json(), type_="invalid_request_error")
    assert error["message"] == "prompt_messages must not be empty"

    fake_toy.enqueue(toy_failure(529, "busy", "all toy workers are busy", {"retry-after": "3"}))
    with pytest.raises(openai.InternalServerError) as busy:
        sdk.chat.completions.create(model=TOY_ALIAS, messages=[USER])
    assert busy.value.status_code == 503
    assert busy.value.response.headers["retry-after"] == "3"
    assert_error_body(busy.value.response.json(), code="overloaded", type_="server_error")

    # a failure line inside the stream: the text so far, then the SDK raises
    fake_toy.enqueue(
        ndjson_reply(toy_stream(pieces=["Hel"], failure={"kind": "busy", "detail": "worker lost"}))
    )
    stream = sdk.chat.completions.create(model=TOY_ALIAS, messages=[USER], stream=True)
    seen: list[str] = []
    with pytest.raises(openai.APIError) as midstream:
        read_text(stream, seen)
    assert "".join(seen) == "Hel"
    assert "worker lost" in str(midstream.value)

    # what the toy cannot do is refused before it is asked
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    before = len(fake_toy.requests)
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model=TOY_ALIAS, messages=[USER], tools=[tool])
    assert assert_error_body(refused.value.response.json(), code="unsupported_parameter")["param"] == "tools"
    assert len(fake_toy.requests) == before

    # legacy completions come for free through chat
    completion = sdk.completions.create(model=TOY_ALIAS, prompt="Once upon", max_tokens=5)
    assert completion.choices[0].text == TOY_ANSWER
    assert fake_toy.requests[-1].json["prompt_messages"] == [{"speaker": "human", "text": "Once upon"}]
    assert fake_toy.requests[-1].json["settings"] == {"max_len": 5}


def read_text(stream: Any, sink: list[str]) -> None:
    for chunk in stream:
        sink.extend(c.delta.content or "" for c in chunk.choices)
