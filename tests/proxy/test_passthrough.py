"""The pass-through relay (OpenAI-format streams): the upstream's own bytes, byte for byte, cut at the
event boundaries the SSE decoder finds; [DONE], the upstream's error event and usage read from the
decoded events; truncation, caps and upstream failures reported in the stream, with an outcome. A client
that did not ask for usage gets none (no usage chunk, no `usage` member), but the relay still reads it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from gateway.framing.sse import SseDecoder
from gateway.proxy.passthrough import TRUNCATED_FRAME, pass_through
from gateway.redaction import MASK, Redactor
from gateway.upstream.transport import UpstreamFailure

SECRET = "sk-upstream-secret-0123456789"
REDACTOR = Redactor([SECRET])


def chunk(text: str, usage: str | None = '"usage":null') -> bytes:
    """A content chunk; `usage`: its last member as the upstream wrote it (None: no usage member, as
    OpenAI sends chunks to a client that did not ask for usage)."""
    last = "" if usage is None else f",{usage}"
    body = (
        '{"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
        f'"choices":[{{"index":0,"delta":{{"content":{json.dumps(text)}}},"finish_reason":null}}]{last}}}'
    )
    return f"data: {body}\n\n".encode()


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
USAGE_CHUNK = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],'
    b'"usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}\n\n'
)


class RecordingResponse:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    @property
    def body(self) -> bytes:
        return b"".join(self.writes)


class Reply:
    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


async def reads(parts: Sequence[bytes | Exception]) -> AsyncIterator[bytes]:
    for part in parts:
        if isinstance(part, Exception):
            raise part
        yield part


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def relay(
    parts: Sequence[bytes | Exception], max_event_bytes: int = 1 << 20, show_usage: bool = True
) -> tuple[RecordingResponse, Reply, str, Any]:
    response, reply = RecordingResponse(), Reply()
    outcome, usage = await pass_through(
        response,  # type: ignore[arg-type]
        reads(parts),
        reply,  # type: ignore[arg-type]
        SseDecoder(max_event_bytes),
        REDACTOR,
        show_usage=show_usage,
    )
    return response, reply, outcome, usage


# ---- complete streams go out byte for byte, however they are framed and split ----------------------

COMPLETE = [
    pytest.param(chunk("Hel") + chunk("lo") + b"data: [DONE]\n\n", id="plain"),
    pytest.param(chunk("Hi") + b"data:[DONE]\n\n", id="done-without-space"),
    pytest.param(chunk("Hi") + b"data: [DONE]\n\n: bye\n\n", id="comment-after-done"),
    pytest.param(
        chunk("Hi") + b"data: [DONE]\n\n: trailing comment, no blank line\n", id="comment-line-at-end"
    ),
    pytest.param(chunk("Hi").replace(b"\n", b"\r") + b"data: [DONE]\r\r", id="cr-only"),
    pytest.param(chunk("Hi").replace(b"\n", b"\r\n") + b"data: [DONE]\r\n\r\n", id="crlf"),
    pytest.param(b"\xef\xbb\xbf" + chunk("Hi") + b"data: [DONE]\n\n", id="bom"),
    pytest.param(b": OPENROUTER PROCESSING\n\n" + chunk("Hi") + b"event: done\ndata: [DONE]\n\n", id="named"),
]


@pytest.mark.parametrize("stream", COMPLETE)
@pytest.mark.parametrize("size", [1, 3, 17, 100_000])
async def test_a_complete_stream_is_relayed_byte_for_byte(stream: bytes, size: int) -> None:
    response, reply, outcome, _ = await relay(split(stream, size))
    assert response.body == stream
    assert (outcome, reply.aborted) == ("ok", False)


@pytest.mark.parametrize("size", [1, 5, 100_000])
async def test_only_whole_events_are_written(size: int) -> None:
    stream = chunk("a") + chunk("b").replace(b"\n", b"\r\n") + b"data: [DONE]\n\n"
    response, _, _, _ = await relay(split(stream, size))
    for write in response.writes:
        assert write.endswith((b"\n\n", b"\r\n\r\n", b"\r\n\r")) or write == b"\n"


# ---- usage ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "usage_chunk",
    [
        pytest.param(USAGE_CHUNK, id="spaced"),
        pytest.param(USAGE_CHUNK.replace(b" ", b""), id="compact"),
        pytest.param(USAGE_CHUNK.replace(b'"usage": ', b'"usage" :\ndata: '), id="two-data-lines"),
    ],
)
async def test_usage_is_read_from_the_usage_chunk(usage_chunk: bytes) -> None:
    stream = chunk("Hi") + usage_chunk + b"data: [DONE]\n\n"
    response, _, outcome, usage = await relay(split(stream, 7))
    assert (outcome, usage) == ("ok", USAGE)
    assert response.body == stream


async def test_a_null_usage_in_every_chunk_is_not_usage() -> None:
    _, _, _, usage = await relay([chunk("a"), chunk("b"), b"data: [DONE]\n\n"])
    assert usage is None


# ---- a client that did not ask for usage: none reaches it, the relay still reads it -----------------

COMPACT_USAGE_CHUNK = USAGE_CHUNK.replace(b" ", b"")
DONE = b"data: [DONE]\n\n"


@pytest.mark.parametrize("size", [1, 7, 100_000])
@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"], ids=["lf", "crlf"])
async def test_openais_usage_layout_is_removed_for_a_client_that_did_not_ask(
    size: int, line_end: bytes
) -> None:
    """OpenAI with include_usage: `"usage":null` last in every chunk, then a `choices: []` usage chunk.
    Without include_usage OpenAI sends neither: the member and the chunk go, every other byte stays."""
    stream = chunk("Hel") + chunk("lo") + COMPACT_USAGE_CHUNK + DONE
    expected = chunk("Hel", usage=None) + chunk("lo", usage=None) + DONE
    response, reply, outcome, usage = await relay(
        split(stream.replace(b"\n", line_end), size), show_usage=False
    )
    # (a read that ends between the \r and the \n of the usage chunk's last line end leaves that \n to
    # the next read: an extra blank line, which to an SSE reader is nothing)
    assert response.body.replace(b"\r\n\r\n\n", b"\r\n\r\n") == expected.replace(b"\n", line_end)
    assert (outcome, usage, reply.aborted) == ("ok", USAGE, False)


async def test_a_client_that_asked_gets_the_stream_byte_for_byte() -> None:
    stream = chunk("Hel") + chunk("lo") + COMPACT_USAGE_CHUNK + DONE
    response, _, outcome, usage = await relay(split(stream, 7), show_usage=True)
    assert (response.body, outcome, usage) == (stream, "ok", USAGE)


@pytest.mark.parametrize(
    ("upstream", "relayed"),
    [
        # the text of a member inside a string has its quotes escaped: it is content, not a member
        pytest.param(chunk('say ,"usage":null}'), chunk('say ,"usage":null}', usage=None), id="in-content"),
        pytest.param(chunk("a", usage=None), chunk("a", usage=None), id="no-usage-member"),
        # other spellings of the member: re-encoded without it
        pytest.param(chunk("a", usage='"usage": null'), chunk("a", usage=None), id="spaced-null"),
        pytest.param(
            chunk("a").replace(b',"usage":null}', b',"usage":\ndata: null}'),
            chunk("a", usage=None),
            id="null-on-its-own-data-line",
        ),
        # usage on a chunk that has choices (some OpenAI-compatible servers): the chunk without it
        pytest.param(
            chunk("a", usage='"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}'),
            chunk("a", usage=None),
            id="usage-on-a-content-chunk",
        ),
        # a member of that name deeper in the chunk is not the chunk's usage: left as it is
        pytest.param(
            chunk("a", usage='"x_extra":{"id":"r","usage":null}'),
            chunk("a", usage='"x_extra":{"id":"r","usage":null}'),
            id="nested-member",
        ),
        pytest.param(
            chunk("a", usage='"x_extra":{"id":"r","usage":null},"usage":null'),
            chunk("a", usage='"x_extra":{"id":"r","usage":null}'),
            id="nested-member-and-the-chunks",
        ),
        pytest.param(
            b"event: chunk\n" + chunk("a", usage='"usage": null'),
            b"event: chunk\n" + chunk("a", usage=None),
            id="named-event",
        ),
    ],
)
async def test_usage_members_are_removed_only_where_they_are_the_chunks(
    upstream: bytes, relayed: bytes
) -> None:
    response, _, outcome, _ = await relay([upstream + DONE], show_usage=False)
    assert json.loads(response.body.split(b"data: ")[1].split(b"\n")[0]) == json.loads(
        relayed.split(b"data: ")[1].split(b"\n")[0]
    )
    assert response.body == relayed + DONE
    assert outcome == "ok"


async def test_usage_is_removed_and_an_error_event_redacted_in_the_same_read() -> None:
    error = b'data: {"error":{"message":"bad key ' + SECRET.encode() + b'","code":401}}\n\n'
    stream = chunk("a") + COMPACT_USAGE_CHUNK + chunk("b") + error
    response, _, outcome, usage = await relay([stream], show_usage=False)
    body = response.body
    assert body.startswith(chunk("a", usage=None) + chunk("b", usage=None))
    assert SECRET.encode() not in body and MASK in json.loads(body.split(b"\n")[4][6:])["error"]["message"]
    assert (outcome, usage) == ("upstream_error", USAGE)


# ---- streams that do not end as they should --------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "relayed"),
    [
        pytest.param([chunk("a"), b'data: {"id":'], chunk("a"), id="cut-mid-event"),
        pytest.param([chunk("a"), chunk("b")], chunk("a") + chunk("b"), id="no-done"),
        pytest.param([chunk("a"), b"data: [DONE]"], chunk("a"), id="done-without-blank-line"),
    ],
)
async def test_a_stream_cut_short_ends_with_a_truncation_event(parts: list[bytes], relayed: bytes) -> None:
    response, _, outcome, _ = await relay(parts)
    assert response.body == relayed + TRUNCATED_FRAME
    assert outcome == "truncated"


async def test_an_upstream_failure_mid_stream_becomes_an_error_event() -> None:
    failure = UpstreamFailure(504, "upstream provider 'p' timed out", "upstream_timeout", "timeout")
    response, _, outcome, _ = await relay([chunk("a"), b"data: {", failure])
    assert response.writes[0] == chunk("a")
    error = json.loads(response.writes[1].split(b"\n")[0][6:])
    assert error["error"]["code"] == "upstream_timeout"
    assert response.body.endswith(b"data: [DONE]\n\n")
    assert outcome == "timeout"


@pytest.mark.parametrize("size", [1, 64, 100_000])
async def test_an_event_over_the_cap_ends_the_stream_and_stops_the_upstream(size: int) -> None:
    stream = chunk("a") + b"data: " + b"x" * 5000 + b"\n\n" + chunk("never") + b"data: [DONE]\n\n"
    response, reply, outcome, _ = await relay(split(stream, size), max_event_bytes=1000)
    assert response.body.startswith(chunk("a"))
    error = json.loads(response.body[len(chunk("a")) :].split(b"\n")[0][6:])
    assert error["error"]["code"] == "upstream_event_too_large"
    assert response.body.endswith(b"data: [DONE]\n\n") and b"never" not in response.body
    assert (outcome, reply.aborted) == ("too_large", True)


# ---- the upstream's own error event: relayed (it ends the stream), redacted --------------------------


async def test_an_upstream_error_event_ends_the_stream_without_a_truncation_event() -> None:
    error = b'data: {"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}\n\n'
    response, _, outcome, _ = await relay([chunk("a"), error])
    assert response.body == chunk("a") + error  # nothing to redact: as the upstream sent it
    assert outcome == "upstream_error"


@pytest.mark.parametrize("size", [1, 9, 100_000])
async def test_secrets_in_an_upstream_error_event_are_redacted_and_other_events_untouched(size: int) -> None:
    ok = chunk(f"my key is {SECRET}, Authorization: Bearer abcdefgh12345")  # model output: not ours to edit
    message = f"invalid x-api-key: {SECRET} (Authorization: Bearer abcdefgh12345)"
    error = (
        b"event: error\ndata: " + json.dumps({"error": {"message": message, "code": 401}}).encode() + b"\n\n"
    )
    stream = ok + error + b"data: [DONE]\n\n"
    response, _, outcome, _ = await relay(split(stream, size))
    body = response.body
    assert body.startswith(ok) and body.endswith(b"data: [DONE]\n\n")
    relayed = body[len(ok) : -len(b"data: [DONE]\n\n")]
    assert SECRET.encode() not in relayed and b"abcdefgh12345" not in relayed
    assert relayed.startswith(b"event: error\ndata: ")
    assert MASK in json.loads(relayed.split(b"\n")[1][6:])["error"]["message"]
    assert outcome == "upstream_error"


@pytest.mark.parametrize(
    "after",
    [
        pytest.param([b"data: " + b"x" * 2000], id="event-too-large"),
        pytest.param([UpstreamFailure(502, "closed", "upstream_connection_error", "broken")], id="reset"),
    ],
)
async def test_nothing_is_added_after_the_end_of_a_complete_stream(after: list[bytes | Exception]) -> None:
    stream = chunk("a") + b"data: [DONE]\n\n"
    response, _, outcome, _ = await relay([stream, *after], max_event_bytes=1000)
    assert (response.body, outcome) == (stream, "ok")
