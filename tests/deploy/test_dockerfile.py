"""deploy/Dockerfile (Docker cannot run here): parsed, and checked against the package, the CLI, the
shipped routes.yaml and its own ignore file; its HEALTHCHECK command is run against the real gateway."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import DEPLOY, console_scripts, http_urls, listen_port, parse_cli
from tests.support.gateway_process import REPO_ROOT, GatewayProcess

DOCKERFILE = DEPLOY / "Dockerfile"
IGNORE_FILE = DEPLOY / "Dockerfile.dockerignore"  # BuildKit: <Dockerfile>.dockerignore beside it


@dataclass
class Instruction:
    keyword: str
    value: str

    def exec_form(self) -> list[str]:
        parsed = json.loads(self.value)
        assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed), self
        return parsed


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order; `\\` continues a line, comment lines are dropped (also inside one)."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line, pending = pending + line, ""
        keyword, _, value = line.partition(" ")
        instructions.append(Instruction(keyword.upper(), value.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


INSTRUCTIONS = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def all_of(keyword: str) -> list[Instruction]:
    return [i for i in INSTRUCTIONS if i.keyword == keyword]


def last(keyword: str) -> Instruction:
    found = all_of(keyword)
    assert found, f"no {keyword} in the Dockerfile"
    return found[-1]


def stages() -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in INSTRUCTIONS:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def healthcheck_command() -> list[str]:
    match = re.match(r"^((?:--\S+\s+)*)CMD\s+(.*)$", last("HEALTHCHECK").value)
    assert match is not None, "HEALTHCHECK [options] CMD [...] expected"
    return Instruction("CMD", match[2]).exec_form()


def image_routes() -> tuple[Path, dict[str, Any]]:
    """The routes.yaml COPY'd to CMD's --config path, and its content."""
    config = parse_cli([*last("ENTRYPOINT").exec_form()[1:], *last("CMD").exec_form()]).config
    for copy in all_of("COPY"):
        parts = [p for p in copy.value.split() if not p.startswith("--")]
        if parts[-1] == config:
            source = REPO_ROOT / parts[0]
            return source, yaml.safe_load(source.read_text(encoding="utf-8"))
    raise AssertionError(f"CMD's --config {config} is not COPY'd into the image")


# ---- tests -----------------------------------------------------------------------------------------
def test_every_stage_is_python_3_11_slim_and_the_runtime_installs_the_built_wheel() -> None:
    built = stages()
    assert len(built) >= 2, "a multi-stage build: a wheel, then a runtime that installs it"
    for stage in built:
        assert stage[0].value.split()[0] == "python:3.11-slim", stage[0]
    build_name = built[0][0].value.split()[-1]
    runtime = " ".join(i.value for i in built[-1])
    assert f"from={build_name}" in runtime, "the runtime stage takes the wheels from the build stage"
    assert re.search(r"pip install .*--no-index", runtime), "the runtime installs only the built wheels"
    assert "wheel" in " ".join(i.value for i in built[0] if i.keyword == "RUN")


def test_runs_as_a_numeric_non_root_user() -> None:
    user = last("USER").value.split(":")[0]
    assert user not in ("root", "0")
    assert user.isdigit(), "numeric, so that Kubernetes' runAsNonRoot can verify it"


def test_entrypoint_is_the_packages_console_script_and_cmd_is_accepted_by_the_cli() -> None:
    entrypoint = last("ENTRYPOINT").exec_form()
    assert entrypoint[0] in console_scripts(), f"{entrypoint[0]} is not in [project.scripts]"
    assert entrypoint == ["gateway"]
    cmd = last("CMD").exec_form()
    assert cmd == ["--config", "/etc/gateway/routes.yaml", "--host", "0.0.0.0"]
    args = parse_cli([*entrypoint[1:], *cmd])
    assert args.command == "serve"


def test_expose_matches_the_port_cmd_serves() -> None:
    args = parse_cli(last("CMD").exec_form())
    _, routes = image_routes()
    port = listen_port(args, routes)
    assert [int(p.split("/")[0]) for i in all_of("EXPOSE") for p in i.value.split()] == [port]
    assert args.host == "0.0.0.0", "in a container the gateway listens on every interface"


def test_healthcheck_probes_healthz_on_the_exposed_port_with_python_only() -> None:
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"], "no curl in python:3.11-slim: the check is Python's urllib"
    compile(command[2], "HEALTHCHECK", "exec")
    ((host, port, path),) = http_urls(command)
    assert (host, path) == ("127.0.0.1", "/healthz")
    assert str(port) == last("EXPOSE").value.split("/")[0]


def test_stops_with_sigterm_and_bakes_in_no_secret() -> None:
    assert last("STOPSIGNAL").value == "SIGTERM"
    secret_like = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD)", re.IGNORECASE)
    for instruction in all_of("ENV") + all_of("ARG"):
        names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", instruction.value) or [
            instruction.value.split("=")[0]
        ]
        assert not [n for n in names if secret_like.search(n)], instruction
    source, _ = image_routes()
    assert "${" in source.read_text(encoding="utf-8"), "the image's routes.yaml takes keys from ${VAR}"


# ---- the ignore file ---------------------------------------------------------------------------------
def ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) per line, as Docker reads .dockerignore (Go filepath.Match plus `**`)."""
    patterns: list[tuple[bool, re.Pattern[str]]] = []
    for raw in IGNORE_FILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        patterns.append((negated, re.compile(f"^{regex}$")))
    return patterns


