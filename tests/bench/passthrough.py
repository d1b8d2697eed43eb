"""Bare aiohttp reverse proxy: the "Python floor" the gateway is compared against.

Per request it reads the body, parses and re-serializes it with orjson, forwards it over one
shared ClientSession (keep-alive pool) and returns the upstream's answer; SSE answers are
relayed chunk by chunk as they arrive. No auth, no logging, no retries.

  python tests/bench/passthrough.py --port 18100 --upstream http://127.0.0.1:18001/v1

An incoming /v1/<x> goes to <upstream>/<x> (the upstream is an OpenAI-style base URL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

SESSION = web.AppKey("session", ClientSession)


def _codec() -> tuple[Callable[[bytes], Any], Callable[[Any], bytes], str]:
    try:
        import orjson

        return orjson.loads, orjson.dumps, "orjson"
    except ImportError:
        return json.loads, lambda o: json.dumps(o, separators=(",", ":")).encode(), "stdlib"


def build_app(upstream: str, api_key: str) -> web.Application:
    loads, dumps, _ = _codec()
    base = upstream.rstrip("/")
    auth = "Bearer " + api_key

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        app[SESSION] = ClientSession(
            connector=TCPConnector(limit=256, keepalive_timeout=60),
            timeout=ClientTimeout(total=600, sock_connect=10),
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
        )
        yield
        await app[SESSION].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        try:
            obj = loads(await request.read())
        except ValueError:
            return web.json_response({"error": {"message": "invalid JSON body"}}, status=400)
        stream = isinstance(obj, dict) and bool(obj.get("stream"))
        path = request.path[3:] if request.path.startswith("/v1/") else request.path
        headers = {"Authorization": auth, "Content-Type": "application/json"}
        async with request.app[SESSION].post(base + path, data=dumps(obj), headers=headers) as up:
            ctype = up.headers.get("Content-Type", "application/json")
            if not stream or not ctype.startswith("text/event-stream"):
                return web.Response(body=await up.read(), status=up.status, headers={"Content-Type": ctype})
            resp = web.StreamResponse(
                status=up.status, headers={"Content-Type": ctype, "Cache-Control": "no-cache"}
            )
            await resp.prepare(request)
            async for chunk in up.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_get("/health", health)
    app.router.add_post("/{tail:.*}", forward)
    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18100)
    ap.add_argument("--upstream", default="http://127.0.0.1:18001/v1", help="OpenAI-style base URL")
    ap.add_argument("--api-key", default="bench")
    ap.add_argument("--no-uvloop", action="store_true")
    ap.add_argument(
        "--procs",
        type=int,
        default=1,
        help="serve from this many processes sharing the port (SO_REUSEPORT): the control for the "
        "gateway's --workers CPU comparison",
    )
    ap.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.procs > 1:
        raise SystemExit(_serve_from_processes(args.procs))
    loop = "asyncio"
    if not args.no_uvloop:
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            loop = "uvloop"
        except ImportError:
            pass
    print(
        f"passthrough: http://{args.host}:{args.port} -> {args.upstream} loop={loop} json={_codec()[2]}",
        flush=True,
    )
    app = build_app(args.upstream, args.api_key)
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        backlog=4096,
        reuse_port=args.reuse_port,
    )


def _serve_from_processes(count: int) -> int:
    """Run `count` copies of this command with SO_REUSEPORT; forward SIGTERM/SIGINT; wait for them."""
    argv = [sys.executable, *sys.argv]
    at = argv.index("--procs")
    argv[at : at + 2] = ["--reuse-port"]
    children = [subprocess.Popen(argv) for _ in range(count)]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(child.wait() for child in children)


if __name__ == "__main__":
    main()
