"""The real Claude Code CLI (npm `@anthropic-ai/claude-code`, pinned in tests/clients/package.json), run
in print mode against a base URL on this machine: the gateway, or a fake standing in for Anthropic.

`make clients` installs it into tests/clients/node_modules (npm; the package ships a native binary, so
running it needs no Node.js). `claude_code_or_skip()` finds it or skips the test, saying why.

Each run is sealed off from the machine and the network: an empty temporary HOME (no login, no
settings, no onboarding), a temporary working directory for its shell tool, an environment holding
only PATH and what is set here (nothing of the developer's ANTHROPIC_* or proxy settings), and the
variables that stop its telemetry, update checks, error reports and other calls home, so the only
requests it makes go to the base URL. `CLAUDE_CODE_MAX_RETRIES=0` makes an error answer end the run at
once (by default it retries a 401 or 5xx with backoff for minutes, which a test would see as a hang).
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.npm_clients import CLIENTS_DIR, locate, run_to_end

PACKAGE = "@anthropic-ai/claude-code"
RUN_TIMEOUT = 60.0  # one run, tool loop included: typically under 2 s
VERSION_LINE = re.compile(r"^(\S+) \(Claude Code\)")

QUIET = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # without it: HEAD /api/hello, DNS for api.anthropic.com
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_MAX_RETRIES": "0",
}


@dataclass(frozen=True)
class Run:
    """One finished (or timed out) run of the CLI."""

    argv: tuple[str, ...]
    exit_code: int | None  # None: killed after RUN_TIMEOUT
    stdout: str
    stderr: str
    seconds: float

    def describe(self) -> str:
        outcome = "timed out" if self.exit_code is None else f"exit code {self.exit_code}"
        return (
            f"claude {' '.join(self.argv[1:])}: {outcome} after {self.seconds:.1f} s\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


@dataclass(frozen=True)
class ClaudeCode:
    executable: Path
    version: str

    def run(
        self,
        prompt: str,
        *,
        base_url: str,
        api_key: str | None = None,
        auth_token: str | None = None,
        model: str | None = None,
        allowed_tools: Sequence[str] = ("Bash",),
        timeout: float = RUN_TIMEOUT,
    ) -> Run:
        """`claude -p PROMPT --allowedTools ... [--model MODEL]` with ANTHROPIC_BASE_URL = `base_url` (no
        /v1) and the key as ANTHROPIC_API_KEY (sent as `x-api-key`) and/or ANTHROPIC_AUTH_TOKEN (sent as
        `Authorization: Bearer`). The prompt comes right after -p: --allowedTools takes a list."""
        argv = [str(self.executable), "-p", prompt]
        if allowed_tools:
            argv += ["--allowedTools", ",".join(allowed_tools)]
        if model is not None:
            argv += ["--model", model]
        with (
            tempfile.TemporaryDirectory(prefix="claude-home-") as home,
            tempfile.TemporaryDirectory(prefix="claude-cwd-") as cwd,
        ):
            env = _sealed_env(home, base_url=base_url, api_key=api_key, auth_token=auth_token)
            return _run(argv, env=env, cwd=cwd, timeout=timeout)


def _sealed_env(home: str, *, base_url: str, api_key: str | None, auth_token: str | None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": home,
        "LANG": "C.UTF-8",
        "ANTHROPIC_BASE_URL": base_url,
        **QUIET,
    }
    if api_key is not None:
        env["ANTHROPIC_API_KEY"] = api_key
    if auth_token is not None:
        env["ANTHROPIC_AUTH_TOKEN"] = auth_token
    return env


def _run(argv: list[str], *, env: dict[str, str], cwd: str, timeout: float) -> Run:
    exit_code, stdout, stderr, seconds = run_to_end(argv, env=env, cwd=cwd, timeout=timeout)
    return Run(tuple(argv), exit_code, stdout, stderr, seconds)


# ---- finding it --------------------------------------------------------------------------------------------


def _candidates() -> list[Path]:
    """The npm bin link, then the platform package's binary itself: the link points at a placeholder
    until the package's postinstall has copied the binary over it (an npm that skips install scripts)."""
    modules = CLIENTS_DIR / "node_modules"
    return [modules / ".bin" / "claude", *sorted((modules / "@anthropic-ai").glob("claude-code-*/claude"))]


@functools.cache
def find_claude_code() -> ClaudeCode | str:
    """The installed CLI, or why there is none to run (a skip reason)."""
    found = locate("Claude Code", PACKAGE, _candidates(), VERSION_LINE, QUIET)
    return found if isinstance(found, str) else ClaudeCode(*found)


def claude_code_or_skip() -> ClaudeCode:
    found = find_claude_code()
    if isinstance(found, str):
        pytest.skip(found)
    return found
