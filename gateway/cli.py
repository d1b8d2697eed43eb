"""Command line.

gateway [--config FILE] [--host H] [--port P] [--workers N]   serve
gateway check FILE                                          validate and compile, list every problem
gateway hash-key                                            the stored form of a gateway key (stdin)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import getpass
import ipaddress
import os
import signal
import sys

import structlog
from aiohttp import web

from gateway import __version__
from gateway.app import create_app
from gateway.config.loader import key_digest
from gateway.config.problems import ConfigError
from gateway.logging_setup import configure_logging
from gateway.observability.keys import READINESS
from gateway.reload import RegistryHolder, load_registry
from gateway.server import gateway_runner
from gateway.workers import supervise

log = structlog.get_logger("gateway")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="OpenAI-compatible LLM API gateway.")
    parser.add_argument(
        "--config",
        default=os.environ.get("GATEWAY_CONFIG", "routes.yaml"),
        help="routes.yaml to serve (default: $GATEWAY_CONFIG or ./routes.yaml)",
    )
    parser.add_argument("--host", help="listen address (overrides listen.host)")
    parser.add_argument("--port", type=int, help="listen port (overrides listen.port; 0 picks a free one)")
    parser.add_argument("--log-format", choices=("auto", "json", "console"), help="overrides log.format")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the port (default 1)")
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set for workers
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    return parser


def check(path: str) -> int:
    """Validate and compile a config without serving it; every problem on its own line."""
    configure_logging("warning", "console")
    try:
        registry = load_registry(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}" if not problem.startswith(path) else problem, file=sys.stderr)
        return 1
    print(f"{path}: ok ({len(registry.routes)} models, {len(registry.unavailable)} unavailable)")
    return 0


def hash_key() -> int:
    """Read a gateway key (prompted on a terminal, else stdin) and print its stored form."""
    key = getpass.getpass("gateway key: ") if sys.stdin.isatty() else sys.stdin.read()
    key = key.strip()
    if len(key) < 16:
        print("a gateway key must be at least 16 characters (e.g. `openssl rand -hex 24`)", file=sys.stderr)
        return 2
    print(key_digest(key))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["check"]:
        if len(argv) != 2:
            print("usage: gateway check FILE", file=sys.stderr)
            return 2
        return check(argv[1])
    if argv[:1] == ["hash-key"]:
        return hash_key()
    args = _parser().parse_args(argv)
    # a SIGHUP before the reload handler is installed must not kill a starting process
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        holder = RegistryHolder.load(args.config)
    except ConfigError as exc:
        configure_logging("info", args.log_format or "auto")
        log.error("config_invalid", path=args.config, problems=exc.problems)
        return 1
    config = holder.current.config
    configure_logging(config.log.level, args.log_format or config.log.format)
    for warning in config.warnings:
        log.warning("config_warning", detail=warning)
    host = args.host or config.listen.host
    port = config.listen.port if args.port is None else args.port
    if holder.current.keyring.open and not _loopback(host):
        log.warning(
            "open_on_network",
            host=host,
            detail="no gateway keys configured: anyone who reaches it can use it",
        )
    if args.workers > 1:
        return supervise(_worker_argv(argv), host, port, args.workers)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(serve(holder, host, port, reuse_port=args.reuse_port))
    # drained and stopped: a late second SIGTERM must not turn the clean exit into a kill
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return 0


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _worker_argv(argv: list[str]) -> list[str]:
    """The parent's arguments minus those the supervisor sets for each worker."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in ("--workers", "--host", "--port"):
            skip = "=" not in arg
            continue
        out.append(arg)
    return out


async def serve(holder: RegistryHolder, host: str, port: int, reuse_port: bool = False) -> None:
    app = create_app(holder)
    limits = holder.current.config.limits
    runner = gateway_runner(app, limits)
    await runner.setup()
    # what start-up built (modules, config, the app) lives as long as the process: out of the garbage
    # collector's sight, a full collection (a pause of the event loop) only walks what requests made
    # (the price: if a SIGHUP replaces this first registry, the part of it held in reference cycles
    # is never freed, a one-time cost of well under a megabyte)
    gc.freeze()
    site = web.TCPSite(runner, host, port, backlog=2048, reuse_port=reuse_port or None)
    await site.start()
    actual_port = runner.addresses[0][1] if runner.addresses else port
    log.info(
        "listening",
        host=host,
        port=actual_port,
        url=f"http://{host}:{actual_port}/v1",
        models=sorted(holder.current.routes),
        unavailable=sorted(holder.current.unavailable),
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, holder.reload)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        # stop accepting, close idle connections, let in-flight requests finish (up to the drain
        # deadline), then close the upstream pool
        app[READINESS].draining = True
        for listening in list(runner.sites):  # no new connections from here on...
            await listening.stop()
        log.info("draining", deadline_s=limits.drain_timeout)  # ...which this event promises
        await runner.cleanup()
        log.info("stopped")
