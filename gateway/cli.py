"""Command line.

gateway [--config FILE] [--host H] [--port P] [--workers N]   serve
gateway check [FILE]                                        validate and compile, list every problem
gateway hash-key                                            the stored form of a gateway key (stdin)
gateway params [FILE]                                       every request parameter's fate, per dialect

Exit status 2 for anything that stops it from starting (gateway.startup), with one log line saying
why; `check` exits 1 for config problems (a model left unavailable by a missing key is not one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import getpass
import ipaddress
import os
import re
import signal
import sys
from typing import NoReturn

import structlog
from aiohttp import web

from gateway import __version__
from gateway.app import create_app
from gateway.config.loader import key_digest, load_config
from gateway.config.problems import ConfigError, did_you_mean
from gateway.engine.parameter_fates import compiled_dialects, failures, markdown, parameter_matrix
from gateway.logging_setup import configure_logging
from gateway.observability.keys import READINESS
from gateway.reload import RegistryHolder, load_registry
from gateway.rules.template import RuleError
from gateway.server import gateway_runner
from gateway.spend.command import spend_command
from gateway.startup import (
    STARTUP_FAILED,
    StartupFailure,
    bind_failure,
    check_metrics_dir,
    config_failure,
    unexpected_failure,
)
from gateway.workers import reserve_port, supervise

log = structlog.get_logger("gateway")


class _Parser(argparse.ArgumentParser):
    """argparse, with a "did you mean" for a misspelt command, and the way to serve a file for a
    file name given where a command goes."""

    def error(self, message: str) -> NoReturn:
        match = _INVALID_COMMAND.search(message)
        if match is not None:
            word = match.group(1)
            close = did_you_mean(word, COMMANDS)
            if close is not None:
                hint = f"did you mean {close!r}?"
            elif word.endswith((".yaml", ".yml")):
                hint = f"to serve a file: gateway --config {word}"
            else:
                hint = f"commands: {', '.join(COMMANDS)}; without one it serves --config"
            message = f"unknown command {word!r} ({hint})"
        super().error(message)


_INVALID_COMMAND = re.compile(r"argument COMMAND: invalid choice: '([^']*)'")
COMMANDS = ("check", "hash-key", "params")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (0 to 65535; 0 picks a free one)")
    return port


def _process_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a number of processes (1 or more)")
    return count


def _parser() -> argparse.ArgumentParser:
    default_config = os.environ.get("GATEWAY_CONFIG", "routes.yaml")
    parser = _Parser(
        prog="gateway",
        description="OpenAI-compatible LLM API gateway. Without a command it serves --config.",
        usage="gateway [--config FILE] [--host H] [--port P] [--workers N] [--log-format F]\n"
        "       gateway check [FILE]\n"
        "       gateway hash-key\n"
        "       gateway params [FILE]\n"
        "       gateway spend KEY [FILE]",
        epilog="Exit status: 0 after a clean stop (SIGTERM); 2 when it cannot start (one `startup_failed` "
        "log line says why) or the arguments are wrong. Each command has its own --help.",
    )
    parser.add_argument(
        "--config",
        default=default_config,
        metavar="FILE",
        help="routes.yaml to serve (default: $GATEWAY_CONFIG or ./routes.yaml)",
    )
    parser.add_argument("--host", metavar="H", help="listen address (overrides listen.host)")
    parser.add_argument(
        "--port", type=_port, metavar="P", help="listen port (overrides listen.port; 0 picks a free one)"
    )
    parser.add_argument("--log-format", choices=("auto", "json", "console"), help="overrides log.format")
    parser.add_argument(
        "--workers",
        type=_process_count,
        default=1,
        metavar="N",
        help="processes sharing the port (default 1)",
    )
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # set for workers
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    check_parser = commands.add_parser(
        "check",
        prog="gateway check",
        help="validate and compile a config; list every problem, and each unavailable model with why",
        description="Load, validate and compile FILE exactly as serving it would, without serving. "
        "Exit status: 0 valid (models whose provider has no key are listed as unavailable: a missing "
        "key is not a config error), 1 problems (each on its own line, with its YAML path), 2 bad "
        "arguments.",
    )
    check_parser.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="the config to check (default: --config, $GATEWAY_CONFIG or ./routes.yaml)",
    )
    commands.add_parser(
        "hash-key",
        prog="gateway hash-key",
        help="print the stored form (sha256:<hex>) of a gateway key read from stdin or a prompt",
        description="Read a gateway key (prompted on a terminal, else stdin) and print the `hash` to "
        "put in auth.keys[]. Exit status 2 if the key is shorter than 16 characters.",
    )
    params_parser = commands.add_parser(
        "params",
        prog="gateway params",
        help="print what each dialect does with every request parameter (a Markdown table)",
        description="Try every parameter of the OpenAI chat, completions and embeddings requests in each "
        "dialect and print its fate: passed, mapped, emulated, ignored, rejected, or LOST (dropped without a "
        "word). Without FILE: the shipped dialects; with FILE: the dialects its providers use and those it "
        "defines. Exit status: 0, or 1 when a parameter is LOST (each named on stderr) or FILE has problems.",
    )
    params_parser.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="a routes.yaml whose dialects to show (default: the shipped ones)",
    )
    spend_parser = commands.add_parser(
        "spend",
        prog="gateway spend",
        help="print a key's spend, requests and tokens this day, this month and in total (Redis store)",
        description="Read KEY's spend from the Redis store FILE's gateways share (auth.store: redis). The "
        "memory store is inside each gateway: ask it (GET /v1/gateway/keys/{name}/spend). Exit status: 0, "
        "or 1 when the spend cannot be read (each reason on stderr).",
    )
    spend_parser.add_argument("key", metavar="KEY", help="the key's name (auth.keys[].name)")
    spend_parser.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="the config (default: --config, $GATEWAY_CONFIG or ./routes.yaml)",
    )
    spend_parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    return parser


def check(path: str) -> int:
    """Validate and compile a config without serving it; every problem on its own line (stderr, exit
    1), or what is served and each unavailable model with its reason (stdout, exit 0)."""
    configure_logging("warning", "console")
    try:
        registry = load_registry(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}" if not problem.startswith(path) else problem, file=sys.stderr)
        return 1
    served = sorted(registry.routes)
    count = f"{len(served)} model{'' if len(served) == 1 else 's'} served"
    names = f" ({', '.join(served)})" if served else ""
    unavailable = sorted(registry.unavailable.items())
    print(f"{path}: ok: {count}{names}, {len(unavailable)} unavailable{':' if unavailable else ''}")
    for alias, reason in unavailable:
        print(f"  {alias}: {reason}")
    disabled = {
        f"provider {p.name!r} is disabled: {p.disabled_reason}"
        for p in registry.config.providers.values()
        if p.disabled_reason is not None
    }
    for warning in registry.config.warnings:
        if warning not in disabled:  # said above, model by model
            print(f"{path}: warning: {warning}")
    return 0


def params(path: str | None) -> int:
    """The parameter matrix (gateway.engine.parameter_fates) as Markdown on stdout; a LOST parameter
    is also named on stderr, and makes the exit status 1."""
    configure_logging("warning", "console")
    try:
        if path is None:
            dialects = compiled_dialects()
        else:
            config = load_config(path)
            used = {provider.dialect for provider in config.providers.values()} | set(config.dialects)
            dialects = compiled_dialects(config.dialects, used)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}" if path and not problem.startswith(path) else problem, file=sys.stderr)
        return 1
    except RuleError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    matrix = parameter_matrix(dialects)
    print(markdown(matrix), end="")
    lost = failures(matrix)
    for line in lost:
        print(line, file=sys.stderr)
    return 1 if lost else 0


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
    args = _parser().parse_args(argv)
    if args.command == "check":
        return check(args.file or args.config)
    if args.command == "hash-key":
        return hash_key()
    if args.command == "params":
        return params(args.file)
    if args.command == "spend":
        return spend_command(args.file or args.config, args.key, args.json)
    # a SIGHUP before the reload handler is installed must not kill a starting process
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    logging_configured = False
    try:
        holder = _load(args.config)
        config = holder.current.config
        configure_logging(config.log.level, args.log_format or config.log.format)
        logging_configured = True
        status = _serve(args, argv, holder)
    except StartupFailure as failure:
        if not logging_configured:
            configure_logging("info", args.log_format or "auto")
        log.error("startup_failed", reason=failure.reason, **failure.fields)
        return STARTUP_FAILED
    # drained and stopped: a late second SIGTERM must not turn the clean exit into a kill
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return status


def _load(path: str) -> RegistryHolder:
    try:
        return RegistryHolder.load(path)
    except ConfigError as exc:
        raise config_failure(path, exc) from None
    except Exception as exc:
        raise unexpected_failure(exc) from None


def _serve(args: argparse.Namespace, argv: list[str], holder: RegistryHolder) -> int:
    config = holder.current.config
    host = args.host or config.listen.host
    port = config.listen.port if args.port is None else args.port
    if args.workers > 1:
        _check_bindable(host, port)
        _log_warnings(holder, host)
        return supervise(_worker_argv(argv), host, port, args.workers)
    check_metrics_dir(os.environ)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(serve(holder, host, port, reuse_port=args.reuse_port))
    return 0


def _log_warnings(holder: RegistryHolder, host: str) -> None:
    """The config's warnings, once the port is bound: a process that cannot start says one thing."""
    for warning in holder.current.config.warnings:
        log.warning("config_warning", detail=warning)
    if holder.current.keyring.open and not _loopback(host):
        log.warning(
            "open_on_network",
            host=host,
            detail="no gateway keys configured: anyone who reaches it can use it",
        )


