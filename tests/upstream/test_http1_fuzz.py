"""Differential fuzzing of the upstream HTTP/1.1 client against h11 (the reference parser, tests only).

Seeded random responses — status, 1xx before it, header fields, Content-Length / chunked (with chunk
extensions and trailers) / close-delimited framing, gzip or deflate sometimes, bodies of random bytes,
keep-alive or not — are cut at random byte boundaries and, for some, mutated (bytes flipped, replaced,
inserted or dropped). The client reads each one, as a stream or whole; h11 reads the same bytes. Where
h11 accepts the response, the client must give the same status, header fields, (decoded) body and
keep-alive verdict; where h11 rejects it, the client must fail with one of its own errors. Never another
exception, never a hang.

The cut is exact when the bytes are fed to the connection's protocol callbacks directly (most cases);
a share of the cases goes through a loopback socket instead, written piece by piece.
"""

from __future__ import annotations

import asyncio
import gzip
import random
import re
import zlib
from dataclasses import dataclass
from typing import Any

import h11
import pytest

from gateway.upstream.http1 import STREAM_HIGH_WATER, Http1Connection
from gateway.upstream.http1_errors import UpstreamProtocolError
from gateway.upstream.pool import ConnectionPool
from tests.upstream.raw_server import RawServer, read_request

SEED = 20261122
DIRECT_CASES = 600
SOCKET_CASES = 60
HEAD = b"POST /v1/x HTTP/1.1\r\nHost: up\r\nContent-Length: 2\r\n\r\n"
TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VALUE = bytes(range(0x20, 0x7F)) + bytes(range(0xA0, 0x100))  # visible ASCII, space, obs-text
# Where llhttp is stricter than h11, the client refuses (cleanly) what h11 reads: a bare LF as a line end
# (RFC 9112 2.2: a recipient MAY accept it), obs-fold (RFC 9112 5.2: a gateway may answer 502), control
# characters in a field value (not field-content, RFC 9110 5.5), chunk extensions that are not tokens
# (RFC 9112 7.1.1), HTTP versions other than 1.x, bytes after a 1xx that closes the connection.
STRICTER = (
    "Missing expected CR after",
    "Unexpected whitespace after header value",
    "Invalid header field char",
    "Invalid character in chunk extensions",
    "Invalid header value char",
    "Invalid HTTP version",
    "Data after `Connection: close`",
)
# Where llhttp is more lenient, the client reads what h11 refuses: an empty line (a stray CR or LF)
# before a status line, ignored (RFC 9112 2.2); control characters in a reason phrase, which the
# client never looks at. The check: h11 reads the same bytes without them as the client did.
STRAY_EMPTY_LINE = re.compile(rb"(?:^|(?<=\r\n\r\n))[\r\n]+(?=HTTP/)")
STATUS_LINE = re.compile(rb"(?:^|(?<=\r\n))(HTTP/1\.[01] \d{3} )([^\r\n]*)")


@dataclass(frozen=True)
class Outcome:
    """What a reader made of a response: (status, fields, body, reusable), or the error it raised."""

    status: int = 0
    fields: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    reusable: bool | None = None  # None: not compared (the upstream closed the connection anyway)
    error: str | None = None


@dataclass(frozen=True)
class Case:
    seed: int
    pieces: tuple[bytes, ...]
    close: bool  # the upstream closes the connection after the last piece
    mutated: bool
    streamed: bool  # read with read_some (a stream) instead of read_all


# -- generating responses -------------------------------------------------------------------------


def _token(rng: random.Random) -> str:
    return "".join(rng.choice(TOKEN) for _ in range(rng.randint(1, 16)))


def _value(rng: random.Random) -> bytes:
    value = bytes(rng.choice(VALUE) for _ in range(rng.randint(0, 40))).strip(b" ")
    return value or b"v"


def _compress(rng: random.Random, body: bytes) -> tuple[str, bytes]:
    coding = rng.choice(["gzip", "x-gzip", "deflate", "gzip-members"])
    if coding == "deflate":
        return coding, zlib.compress(body, rng.randint(1, 9))
    if coding == "gzip-members":
        cut = rng.randint(0, len(body))
        return "gzip", gzip.compress(body[:cut]) + gzip.compress(body[cut:])
    return coding, gzip.compress(body, rng.randint(1, 9))


