"""SIGHUP reload of the real gateway process: a good config is swapped in, a bad one is refused (and the
old one keeps serving), and requests in flight finish on the config they started with."""

from __future__ import annotations

import asyncio
import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from tests.support.fake_upstreams import FakeAnthropic, FakeOpenAI, anthropic_stream, sse_reply
from tests.support.gateway_process import GatewayProcess
from tests.support.openai_spec import MODELS, assert_error_body, assert_valid, assert_valid_stream
from tests.support.routes import (
    ANTHROPIC_ALIAS,
    ANTHROPIC_UPSTREAM_MODEL,
    CLIENT_KEY,
    OPENAI_ALIAS,
    OPENAI_UPSTREAM_MODEL,
    routes,
    write_routes,
)

pytestmark = pytest.mark.subprocess

USER = {"role": "user", "content": "Say hello"}


@pytest.fixture
def base_config(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> dict[str, Any]:
    return routes(fake_openai.url, fake_anthropic.url)


@pytest.fixture
def config_path(tmp_path: Path, base_config: dict[str, Any]) -> Path:
    return write_routes(tmp_path / "routes.yaml", base_config)


@pytest.fixture
def proc(config_path: Path) -> Iterator[GatewayProcess]:
    process = GatewayProcess(config_path)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def sdk(proc: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{proc.url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=10.0) as client:
        yield client


def model_ids(sdk: openai.OpenAI) -> set[str]:
    raw = sdk.models.with_raw_response.list()
    assert_valid(MODELS, raw.http_response.json())
    return {m.id for m in raw.parse()}


def test_good_reload_adds_a_model(
    proc: GatewayProcess,
    sdk: openai.OpenAI,
    config_path: Path,
    base_config: dict[str, Any],
    fake_openai: FakeOpenAI,
) -> None:
    assert "gpt-new" not in model_ids(sdk)
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="gpt-new", messages=[USER])

    new_config = copy.deepcopy(base_config)
    new_config["models"]["gpt-new"] = [{"provider": "openai-fake", "model": "gpt-4o-mini-2024-07-18"}]
    new_config["providers"]["openai-fake"]["api_key"] = "sk-upstream-rotated"
    write_routes(config_path, new_config)
    event = proc.reload()

    assert event["event"] == "config_reloaded", event
    assert event["path"] == str(config_path)
    assert "gpt-new" in event["models"]
    assert {"gpt-new", OPENAI_ALIAS, ANTHROPIC_ALIAS} <= model_ids(sdk)
    assert sdk.models.retrieve("gpt-new").owned_by == "openai-fake"
    completion = sdk.chat.completions.create(model="gpt-new", messages=[USER])
    assert completion.choices[0].message.content == "Hello from the fake OpenAI upstream."
    assert fake_openai.requests[-1].json["model"] == "gpt-4o-mini-2024-07-18"
    assert fake_openai.requests[-1].headers["authorization"] == "Bearer sk-upstream-rotated"

    assert proc.stop() == 0  # SIGTERM is a clean shutdown
    assert proc.wait_for_event("stopped")


def test_reload_with_an_unset_key_variable_disables_that_provider(
    proc: GatewayProcess, sdk: openai.OpenAI, config_path: Path, base_config: dict[str, Any]
) -> None:
    variable = "GATEWAY_IT_SURELY_UNSET_KEY"
    assert variable not in os.environ
    new_config = copy.deepcopy(base_config)
    new_config["providers"]["anthropic-fake"]["api_key"] = f"${{{variable}}}"
    write_routes(config_path, new_config)
    after = proc.mark()
    event = proc.reload()

    assert event["event"] == "config_reloaded", event
    assert ANTHROPIC_ALIAS in event["unavailable"]
    warning = proc.wait_for_event("config_warning", after=after)
    assert variable in warning["detail"]
    assert ANTHROPIC_ALIAS not in model_ids(sdk)
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.chat.completions.create(model=ANTHROPIC_ALIAS, messages=[USER])
    error = assert_error_body(caught.value.response.json(), code="model_not_found")
    assert variable in error["message"]
    assert sdk.chat.completions.create(model=OPENAI_ALIAS, messages=[USER]).choices[0].message.content


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _invalid_yaml(path: Path, config: dict[str, Any]) -> None:
    _write_text(path, "providers: [unclosed\nmodels: {}\n")


def _not_a_mapping(path: Path, config: dict[str, Any]) -> None:
    _write_text(path, "- just\n- a list\n")


def _missing_file(path: Path, config: dict[str, Any]) -> None:
    path.unlink()


def _schema_error(path: Path, config: dict[str, Any]) -> None:
    config["providers"]["openai-fake"]["timeouts"] = {"total": -1}
    write_routes(path, config)


def _unknown_dialect(path: Path, config: dict[str, Any]) -> None:
    config["providers"]["openai-fake"]["dialect"] = "klingon"
    write_routes(path, config)


def _unknown_provider(path: Path, config: dict[str, Any]) -> None:
    config["models"]["gpt-broken"] = [{"provider": "nowhere", "model": "x"}]
    write_routes(path, config)


def _bad_rule(path: Path, config: dict[str, Any]) -> None:
    config["providers"]["anthropic-fake"]["request"] = {"set": {"max_tokens": "max_tokens ||| 1"}}
    write_routes(path, config)


@pytest.mark.parametrize(
    ("breaker", "expected"),
    [
        pytest.param(_invalid_yaml, ["{path}: YAML syntax error at line 2"], id="invalid-yaml"),
        pytest.param(_not_a_mapping, ["{path}: expected a mapping"], id="not-a-mapping"),
        pytest.param(_missing_file, ["{path}: cannot read"], id="missing-file"),
        pytest.param(_schema_error, ["providers.openai-fake.timeouts.total"], id="schema-error"),
        pytest.param(
            _unknown_dialect,
            ["providers.openai-fake.dialect: unknown dialect 'klingon'"],
            id="unknown-dialect",
        ),
        pytest.param(
            _unknown_provider,
            ["models.gpt-broken[0].provider: unknown provider 'nowhere'"],
            id="unknown-provider",
        ),
        pytest.param(_bad_rule, ["providers.anthropic-fake.request"], id="bad-rule"),
    ],
)
def test_bad_reload_keeps_the_old_config(
    proc: GatewayProcess,
    sdk: openai.OpenAI,
    config_path: Path,
    base_config: dict[str, Any],
    fake_openai: FakeOpenAI,
    breaker: Any,
    expected: list[str],
) -> None:
    before = model_ids(sdk)
    breaker(config_path, copy.deepcopy(base_config))

    event = proc.reload()
    assert event["event"] == "config_reload_failed", event
    assert event["path"] == str(config_path)
    problems = event["problems"]
    assert isinstance(problems, list) and problems
    for needle in expected:
        needle = needle.format(path=config_path)
        assert any(needle in problem for problem in problems), (needle, problems)

    # the old registry keeps serving, unchanged
    assert model_ids(sdk) == before
    completion = sdk.chat.completions.create(model=OPENAI_ALIAS, messages=[USER])
    assert completion.choices[0].message.content == "Hello from the fake OpenAI upstream."
    assert fake_openai.requests[-1].json["model"] == OPENAI_UPSTREAM_MODEL

    # and a fixed file reloads fine afterwards
    write_routes(config_path, base_config)
    assert proc.reload()["event"] == "config_reloaded"


async def test_in_flight_stream_finishes_on_its_config(
    proc: GatewayProcess, config_path: Path, base_config: dict[str, Any], fake_anthropic: FakeAnthropic
) -> None:
    release = fake_anthropic.gate("release the held stream")
    parts = anthropic_stream()
    fake_anthropic.enqueue(sse_reply([*parts[:4], release, *parts[4:]]))  # held after the first text delta

    new_config = copy.deepcopy(base_config)
    del new_config["models"][ANTHROPIC_ALIAS]
    new_config["models"]["claude-new"] = [{"provider": "anthropic-fake", "model": "claude-haiku-4-5"}]

    body = {"model": ANTHROPIC_ALIAS, "messages": [USER], "stream": True}
    timeout = aiohttp.ClientTimeout(total=15)
    async with (
        aiohttp.ClientSession(base_url=proc.url, timeout=timeout) as session,
        session.post("/v1/chat/completions", json=body) as stream,
    ):
        assert stream.status == 200
        head = b""
        async with asyncio.timeout(10):
            while b'"Hello"' not in head:
                line = await stream.content.readline()
                assert line, f"stream ended early: {head!r}"
                head += line

        write_routes(config_path, new_config)
        event = await asyncio.to_thread(proc.reload)
        assert event["event"] == "config_reloaded", event

        # new requests see the new config while the old stream is still open
        async with session.post("/v1/chat/completions", json=body) as gone:
            assert gone.status == 404
            assert_error_body(await gone.json(), code="model_not_found")
        async with session.post("/v1/chat/completions", json={**body, "model": "claude-new"}) as new:
            assert new.status == 200
            assert_valid_stream(await new.read())
        assert fake_anthropic.requests[-1].json["model"] == "claude-haiku-4-5"

        release.set()
        raw = head + await stream.read()

    access = proc.wait_for(
        lambda e: (
            e.get("event") == "request" and e.get("model") == ANTHROPIC_ALIAS and e.get("status") == 200
        ),
        what="the access event of the in-flight stream",
    )
    assert access["upstream_model"] == ANTHROPIC_UPSTREAM_MODEL
    assert access["stream"] is True
    chunks = assert_valid_stream(raw)  # no error event: it completed normally
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        == "Hello from the fake stream."
    )
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    # the fake marks its reply finished once its last write returns, which may be after the gateway
    # has read it all and answered: wait for that, never cut
    await fake_anthropic.requests[0].finished.expect_async()
    assert not fake_anthropic.requests[0].closed.is_set()