def _check_bindable(host: str, port: int) -> None:
    """The supervisor binds the port its workers share first thing: a failure to, said in one line."""
    try:
        reserve_port(host, port).close()
    except OSError as exc:
        raise bind_failure(exc, host, port) from None


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
    app, runner = await _start(holder, host, port, reuse_port)
    _log_warnings(holder, host)
    limits = holder.current.config.limits
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


async def _start(
    holder: RegistryHolder, host: str, port: int, reuse_port: bool
) -> tuple[web.Application, web.AppRunner]:
    """The app, listening; StartupFailure (with nothing left open) if it cannot be."""
    runner: web.AppRunner | None = None
    try:
        app = create_app(holder)
        runner = gateway_runner(app, holder.current.config.limits)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=2048, reuse_port=reuse_port or None)
        try:
            await site.start()
        except OSError as exc:
            raise bind_failure(exc, host, port) from None
    except BaseException as exc:
        if runner is not None:
            with contextlib.suppress(Exception):  # the failure to report is the one that stopped it
                await runner.cleanup()
        if isinstance(exc, StartupFailure) or not isinstance(exc, Exception):
            raise
        raise unexpected_failure(exc, holder.current.redactor.redact) from None
    # what start-up built (modules, config, the app) lives as long as the process: out of the garbage
    # collector's sight, a full collection (a pause of the event loop) only walks what requests made
    # (the price: if a SIGHUP replaces this first registry, the part of it held in reference cycles
    # is never freed, a one-time cost of well under a megabyte)
    gc.freeze()
    return app, runner
