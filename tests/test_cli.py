"""The command line: `--help` names every command, `gateway check` says which models are unavailable
and why, mistakes in the arguments get exact messages, and every startup failure is one log line and
exit status 2 (the real CLI, run as a subprocess: what a user sees is what is asserted)."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli import _parser, main
from tests.support.gateway_process import REPO_ROOT

ROUTES = REPO_ROOT / "routes.yaml"
MOCK_ONLY = (
    "providers:\n  mock: {dialect: mock, transport: mock}\nmodels:\n  mock: {provider: mock, model: m}\n"
)
NO_KEYS = {name: value for name, value in os.environ.items() if not name.endswith("_API_KEY")}


# ---- --help and the commands -------------------------------------------------------------------------
def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    assert "gateway check" in out and "gateway hash-key" in out
    assert "--config" in out and "--workers" in out


@pytest.mark.parametrize("command", ["check", "hash-key"])
def test_each_command_has_its_own_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: gateway {command}")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["chek", "routes.yaml"], "unknown command 'chek' (did you mean 'check'?)"),
        (["routes.yaml"], "unknown command 'routes.yaml' (to serve a file: gateway --config routes.yaml)"),
        (["--port", "70000"], "argument --port: 70000 is not a port (0 to 65535; 0 picks a free one)"),
        (["--workers", "0"], "argument --workers: 0 is not a number of processes (1 or more)"),
        (["check", "a.yaml", "b.yaml"], "unrecognized arguments: b.yaml"),
    ],
)
def test_argument_mistakes_get_exact_messages(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_serving_needs_no_command() -> None:
    args = _parser().parse_args(["--config", "my.yaml", "--port", "0", "--workers", "2"])
    assert (args.command, args.config, args.port, args.workers) == (None, "my.yaml", 0, 2)


# ---- gateway check ---------------------------------------------------------------------------------------
def test_check_names_each_unavailable_model_and_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["check", str(ROUTES)]) == 0  # a missing key is not a config error
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{ROUTES}: ok: 1 model served (mock), 5 unavailable:"
    assert (
        "  claude-sonnet: provider 'anthropic' is disabled: environment variable ANTHROPIC_API_KEY is not set"
        in out
    )
    assert "  gpt-4o: provider 'openai' is disabled: environment variable OPENAI_API_KEY is not set" in out
    assert len(out) == 6


def test_check_with_every_model_served(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text(MOCK_ONLY)
    assert main(["check", str(config)]) == 0
    assert capsys.readouterr().out == (
        f"{config}: ok: 1 model served (mock), 0 unavailable\n"
        f"{config}: warning: no price for mock/m: their cost is unknown (cost_usd null, not counted in "
        "gateway_cost_usd_total or budgets); give one under providers.<name>.prices\n"
    )


def test_check_lists_every_problem_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text(MOCK_ONLY.replace("model: m}", "modle: m}") + "  mock: {provider: mokc, model: m}\n")
    assert main(["check", str(config)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{config}: models: duplicate key 'mock' (lines 4 and 5)",
        f"{config}: models.mock.provider: unknown provider 'mokc' (did you mean 'mock'?)",
    ]


@pytest.mark.parametrize("argv", [["check"], ["--config", "{config}", "check"]])
def test_check_reads_the_config_it_would_serve(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mine.yaml"
    config.write_text(MOCK_ONLY)
    monkeypatch.setenv("GATEWAY_CONFIG", str(config) if argv == ["check"] else "absent.yaml")
    assert main([arg.format(config=config) for arg in argv]) == 0
    assert capsys.readouterr().out.startswith(f"{config}: ok: ")


# ---- startup failures: one line, exit status 2 -------------------------------------------------------------
@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def run_gateway(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=REPO_ROOT,
        env=env or NO_KEYS,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_failure_line(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == 2, output
    lines = output.splitlines()
    assert len(lines) == 1, output
    event = json.loads(lines[0])
    assert isinstance(event, dict) and event["event"] == "startup_failed" and event["level"] == "error"
    return event


def test_a_busy_port(busy_port: int) -> None:
    result = run_gateway("--config", str(ROUTES), "--port", str(busy_port), "--log-format", "json")
    event = one_failure_line(result)
    assert event["reason"] == (
        f"port {busy_port} on 127.0.0.1 is in use (another process listens there: stop it, or pick "
        "another port with --port; 0 picks a free one)"
    )


def test_a_busy_port_with_workers(busy_port: int) -> None:
    result = run_gateway(
        "--config", str(ROUTES), "--port", str(busy_port), "--workers", "2", "--log-format", "json"
    )
    assert str(one_failure_line(result)["reason"]).startswith(f"port {busy_port} on 127.0.0.1 is in use")


def test_a_busy_port_on_the_console(busy_port: int) -> None:
    result = run_gateway("--config", str(ROUTES), "--port", str(busy_port), "--log-format", "console")
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output
    assert len(output.splitlines()) == 1 and "startup_failed" in output and "is in use" in output


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unresolvable host", "cannot resolve the listen host 'no-such-host.invalid'"),
        ("address of another machine", "192.0.2.1 is not an address of this machine"),
        ("absent config", "absent.yaml: cannot read: No such file or directory"),
        ("config is a directory", ": cannot read: Is a directory"),
        ("config not UTF-8", "bad.yaml: not UTF-8 text"),
        ("invalid config", "2 problems in "),
        ("unreadable TLS file", "providers.mock.tls.ca_file: cannot read /nonexistent/ca.pem"),
        ("metrics dir absent", "PROMETHEUS_MULTIPROC_DIR=/nonexistent/metrics is not a writable directory"),
    ],
)
def test_every_startup_failure_is_one_line_and_exit_2(case: str, reason: str, tmp_path: Path) -> None:
    config = write(tmp_path / "routes.yaml", MOCK_ONLY)
    args = ["--config", str(config), "--port", "0"]
    env = NO_KEYS
    if case == "unresolvable host":
        args += ["--host", "no-such-host.invalid"]
    elif case == "address of another machine":
        args += ["--host", "192.0.2.1"]  # TEST-NET-1: on no interface
    elif case == "absent config":
        args[1] = str(tmp_path / "absent.yaml")
    elif case == "config is a directory":
        args[1] = str(tmp_path)
    elif case == "config not UTF-8":
        args[1] = str(write(tmp_path / "bad.yaml", b"providers: {}\nmodels: \xff\xfe\n"))
    elif case == "invalid config":
        write(config, MOCK_ONLY.replace("model: m}", "modle: m}") + "listen: {port: x}\n")
    elif case == "unreadable TLS file":
        write(
            config,
            MOCK_ONLY.replace(
                "transport: mock}", "base_url: 'https://x.example', tls: {ca_file: /nonexistent/ca.pem}}"
            ),
        )
    elif case == "metrics dir absent":
        env = {**NO_KEYS, "PROMETHEUS_MULTIPROC_DIR": "/nonexistent/metrics"}
    event = one_failure_line(run_gateway(*args, "--log-format", "json", env=env))
    assert reason in str(event["reason"]), event
    if case == "invalid config":
        assert event["problems"] == [
            "listen.port: expected an integer, got a string",
            "models.mock: unknown key 'modle' (did you mean 'model'?)",
        ]


# ---- how to run it ---------------------------------------------------------------------------------------
def test_outside_its_environment_it_says_how_to_run_it() -> None:
    """`python3 -m gateway` with an interpreter that lacks the dependencies (-S: no site-packages)."""
    result = subprocess.run(
        [sys.executable, "-S", "-m", "gateway", "--help"],
        cwd=REPO_ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output, output
    assert len(output.splitlines()) == 1, output
    assert "'structlog' is not installed for " in output and ".venv/bin/gateway" in output, output


def make_command(*args: str) -> list[str]:
    """The command `make -n ARGS...` would run (the last line: the venv's rule may come first)."""
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return shlex.split(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("make_args", "command"),
    [
        (["run"], [".venv/bin/gateway", "--config", "routes.yaml"]),
        (
            ["run", "HOST=0.0.0.0", "PORT=9000", "CONFIG=my.yaml", "ARGS=--workers 2 --log-format json"],
            [
                ".venv/bin/gateway",
                "--config",
                "my.yaml",
                "--host",
                "0.0.0.0",
                "--port",
                "9000",
                "--workers",
                "2",
                "--log-format",
                "json",
            ],
        ),
        (["run", "PORT=0"], [".venv/bin/gateway", "--config", "routes.yaml", "--port", "0"]),
        (["check"], [".venv/bin/gateway", "check", "routes.yaml"]),
        (["check", "CONFIG=my.yaml"], [".venv/bin/gateway", "check", "my.yaml"]),
    ],
)
def test_make_run_and_check_take_host_port_config_and_args(
    make_args: list[str], command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HOST", "PORT", "CONFIG", "ARGS", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        monkeypatch.delenv(name, raising=False)
    assert make_command(*make_args) == command
    _parser().parse_args(command[1:])  # and the CLI accepts it
