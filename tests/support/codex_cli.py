"""The real Codex CLI (npm `@openai/codex`, pinned in tests/clients/package.json), run non-interactively
(`codex exec`) against a Responses API base URL on this machine: the gateway, or a fake standing in for
OpenAI.

`make clients` installs it into tests/clients/node_modules (npm; the package ships a native binary in a
platform package, so running it needs no Node.js). `codex_or_skip()` finds it or skips the test, saying
why.

Each run is sealed off from the machine and the network: an empty temporary HOME whose
`.codex/config.toml` is written here (one model provider, `gateway`, pointing at the base URL with
`wire_api = "responses"`; update checks, analytics, feedback, plugins, apps and history off), a temporary
working directory for its shell tool, and an environment holding only PATH, HOME and the key (nothing
of the developer's OPENAI_* or proxy settings), so the only requests it makes go to the base URL.
`request_max_retries = 0` and `stream_max_retries = 0` make an error answer end the run at once (by
default it retries with backoff, which a test would see as a hang). A base URL nobody listens on is
another matter: it then waits for the network forever, whatever the settings, so every run is killed
(its whole process group) after RUN_TIMEOUT.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.npm_clients import CLIENTS_DIR, locate, run_to_end

PACKAGE = "@openai/codex"
RUN_TIMEOUT = 60.0  # one run, tool loop included: typically a few seconds
VERSION_LINE = re.compile(r"^codex-cli (\S+)$")
KEY_VARIABLE = "GATEWAY_API_KEY"
PROVIDER = "gateway"


@dataclass(frozen=True)
class Run:
    """One finished (or timed out) run of the CLI."""

    argv: tuple[str, ...]
    config: str
    exit_code: int | None  # None: killed after RUN_TIMEOUT
    stdout: str
    stderr: str
    seconds: float

    def describe(self) -> str:
        outcome = "timed out" if self.exit_code is None else f"exit code {self.exit_code}"
        return (
            f"codex {' '.join(self.argv[1:])}: {outcome} after {self.seconds:.1f} s\n"
            f"--- config.toml ---\n{self.config}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def config_toml(*, base_url: str, model: str) -> str:
    """A config with one provider and everything that calls home off."""
    return "\n".join(
        [
            f"model = {_toml_string(model)}",
            f"model_provider = {_toml_string(PROVIDER)}",
            "check_for_update_on_startup = false",
            "",
            "[analytics]",
            "enabled = false",
            "",
            "[feedback]",
            "enabled = false",
            "",
            "[history]",
            'persistence = "none"',
            "",
            "[features]",
            "plugins = false",
            "apps = false",
            "",
            f"[model_providers.{PROVIDER}]",
            f"name = {_toml_string(PROVIDER)}",
            f"base_url = {_toml_string(base_url)}",
            'wire_api = "responses"',
            f"env_key = {_toml_string(KEY_VARIABLE)}",
            "request_max_retries = 0",
            "stream_max_retries = 0",
            "",
        ]
    )


@dataclass(frozen=True)
class Codex:
    executable: Path
    version: str

    def run(
        self, prompt: str, *, base_url: str, api_key: str, model: str, timeout: float = RUN_TIMEOUT
    ) -> Run:
        """`codex exec --skip-git-repo-check -s read-only PROMPT` with the `gateway` provider at `base_url`
        (with /v1: Codex posts to `{base_url}/responses`) and the key in GATEWAY_API_KEY (sent as
        `Authorization: Bearer`). --strict-config: a setting this version no longer knows (one of the
        switches that keep it offline, say) fails the run instead of being ignored; --ephemeral: no
        session files."""
        argv = [
            str(self.executable),
            "exec",
            "--strict-config",
            "--skip-git-repo-check",
            "--ephemeral",
            "-s",
            "read-only",
            prompt,
        ]
        config = config_toml(base_url=base_url, model=model)
        with (
            tempfile.TemporaryDirectory(prefix="codex-home-") as home,
            tempfile.TemporaryDirectory(prefix="codex-cwd-") as cwd,
        ):
            codex_home = Path(home) / ".codex"
            codex_home.mkdir()
            (codex_home / "config.toml").write_text(config, encoding="utf-8")
            env = {
                "PATH": os.environ.get("PATH", os.defpath),
                "HOME": home,
                "CODEX_HOME": str(codex_home),
                "LANG": "C.UTF-8",
                KEY_VARIABLE: api_key,
            }
            return _run(argv, config, env=env, cwd=cwd, timeout=timeout)


def _run(argv: list[str], config: str, *, env: dict[str, str], cwd: str, timeout: float) -> Run:
    exit_code, stdout, stderr, seconds = run_to_end(argv, env=env, cwd=cwd, timeout=timeout)
    return Run(tuple(argv), config, exit_code, stdout, stderr, seconds)


# ---- finding it --------------------------------------------------------------------------------------------


def _candidates() -> list[Path]:
    """The npm bin link (a Node.js launcher), then the platform package's native binary itself, which
    runs where Node.js does not."""
    modules = CLIENTS_DIR / "node_modules"
    return [modules / ".bin" / "codex", *sorted((modules / "@openai").glob("codex-*/vendor/*/bin/codex"))]


@functools.cache
def find_codex() -> Codex | str:
    """The installed CLI, or why there is none to run (a skip reason)."""
    found = locate("Codex", PACKAGE, _candidates(), VERSION_LINE, {"CODEX_HOME": "{home}"})
    return found if isinstance(found, str) else Codex(*found)


def codex_or_skip() -> Codex:
    found = find_codex()
    if isinstance(found, str):
        pytest.skip(found)
    return found
