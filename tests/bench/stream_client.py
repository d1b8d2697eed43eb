"""Streaming (SSE) probe: time to first byte and total time of chat, Messages or Responses API streams.

Sends N streamed requests (the body file with "stream": true) one after another over one keep-alive
aiohttp session and prints one JSON line with percentiles in ms:
  ttfb   request sent -> first body bytes received
  total  request sent -> the stream's end: "data: [DONE]" (OpenAI chat), "event: message_stop"
         (Anthropic) or "event: response.completed" (the Responses API; neither of these two sends [DONE])
plus the mean number of SSE data events per stream (the end marker not counted) and the error count.
An `event: error` (both protocols name their error event so) or `event: response.failed` is an error,
not an event.

  python tests/bench/stream_client.py --url http://127.0.0.1:18001/v1/chat/completions --n 300
  python tests/bench/stream_client.py --url http://127.0.0.1:18001/v1/messages \
      --body-file tests/bench/messages_request.json
  python tests/bench/stream_client.py --url http://127.0.0.1:18001/v1/responses \
      --body-file tests/bench/responses_request.json

With several --url (a --body-file each) it interleaves them: round after round, one stream to each in
turn, and prints {"interleaved": [the figures of each URL, in order]}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
from percentiles import summarize_ms

HERE = Path(__file__).resolve().parent


END_EVENTS = (b"message_stop", b"response.completed", b"response.incomplete")
ERROR_EVENTS = (b"error", b"response.failed")


class SseEnd:
    """Reads an SSE body chunk by chunk, counting data events until the stream's end marker: OpenAI's
    `data: [DONE]`, Anthropic's `event: message_stop` or the Responses API's `event: response.completed`
    (or `.incomplete`), whichever the stream sends."""

    def __init__(self) -> None:
        self.events = 0
        self._buf = b""

    def feed(self, chunk: bytes) -> bool:
        """True once the end marker has arrived; RuntimeError on an `event: error`."""
        self._buf += chunk
        while b"\n\n" in self._buf:
            message, self._buf = self._buf.split(b"\n\n", 1)
            event, data = b"", False
            for line in message.split(b"\n"):
                if line.startswith(b"event:"):
                    event = line[6:].strip()
                elif line.startswith(b"data:"):
                    if line[5:].strip() == b"[DONE]":
                        return True
                    data = True
            if event in END_EVENTS:
                return True
            if event in ERROR_EVENTS:
                raise RuntimeError(f"event: {event.decode()}: {message[:200]!r}")
            self.events += data
        return False


async def one_stream(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    ttfb: float | None = None
    sse = SseEnd()
    async with session.post(url, data=body, headers=headers) as resp:
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {(await resp.read())[:200]!r}")
        async for chunk in resp.content.iter_any():
            if ttfb is None:
                ttfb = time.perf_counter() - t0
            if sse.feed(chunk):
                return ttfb, time.perf_counter() - t0, sse.events
    raise RuntimeError(
        "stream ended without its end marker (data: [DONE], event: message_stop or response.completed)"
    )


async def run(url: str, body: bytes, auth: str, n: int, warmup: int, max_s: float) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "Authorization": auth}
    ttfbs: list[float] = []
    totals: list[float] = []
    events: list[int] = []
    errors: list[str] = []
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), timeout=timeout) as session:
        for _ in range(warmup):
            try:
                await one_stream(session, url, body, headers)
            except (aiohttp.ClientError, RuntimeError, TimeoutError) as e:
                errors.append(f"warm-up: {e!r}"[:200])
        t0 = time.perf_counter()
        for _ in range(n):
            if time.perf_counter() - t0 > max_s:
                break
            try:
                ttfb, total, count = await one_stream(session, url, body, headers)
            except (aiohttp.ClientError, RuntimeError, TimeoutError) as e:
                errors.append(repr(e)[:200])
                continue
            ttfbs.append(ttfb)
            totals.append(total)
            events.append(count)
        wall = time.perf_counter() - t0
    return {
        "n": len(totals),
        "errors": len(errors),
        "error_samples": errors[:3],
        "wall_s": round(wall, 3),
        "events_mean": round(sum(events) / len(events), 2) if events else None,
        **summarize_ms("ttfb_", ttfbs),
        **summarize_ms("total_", totals),
    }


async def run_interleaved(
    targets: list[tuple[str, bytes]], auth: str, n: int, warmup: int, max_s: float
) -> list[dict[str, Any]]:
    """Round-robin over `targets` (url, body), one stream each per round, each over its own keep-alive
    session: a drift of the machine's speed, or of the scheduler's placement, hits them all alike,
    which separate phases of sequential streams do not (their p50s moved by 0.1-0.2 ms between runs)."""
    headers = {"Content-Type": "application/json", "Authorization": auth}
    timeout = aiohttp.ClientTimeout(total=30)
    sessions = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), timeout=timeout) for _ in targets
    ]
    figures: list[dict[str, list[Any]]] = [
        {"ttfb": [], "total": [], "events": [], "errors": []} for _ in targets
    ]
    try:
        t0 = time.perf_counter()
        for rnd in range(warmup + n):
            if rnd >= warmup and time.perf_counter() - t0 > max_s:
                break
            for (url, body), session, mine in zip(targets, sessions, figures, strict=True):
                try:
                    ttfb, total, count = await one_stream(session, url, body, headers)
                except (aiohttp.ClientError, RuntimeError, TimeoutError) as e:
                    mine["errors"].append(repr(e)[:200])
                    continue
                if rnd >= warmup:
                    mine["ttfb"].append(ttfb)
                    mine["total"].append(total)
                    mine["events"].append(count)
    finally:
        for session in sessions:
            await session.close()
    return [
        {
            "url": url,
            "n": len(mine["total"]),
            "errors": len(mine["errors"]),
            "error_samples": mine["errors"][:3],
            "events_mean": round(sum(mine["events"]) / len(mine["events"]), 2) if mine["events"] else None,
            **summarize_ms("ttfb_", mine["ttfb"]),
            **summarize_ms("total_", mine["total"]),
        }
        for (url, _), mine in zip(targets, figures, strict=True)
    ]


def _stream_body(path: Path) -> bytes:
    obj = json.loads(path.read_bytes())
    obj["stream"] = True
    return json.dumps(obj, separators=(",", ":")).encode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--url",
        required=True,
        action="append",
        help="repeat it (with a --body-file each) to interleave: one stream per URL per round",
    )
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument(
        "--max-seconds", type=float, default=60.0, help="stop sending new streams after this long"
    )
    ap.add_argument("--body-file", type=Path, action="append", help="default: chat_request.json")
    ap.add_argument("--auth", default="Bearer bench")
    ap.add_argument("--no-uvloop", action="store_true")
    args = ap.parse_args()
    if not args.no_uvloop:
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            pass
    files = args.body_file or [HERE / "chat_request.json"]
    if len(args.url) > 1:
        if len(files) != len(args.url):
            ap.error("interleaved streams take one --body-file per --url")
        targets = [(url, _stream_body(path)) for url, path in zip(args.url, files, strict=True)]
        results = asyncio.run(run_interleaved(targets, args.auth, args.n, args.warmup, args.max_seconds))
        print(json.dumps({"interleaved": results}), flush=True)
        return
    body = _stream_body(files[0])
    result = asyncio.run(run(args.url[0], body, args.auth, args.n, args.warmup, args.max_seconds))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
