"""Built-in HTTP load generator, used when `wrk` is not installed.

CONNS keep-alive connections each send the same POST back to back for SECONDS (or, with
--requests N, until N responses arrived, SECONDS being a cap), over raw asyncio streams (a full
HTTP client would cost more CPU than the servers it measures). Prints one JSON line: requests, rps,
errors and latency percentiles in ms (the same keys run_bench reads from wrk).

  python tests/bench/load.py --url http://127.0.0.1:18001/v1/chat/completions \
      --conns 32 --seconds 8 --body-file tests/bench/chat_request.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from percentiles import summarize_ms

HERE = Path(__file__).resolve().parent


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    bytes: int = 0
    err_connect: int = 0
    err_read: int = 0
    err_status: int = 0
    err_timeout: int = 0
    started: int = 0  # requests sent (for --requests)


def build_request(url: str, body: bytes, auth: str) -> tuple[str, int, bytes]:
    u = urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    head = (
        f"POST {u.path or '/'}{'?' + u.query if u.query else ''} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\nContent-Type: application/json\r\nAuthorization: {auth}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return host, port, head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """Read one response; returns (status, body bytes, server wants close)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked, close = 0, False, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    if not chunked:
        await reader.readexactly(length)
        return status, length, close
    total = 0
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        await reader.readexactly(size + 2)
        total += size
        if size == 0:
            return status, total, close


async def connection(
    host: str, port: int, request: bytes, deadline: float, limit_s: float, tally: Tally, max_requests: int
) -> None:
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    while time.perf_counter() < deadline and (not max_requests or tally.started < max_requests):
        if writer is None:
            try:
                async with asyncio.timeout(limit_s):
                    reader, writer = await asyncio.open_connection(host, port)
            except (OSError, TimeoutError):
                tally.err_connect += 1
                await asyncio.sleep(0.01)
                continue
        assert reader is not None
        t0 = time.perf_counter()
        tally.started += 1
        try:
            writer.write(request)
            async with asyncio.timeout(limit_s):
                status, size, close = await read_response(reader)
        except TimeoutError:
            tally.err_timeout += 1
            close = True
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            tally.err_read += 1
            close = True
        else:
            tally.latencies.append(time.perf_counter() - t0)
            tally.bytes += size
            if not 200 <= status < 300:
                tally.err_status += 1
        if close:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def run(
    url: str, conns: int, seconds: float, body: bytes, auth: str, limit_s: float, max_requests: int = 0
) -> dict[str, object]:
    host, port, request = build_request(url, body, auth)
    tally = Tally()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    await asyncio.gather(
        *(connection(host, port, request, deadline, limit_s, tally, max_requests) for _ in range(conns))
    )
    wall = time.perf_counter() - t0
    errors = tally.err_connect + tally.err_read + tally.err_status + tally.err_timeout
    return {
        "tool": "builtin",
        "conns": conns,
        "seconds": round(wall, 3),
        "requests": len(tally.latencies),
        "rps": round(len(tally.latencies) / wall, 1) if wall > 0 else 0.0,
        "bytes": tally.bytes,
        "errors": errors,
        "err_connect": tally.err_connect,
        "err_read": tally.err_read,
        "err_status": tally.err_status,
        "err_timeout": tally.err_timeout,
        **summarize_ms("", tally.latencies),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument(
        "--requests", type=int, default=0, help="stop after this many requests (--seconds is then a cap)"
    )
    ap.add_argument("--body-file", type=Path, default=HERE / "chat_request.json")
    ap.add_argument("--auth", default="Bearer bench")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--no-uvloop", action="store_true")
    args = ap.parse_args()
    if not args.no_uvloop:
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            pass
    body = args.body_file.read_bytes().strip()
    result = asyncio.run(
        run(args.url, args.conns, args.seconds, body, args.auth, args.timeout, max(args.requests, 0))
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
