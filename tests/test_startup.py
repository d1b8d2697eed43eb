"""Startup failures in words: each bind error by its errno, the config's problems, and what nobody
foresaw (one line still, the configured secrets redacted). The CLI's own run is in test_cli.py."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway import cli
from gateway.config.problems import ConfigError
from gateway.reload import RegistryHolder, load_registry
from gateway.server import gateway_runner
from gateway.startup import StartupFailure, bind_failure, check_metrics_dir, config_failure


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (
            OSError(errno.EACCES, "Permission denied"),
            "no permission to listen on port 80 on 0.0.0.0 (ports below 1024 need root or "
            "CAP_NET_BIND_SERVICE: pick a port of 1024 or more with --port)",
        ),
        (
            OSError(errno.EADDRINUSE, "Address already in use"),
            "port 80 on 0.0.0.0 is in use (another process listens there: stop it, or pick another "
            "port with --port; 0 picks a free one)",
        ),
        (
            OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"),
            "0.0.0.0 is not an address of this machine (--host 0.0.0.0 listens on all)",
        ),
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "cannot resolve the listen host '0.0.0.0': Name or service not known",
        ),
        (OSError(errno.EMFILE, "Too many open files"), "cannot listen on 0.0.0.0:80: Too many open files"),
    ],
)
def test_each_bind_error_in_words(exc: OSError, reason: str) -> None:
    assert bind_failure(exc, "0.0.0.0", 80).reason == reason


def test_config_problems_one_or_many() -> None:
    one = config_failure("r.yaml", ConfigError(["models.x: unknown key 'y'"]))
    assert (one.reason, one.fields) == (
        "r.yaml: models.x: unknown key 'y'",
        {"problems": ["models.x: unknown key 'y'"]},
    )
    many = config_failure("r.yaml", ConfigError(["a: b", "c: d"]))
    assert many.reason == "2 problems in r.yaml (`gateway check r.yaml` lists them)"
    assert many.fields == {"problems": ["a: b", "c: d"]}


def test_metrics_dir_must_be_a_writable_directory(tmp_path: Path) -> None:
    check_metrics_dir({})
    check_metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(
        StartupFailure, match=f"PROMETHEUS_MULTIPROC_DIR={a_file} is not a writable directory"
    ):
        check_metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(a_file)})


async def test_an_unforeseen_failure_is_one_line_with_secrets_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text(
        "providers:\n"
        "  up: {dialect: openai, base_url: 'https://x.example/v1', api_key: sk-live-0123456789}\n"
        "models:\n"
        "  m: {provider: up, model: m}\n"
    )
    holder = RegistryHolder(str(config), load_registry(str(config), {}))

    def broken(_holder: RegistryHolder) -> None:
        raise RuntimeError("cannot use sk-live-0123456789")

    monkeypatch.setattr(cli, "create_app", broken)
    with pytest.raises(StartupFailure) as info:
        await cli.serve(holder, "127.0.0.1", 0)
    assert "sk-live-0123456789" not in info.value.reason
    assert info.value.reason.startswith("RuntimeError: cannot use ")
    assert str(info.value.fields["where"]).endswith(f"test_startup.py:{broken.__code__.co_firstlineno + 1}")


async def test_a_busy_port_leaves_nothing_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text(
        "providers:\n  mock: {dialect: mock, transport: mock}\nmodels:\n  m: {provider: mock, model: m}\n"
    )
    holder = RegistryHolder.load(str(config))
    runners: list[web.AppRunner] = []

    def runner(*args: Any, **kwargs: Any) -> web.AppRunner:
        runners.append(gateway_runner(*args, **kwargs))
        return runners[-1]

    monkeypatch.setattr(cli, "gateway_runner", runner)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(StartupFailure, match=f"port {port} on 127.0.0.1 is in use"):
            await cli.serve(holder, "127.0.0.1", port)
    assert len(runners) == 1 and runners[0].server is None  # cleaned up: the app's cleanup ran