def _chunks(rng: random.Random, payload: bytes) -> bytes:
    out = []
    at = 0
    while at < len(payload):
        size = min(rng.choice([1, 7, 100, 4096, 20000]), len(payload) - at)
        extension = b";ext=" + _token(rng).encode() if rng.random() < 0.1 else b""
        hex_size = (b"%x" if rng.random() < 0.8 else b"%X") % size
        out.append(hex_size + extension + b"\r\n" + payload[at : at + size] + b"\r\n")
        at += size
    out.append(b"0\r\n")
    if rng.random() < 0.2:
        out.append(b"X-Trailer: " + _value(rng) + b"\r\n")
    out.append(b"\r\n")
    return b"".join(out)


def response(rng: random.Random) -> tuple[bytes, bool]:
    """A valid response and whether the upstream closes the connection after it."""
    status = rng.choice([200, 200, 200, 201, 204, 206, 301, 304, 400, 404, 429, 500, 503])
    head = []
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        head.append(rng.choice(INFORMATIONAL))
    reason = rng.choice([b"OK", b"", b"Some Reason", b"X"])
    head.append(b"HTTP/1.1 %d %s\r\n" % (status, reason))
    fields = [(_token(rng).encode(), _value(rng)) for _ in range(rng.randint(0, 12))]
    if fields and rng.random() < 0.2:
        fields.append((fields[0][0].upper(), _value(rng)))  # a repeated field, another case
    fields = [f for f in fields if f[0].lower() not in FRAMING]
    body = rng.randbytes(rng.choice([0, 1, 10, 500, 5000, 70000, 300000]))
    if rng.random() < 0.2 and status not in (204, 304):
        coding, payload = _compress(rng, body)
        fields.append((rng.choice([b"Content-Encoding", b"content-encoding"]), coding.encode()))
    else:
        payload = body
    framing = rng.choice(["length", "chunked", "close"])
    close = framing == "close" or rng.random() < 0.1
    if close and framing != "close":
        fields.append((b"Connection", b"close"))
    if status in (204, 304):
        payload = b""
        framing = "length" if framing == "close" else framing
        if framing == "chunked":
            framing = "length"
    if framing == "length":
        fields.insert(rng.randint(0, len(fields)), (b"Content-Length", b"%d" % len(payload)))
    elif framing == "chunked":
        fields.insert(rng.randint(0, len(fields)), (b"Transfer-Encoding", b"chunked"))
        payload = _chunks(rng, payload)
    spaces = rng.choice([b" ", b"", b"  ", b"\t"])
    lines = b"".join(
        name + b":" + spaces + value + rng.choice([b"", b" "]) + b"\r\n" for name, value in fields
    )
    return b"".join(head) + lines + b"\r\n" + payload, close


