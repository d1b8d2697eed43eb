"""An OpenAI-format upstream that misbehaves on demand, written on raw asyncio streams.

Raw sockets give exact control over faults an HTTP framework would smooth over (a reset in the
middle of a body, a stream cut mid-event, headers that never come) and an exact count of open
connections, so a test can assert that the gateway left none behind.

Each request takes the next fault from the queue (`ok` when it is empty). Faults:
    ok, ok_stream            a good chat completion / a good 3-chunk SSE stream
    status:<code>            an OpenAI error envelope with that status (429 carries Retry-After: 0)
    reset_mid_body           headers announce 400 bytes, 40 are sent, then the connection is reset
    stall_headers            nothing is sent until the gateway gives up (the connection closes)
    stall_mid_stream         one SSE chunk, then nothing until the connection closes
    malformed_json           200 with a body that is not JSON
    truncate_sse             two SSE chunks and half of a third, then a clean close (Connection: close)
    trickle                  a stream whose 5 chunks come `trickle_gap` seconds apart
    stall_after_headers      the headers of the reply asked for (SSE or JSON), then nothing until the
                             connection closes
    endless_body             200, a chunked JSON body that never ends (until the connection closes)
    gzip_bomb                200, Content-Encoding: gzip, 64 KiB that decode to 64 MiB of zeros
    huge_headers             200 with HUGE_HEADER_FIELDS header fields (of 100 bytes each)
    huge_error               500 whose OpenAI error envelope is HUGE_ERROR_BYTES long
"""

from __future__ import annotations

import asyncio
import functools
import json
import zlib
from collections import deque
from typing import Any

HUGE_HEADER_FIELDS = 200
HUGE_ERROR_BYTES = 256 * 1024

CHAT = {
    "id": "chatcmpl-chaos",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "chaos-1",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "fine", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def chunk(text: str | None, finish: str | None = None) -> bytes:
    delta = {} if text is None else {"content": text}
    body = {
        "id": "chatcmpl-chaos",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "chaos-1",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class ChaosUpstream:
    def __init__(self, trickle_gap: float = 0.05) -> None:
        self.faults: deque[str] = deque()
        self.trickle_gap = trickle_gap
        self.requests: list[dict[str, Any]] = []
        self.open_connections = 0
        self.changed = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def queue(self, *faults: str) -> None:
        self.faults.extend(faults)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def wait_idle(self, within: float = 5.0) -> None:
        """Until no connection is open (the gateway closed or pooled-and-closed every one)."""
        async with asyncio.timeout(within), self.changed:
            await self.changed.wait_for(lambda: self.open_connections == 0)

    async def _set_open(self, delta: int) -> None:
        async with self.changed:
            self.open_connections += delta
            self.changed.notify_all()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._set_open(+1)
        try:
            while True:
                body = await self._read_request(reader)
                if body is None:
                    return
                self.requests.append(body)
                fault = self.faults.popleft() if self.faults else "ok"
                if not await self._serve(fault, body, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()
            await self._set_open(-1)

    async def _read_request(self, reader: asyncio.StreamReader) -> dict[str, Any] | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        length = 0
        for line in head.decode().split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        raw = await reader.readexactly(length) if length else b"{}"
        parsed: dict[str, Any] = json.loads(raw)
        return parsed

    async def _serve(
        self, fault: str, body: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Write the reply; False when the connection must end afterwards."""
        stream = body.get("stream") is True
        if fault == "ok" and stream:
            fault = "ok_stream"
        if fault == "ok":
            payload = json.dumps(CHAT).encode()
            writer.write(
                _head(200, {"Content-Type": "application/json", "Content-Length": str(len(payload))})
            )
            writer.write(payload)
            await writer.drain()
            return True
        if fault.startswith("status:"):
            status = int(fault.split(":")[1])
            error = {
                "error": {"message": f"chaos {status}", "type": "server_error", "param": None, "code": None}
            }
            payload = json.dumps(error).encode()
            headers = {"Content-Type": "application/json", "Content-Length": str(len(payload))}
            if status == 429:
                headers["Retry-After"] = "0"
            writer.write(_head(status, headers) + payload)
            await writer.drain()
            return True
        if fault == "malformed_json":
            payload = b"{this is not json"
            writer.write(
                _head(200, {"Content-Type": "application/json", "Content-Length": str(len(payload))})
            )
            writer.write(payload)
            await writer.drain()
            return True
        if fault == "reset_mid_body":
            writer.write(
                _head(200, {"Content-Type": "application/json", "Content-Length": "400"}) + b"{" * 40
            )
            await writer.drain()
            writer.transport.abort()
            return False
        if fault == "stall_headers":
            await reader.read()  # returns when the gateway closes the connection
            return False
        if fault == "stall_after_headers":
            if stream:
                writer.write(
                    _head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"})
                )
            else:
                writer.write(_head(200, {"Content-Type": "application/json", "Content-Length": "400"}))
            await writer.drain()
            await reader.read()
            return False
        if fault == "endless_body":
            writer.write(_head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
            piece = _chunked(b'{"padding":"' + b"x" * 65536)
            while not writer.is_closing():
                writer.write(piece)
                await writer.drain()
            return False
        if fault == "gzip_bomb":
            packed = _zeros_gzip(64 * 1024 * 1024)
            head = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
            writer.write(_head(200, {**head, "Content-Length": str(len(packed))}) + packed)
            await writer.drain()
            return True
        if fault == "huge_headers":
            payload = json.dumps(CHAT).encode()
            many = {f"X-Field-{i}": "v" * 100 for i in range(HUGE_HEADER_FIELDS)}
            head = {"Content-Type": "application/json", "Content-Length": str(len(payload)), **many}
            writer.write(_head(200, head) + payload)
            await writer.drain()
            return True
        if fault == "huge_error":
            message = "chaos 500 " + "x" * HUGE_ERROR_BYTES
            error = {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
            payload = json.dumps(error).encode()
            writer.write(
                _head(500, {"Content-Type": "application/json", "Content-Length": str(len(payload))})
            )
            writer.write(payload)
            await writer.drain()
            return True
        sse = {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}
        # a reply after which the connection closes says so, as servers do: a client may not send
        # another request on it (nor resend one whose connection closed under it, the upstream may
        # have read it: see gateway/upstream/transport.py)
        writer.write(_head(200, {**sse, "Connection": "close"} if fault == "truncate_sse" else sse))
        if fault == "ok_stream":
            for part in (chunk("one "), chunk("two"), chunk(None, "stop"), b"data: [DONE]\n\n"):
                writer.write(_chunked(part))
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        if fault == "stall_mid_stream":
            writer.write(_chunked(chunk("first")))
            await writer.drain()
            await reader.read()
            return False
        if fault == "truncate_sse":
            writer.write(_chunked(chunk("one ") + chunk("two ") + chunk("thr")[:40]))
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return False
        if fault == "trickle":
            for i in range(5):
                writer.write(_chunked(chunk(f"t{i} ")))
                await writer.drain()
                await asyncio.sleep(self.trickle_gap)  # the fault itself: a slow upstream
            writer.write(_chunked(chunk(None, "stop") + b"data: [DONE]\n\n") + b"0\r\n\r\n")
            await writer.drain()
            return True
        raise ValueError(f"unknown fault {fault!r}")


@functools.cache
def _zeros_gzip(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    return b"".join(packer.compress(block) for _ in range(size // len(block))) + packer.flush()


def _chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"