def excluded(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent directories decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for negated, regex in patterns:
        if any(regex.match(c) for c in candidates):
            verdict = not negated
    return verdict


def copy_sources() -> list[str]:
    sources: list[str] = []
    for copy in all_of("COPY"):
        if "--from=" in copy.value:
            continue
        parts = [p for p in copy.value.split() if not p.startswith("--")]
        sources += parts[:-1]
    return sources


def test_context_keeps_what_the_build_copies_and_leaves_out_the_rest() -> None:
    patterns = ignore_patterns()
    for source in copy_sources():
        path = REPO_ROOT / source.rstrip("/")
        assert path.exists(), f"COPY {source}: not in the build context (the repository root)"
        files = (
            [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
            if path.is_dir()
            else [path]
        )
        for file in files:
            relative = file.relative_to(REPO_ROOT).as_posix()
            assert not excluded(relative, patterns), f"{relative} is needed by COPY {source} but ignored"
    for needed in ("pyproject.toml", "README.md", "schemas/routes.schema.json", "gateway/cli.py"):
        assert not excluded(needed, patterns), f"the wheel build needs {needed}"
    for left_out in (
        ".git/HEAD",
        ".venv/bin/python",
        "tests/__init__.py",
        "gateway/__pycache__/cli.cpython-311.pyc",
    ):
        assert excluded(left_out, patterns), f"{left_out} should not be sent to the builder"


# ---- live --------------------------------------------------------------------------------------------
@pytest.mark.subprocess
def test_healthcheck_command_passes_on_a_running_gateway_and_fails_on_an_error(
    live_gateway: GatewayProcess,
) -> None:
    command = [sys.executable if arg == "python" else arg for arg in healthcheck_command()]
    ((_, port, _),) = http_urls(command)
    healthy = [arg.replace(f"127.0.0.1:{port}/", f"127.0.0.1:{live_gateway.port}/") for arg in command]
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_HEALTHCHECK_URL"}
    result = subprocess.run(healthy, capture_output=True, text=True, timeout=30, env=env)
    assert result.returncode == 0, result.stderr
    missing = [arg.replace("/healthz", "/no-such-path") for arg in healthy]
    failed = subprocess.run(missing, capture_output=True, timeout=30, env=env)
    assert failed.returncode != 0, "a 404 must fail the check"