FRAMING = {b"content-length", b"transfer-encoding", b"connection", b"content-encoding"}
INFORMATIONAL = [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"]


def mutate(rng: random.Random, data: bytes) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        # mostly in the head, where the framing is decided
        end = buffer.find(b"\r\n\r\n") + 4 if rng.random() < 0.7 else len(buffer)
        at = rng.randrange(max(end, 1))
        action = rng.choice(["flip", "replace", "insert", "drop"])
        if action == "flip":
            buffer[at] ^= 1 << rng.randrange(8)
        elif action == "replace":
            buffer[at] = rng.choice(b"\r\n :;0123456789abcdefABCDEF\t\x00\x7f\xff")
        elif action == "insert":
            buffer[at:at] = bytes([rng.choice(b"\r\n :;0123456789aA\t")])
        elif len(buffer) > 1:
            del buffer[at]
    return bytes(buffer)


def split(rng: random.Random, data: bytes) -> tuple[bytes, ...]:
    if not data:
        return ()
    cuts = sorted({rng.randrange(1, len(data) + 1) for _ in range(rng.randint(0, 12))} | {len(data)})
    if rng.random() < 0.1:  # byte by byte for a stretch of the head
        cuts = sorted(set(cuts) | set(range(1, min(len(data), 200))))
    pieces, at = [], 0
    for cut in cuts:
        pieces.append(data[at:cut])
        at = cut
    return tuple(pieces)


def case(seed: int) -> Case:
    rng = random.Random(seed)
    data, close = response(rng)
    mutated = rng.random() < 0.35
    if mutated:
        data = mutate(rng, data)
    return Case(seed, split(rng, data), close or mutated, mutated, rng.random() < 0.5)


# -- the reference: h11 -----------------------------------------------------------------------------


def reference(case: Case) -> Outcome:
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="POST", target="/v1/x", headers=[("Host", "up"), ("Content-Length", "2")]))
    conn.send(h11.Data(data=b"{}"))
    conn.send(h11.EndOfMessage())
    head: h11.Response | None = None
    body: list[bytes] = []
    try:
        for piece in (*case.pieces, *([b""] if case.close else [])):
            conn.receive_data(piece)
            while (event := conn.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
                if isinstance(event, h11.Response):
                    head = event
                elif isinstance(event, h11.Data):
                    body.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    assert head is not None
                    return _decoded(head, b"".join(body), reusable=_reusable(conn, case))
            if conn.their_state is h11.DONE:
                break
    except h11.RemoteProtocolError as exc:
        return Outcome(error=f"h11: {exc}")
    return Outcome(error="h11: incomplete")


def _reusable(conn: h11.Connection, case: Case) -> bool | None:
    if case.close:
        return None
    return conn.their_state is h11.DONE and conn.trailing_data == (b"", False)


def _decoded(head: h11.Response, raw: bytes, reusable: bool | None) -> Outcome:
    fields = tuple((bytes(name), bytes(value)) for name, value in head.headers)
    codings = [value.strip().lower() for name, value in fields if name == b"content-encoding"]
    coding = codings[-1] if codings else b"identity"
    try:
        if coding in (b"gzip", b"x-gzip", b"deflate"):
            body = _gunzip(raw)
        elif coding in (b"identity", b""):
            body = raw
        else:
            return Outcome(error=f"reference: coding {coding!r}")
    except (zlib.error, EOFError, OSError) as exc:
        return Outcome(error=f"reference: {exc}")
    return Outcome(head.status_code, fields, body, reusable)


def _gunzip(raw: bytes) -> bytes:
    """gzip members (or zlib data) one after another, as the client decodes them; nothing else after."""
    out = []
    while raw:
        unpacker = zlib.decompressobj(wbits=47)
        out.append(unpacker.decompress(raw))
        if not unpacker.eof:
            raise EOFError("the compressed data ends before its end")
        raw = unpacker.unused_data
    return b"".join(out)


# -- the client -------------------------------------------------------------------------------------


class FakeTransport:
    """What Http1Connection needs of a transport; reading pauses the feeder, not a socket."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.reading.set()
        self.closed = False

    def write(self, data: bytes) -> None:
        pass

    def writelines(self, data: Any) -> None:
        pass

    def pause_reading(self) -> None:
        self.reading.clear()

    def resume_reading(self) -> None:
        self.reading.set()

    def close(self) -> None:
        self.closed = True
        self.reading.set()

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


async def read(conn: Http1Connection, streamed: bool) -> Outcome:
    try:
        await conn.response_started()
        if streamed:
            pieces = []
            while piece := await conn.read_some():
                pieces.append(piece)
            body = b"".join(pieces)
        else:
            body = await conn.read_all()
    except (UpstreamProtocolError, ConnectionError) as exc:
        conn.finish()
        return Outcome(error=f"client: {type(exc).__name__}: {exc}")
    assert conn.headers is not None
    fields = tuple(
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in conn.headers.items()
    )
    return Outcome(conn.status, fields, body, conn.finish())


async def direct(case: Case) -> Outcome:
    loop = asyncio.get_running_loop()
    conn = Http1Connection(loop, lambda _: None)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.send(HEAD, b"{}", None, None, None)
    reader = asyncio.create_task(read(conn, case.streamed))
    rng = random.Random(case.seed)
    for piece in case.pieces:
        await transport.reading.wait()
        if transport.closed:
            break
        conn.data_received(piece)
        if rng.random() < 0.3:
            await asyncio.sleep(0)  # let the reader run between pieces sometimes: an interleaving
    if case.close and not transport.closed:
        conn.eof_received()
        conn.connection_lost(None)
    async with asyncio.timeout(5.0):
        outcome = await reader
    if case.close and outcome.error is None:
        outcome = Outcome(outcome.status, outcome.fields, outcome.body, None)
    return outcome


async def through_a_socket(case: Case) -> Outcome:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        for piece in case.pieces:
            writer.write(piece)
            await writer.drain()
        if not case.close:
            await reader.read()  # until the client closes

    async with RawServer(handle) as server:
        pool = ConnectionPool()
        try:
            conn = await pool.acquire(pool.target(server.url("/v1/x")), 5.0)
            conn.send(HEAD, b"{}", 5.0, 5.0, 10.0)
            async with asyncio.timeout(10.0):
                outcome = await read(conn, case.streamed)
            conn.close()
        finally:
            await pool.close()
    if case.close and outcome.error is None:
        outcome = Outcome(outcome.status, outcome.fields, outcome.body, None)
    return outcome


def _without_leniencies(case: Case) -> Case:
    data = b"".join(case.pieces)
    data = STRAY_EMPTY_LINE.sub(b"", data)
    data = STATUS_LINE.sub(lambda m: m[1] + re.sub(rb"[\x00-\x08\x0a-\x1f\x7f]", b"?", m[2]), data)
    return Case(case.seed, (data,), case.close, case.mutated, case.streamed)


def _as_h11_reports(outcome: Outcome) -> Outcome:
    """h11 lowercases a Transfer-Encoding value (transfer codings are case-insensitive)."""
    fields = tuple((n, v.lower() if n == b"transfer-encoding" else v) for n, v in outcome.fields)
    return Outcome(outcome.status, fields, outcome.body, outcome.reusable, outcome.error)


def check(case: Case, expected: Outcome, got: Outcome) -> None:
    context = f"seed {case.seed} (mutated: {case.mutated}, streamed: {case.streamed}): {case.pieces!r:.600}"
    if expected.error is not None and got.error is None and case.mutated:
        expected = reference(_without_leniencies(case))
    if expected.error is not None:
        assert got.error is not None, (
            f"h11 refused ({expected.error}), the client read {got!r:.300} {context}"
        )
        return
    if got.error is not None and case.mutated and any(reason in got.error for reason in STRICTER):
        return
    assert _as_h11_reports(got) == expected, context


# -- the tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", range(6))
async def test_the_client_reads_what_h11_reads_cut_anywhere(block: int) -> None:
    per_block = DIRECT_CASES // 6
    for seed in range(SEED + block * per_block, SEED + (block + 1) * per_block):
        fuzzed = case(seed)
        check(fuzzed, reference(fuzzed), await direct(fuzzed))


async def test_the_client_reads_what_h11_reads_through_a_socket() -> None:
    for seed in range(SEED + DIRECT_CASES, SEED + DIRECT_CASES + SOCKET_CASES):
        fuzzed = case(seed)
        check(fuzzed, reference(fuzzed), await through_a_socket(fuzzed))


def test_the_generator_makes_every_kind_of_case() -> None:
    """The seeds above cover what they claim to: mutated and clean, streamed and whole, closing and
    keep-alive, refused and accepted by h11, compressed, chunked with trailers, informational, large."""
    cases = [case(seed) for seed in range(SEED, SEED + DIRECT_CASES)]
    joined = [b"".join(c.pieces).lower() for c in cases]
    outcomes = [reference(c) for c in cases]
    for kind in ("mutated", "streamed", "close"):
        assert {getattr(c, kind) for c in cases} == {True, False}
    assert sum(o.error is not None for o in outcomes) > 50
    assert sum(o.error is None and c.mutated for o, c in zip(outcomes, cases, strict=True)) > 50
    counts = {
        pattern: sum(bool(re.search(pattern, data)) for data in joined)
        for pattern in (rb"content-encoding:\s*(x-)?gzip", rb"content-encoding:\s*deflate", rb" 103 ")
    }
    counts[rb"trailers"] = sum(b"\r\n0\r\nx-trailer" in data for data in joined)
    counts[rb"> STREAM_HIGH_WATER"] = sum(len(data) > STREAM_HIGH_WATER for data in joined)
    assert min(counts.values()) > 20, counts
