"""The built-in mock: what it answers, and that nothing it allocates grows with a number a client sends."""

from __future__ import annotations

import base64
import http.client
import random
import struct
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gateway import json_codec
from gateway.upstream import mock
from gateway.upstream.mock import MAX_DIMENSIONS, MAX_INPUTS, MAX_STREAM_DELTAS, MAX_VECTOR_VALUES, respond
from tests.support.gateway_process import GatewayProcess

EMBEDDINGS = "mock://v1/embeddings"
CHAT = "mock://v1/chat/completions"
COMPLETIONS = "mock://v1/completions"


def _json(url: str, request: dict[str, Any]) -> tuple[int, Any]:
    reply = respond(url, request)
    return reply.status, json_codec.loads(b"".join(reply._parts))


def _sse_payloads(url: str, request: dict[str, Any]) -> list[Any]:
    reply = respond(url, request)
    assert reply.status == 200
    frames = [part.removeprefix(b"data: ").strip() for part in reply._parts]
    assert frames[-1] == b"[DONE]"
    return [json_codec.loads(frame) for frame in frames[:-1]]


# ---- what it answers -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("request_body", "count", "dimensions"),
    [
        ({"input": "hello"}, 1, 8),
        ({"input": ["a", "b", "c"], "dimensions": 3}, 3, 3),
        ({"input": "x", "dimensions": MAX_DIMENSIONS}, 1, MAX_DIMENSIONS),
        ({"input": ["x"] * MAX_INPUTS}, MAX_INPUTS, 8),
        ({"input": ["x"] * (MAX_VECTOR_VALUES // 1024), "dimensions": 1024}, MAX_VECTOR_VALUES // 1024, 1024),
        ({"input": "x", "dimensions": 16.0}, 1, 16),  # an integral number, as JSON may write it
    ],
)
def test_embeddings_within_the_bounds(request_body: dict[str, Any], count: int, dimensions: int) -> None:
    status, body = _json(EMBEDDINGS, {"model": "m", **request_body})
    assert status == 200
    assert len(body["data"]) == count
    assert {len(item["embedding"]) for item in body["data"]} == {dimensions}
    assert all(-1.0 <= v <= 1.0 for v in body["data"][0]["embedding"])


def test_embeddings_are_deterministic_and_base64_carries_the_same_floats() -> None:
    _, floats = _json(EMBEDDINGS, {"model": "m", "input": "same", "dimensions": 40})
    _, again = _json(EMBEDDINGS, {"model": "m", "input": "same", "dimensions": 40})
    _, packed = _json(
        EMBEDDINGS, {"model": "m", "input": "same", "dimensions": 40, "encoding_format": "base64"}
    )
    assert floats == again
    decoded = struct.unpack("<40f", base64.b64decode(packed["data"][0]["embedding"]))
    assert decoded == pytest.approx(floats["data"][0]["embedding"], abs=1e-6)


# A number in the request that would make the mock allocate without bound is a 400 naming the field.
@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        pytest.param({"input": "x", "dimensions": 220458534923}, "dimensions", id="issue-10"),
        pytest.param({"input": "x", "dimensions": 50_000_000}, "dimensions", id="50M"),
        pytest.param({"input": "x", "dimensions": MAX_DIMENSIONS + 1}, "dimensions", id="max+1"),
        pytest.param({"input": "x", "dimensions": 0}, "dimensions", id="zero"),
        pytest.param({"input": "x", "dimensions": 1e300}, "dimensions", id="1e300"),
        pytest.param({"input": "x", "dimensions": 2.5}, "dimensions", id="fraction"),
        pytest.param({"input": "x", "dimensions": True}, "dimensions", id="boolean"),
        pytest.param({"input": "x", "dimensions": "8"}, "dimensions", id="string"),
        pytest.param({"input": ["x"] * (MAX_INPUTS + 1)}, "input", id="inputs"),
        pytest.param(
            {"input": ["x"] * (MAX_VECTOR_VALUES // MAX_DIMENSIONS + 1), "dimensions": MAX_DIMENSIONS},
            "input",
            id="values",
        ),
    ],
)
def test_embeddings_out_of_bounds_are_400_naming_the_field(request_body: dict[str, Any], param: str) -> None:
    started = time.perf_counter()
    status, body = _json(EMBEDDINGS, {"model": "m", **request_body})
    assert time.perf_counter() - started < 0.5
    assert status == 400
    assert body["error"]["param"] == param
    assert body["error"]["type"] == "invalid_request_error"
    assert param in body["error"]["message"]


def test_chat_echo_streams_word_by_word() -> None:
    request = {"model": "m", "messages": [{"role": "user", "content": "one two  three"}], "stream": True}
    chunks = _sse_payloads(CHAT, request)
    deltas = [c["choices"][0]["delta"].get("content") for c in chunks]
    assert deltas == ["", "You", " said:", " one", " two", " ", " three", None]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_a_long_echo_is_cut_into_at_most_max_stream_deltas() -> None:
    """A prompt of millions of words is not millions of chunks (each a dict and a JSON frame)."""
    words = 3 * MAX_STREAM_DELTAS
    text = " ".join(["w"] * words)
    for url, body in (
        (CHAT, {"messages": [{"role": "user", "content": text}]}),
        (COMPLETIONS, {"prompt": text}),
    ):
        chunks = _sse_payloads(url, {"model": "m", "stream": True, **body})
        if url == CHAT:
            pieces = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
        else:
            pieces = [c["choices"][0]["text"] for c in chunks]
        assert len(pieces) == MAX_STREAM_DELTAS
        assert "".join(pieces).endswith(" You said: " + text if url == COMPLETIONS else "You said: " + text)
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("seed", range(20))
def test_word_count_is_split_without_the_list(seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(rng.choice("ab \n\t") for _ in range(rng.randint(0, 300_000)))
    assert mock.word_count(text) == len(text.split())


def test_usage_counts_words() -> None:
    status, body = _json(CHAT, {"model": "m", "messages": [{"role": "user", "content": "ping pong"}]})
    assert status == 200
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6}


# ---- the shipped configuration's mock, in a real gateway process ------------------------------------
ADDRESS_SPACE = 1536 * 1024 * 1024  # the child's RLIMIT_AS: an unbounded vector fails, not the machine
ROUTES = """
log: {level: info, format: json}
providers:
  mock: {dialect: mock, transport: mock}
models:
  mock: [{provider: mock, model: mock-1}]
"""


def _post(port: int, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, json_codec.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json_codec.loads(response.read())
    finally:
        connection.close()


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and sets RLIMIT_AS")
@pytest.mark.parametrize("dimensions", [50_000_000, 220458534923])
def test_huge_dimensions_answer_400_fast_and_rss_stays_put(tmp_path: Path, dimensions: int) -> None:
    """Issue 10: one unauthenticated request grew the process until the OOM killer ended it. The child
    runs with an address-space cap so that, were it unbounded, it fails here and not the machine."""
    config = tmp_path / "routes.yaml"
    config.write_text(ROUTES, encoding="utf-8")
    gateway = GatewayProcess(config)
    limit = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE}, {ADDRESS_SPACE}))"
    run = "import runpy, sys; sys.argv[0] = 'gateway'; runpy.run_module('gateway', run_name='__main__')"
    gateway.args = [gateway.args[0], "-c", f"{limit}; {run}", *gateway.args[3:]]
    with gateway:
        assert _post(gateway.port, "/v1/embeddings", {"model": "mock", "input": "warm up"})[0] == 200
        before = _rss_bytes(gateway.pid)
        started = time.perf_counter()
        huge = {"model": "mock", "input": "x", "dimensions": dimensions}
        status, body = _post(gateway.port, "/v1/embeddings", huge)
        elapsed = time.perf_counter() - started
        after = _rss_bytes(gateway.pid)
        assert status == 400, body
        assert body["error"]["param"] == "dimensions"
        assert elapsed < 2.0
        assert after - before < 16 * 1024 * 1024
        assert _post(gateway.port, "/v1/embeddings", {"model": "mock", "input": "still here"})[0] == 200
