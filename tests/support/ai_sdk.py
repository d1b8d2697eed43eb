"""The Vercel AI SDK (npm `ai` with `@ai-sdk/openai`, pinned in tests/clients/package.json), run by
tests/clients/ai_sdk_run.mjs: its default OpenAI model, `openai("...")`, which speaks the Responses API,
against a base URL on this machine (the gateway, or a fake standing in for OpenAI).

`make clients` installs the packages into tests/clients/node_modules; running them needs Node.js.
`ai_sdk_or_skip()` finds both or skips the test, saying why. Each run gets an environment holding only
PATH, HOME (an empty temporary one) and the script's three variables, so nothing of the developer's
OPENAI_* or proxy settings is read; the SDK's retries are off (an error answer ends the run) and every
run is killed after RUN_TIMEOUT.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.npm_clients import CLIENTS_DIR, pinned_version, run_to_end

PACKAGES = ("ai", "@ai-sdk/openai", "zod")
SCRIPT = CLIENTS_DIR / "ai_sdk_run.mjs"
RUN_TIMEOUT = 30.0  # one run, tool loop included: typically well under a second
VERSION_TIMEOUT = 30.0


@dataclass(frozen=True)
class Run:
    """One finished (or timed out) run of the script: what it printed, parsed."""

    argv: tuple[str, ...]
    exit_code: int | None  # None: killed after RUN_TIMEOUT
    stdout: str
    stderr: str
    seconds: float

    @property
    def result(self) -> dict[str, Any]:
        """The JSON object the script printed (its last line)."""
        lines = self.stdout.strip().splitlines()
        assert lines, self.describe()
        parsed: dict[str, Any] = json.loads(lines[-1])
        return parsed

    def describe(self) -> str:
        outcome = "timed out" if self.exit_code is None else f"exit code {self.exit_code}"
        return (
            f"{' '.join(self.argv)}: {outcome} after {self.seconds:.1f} s\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


@dataclass(frozen=True)
class AiSdk:
    node: Path
    versions: dict[str, str]

    def run(self, scenario: str, prompt: str, *, base_url: str, api_key: str, model: str) -> Run:
        """`node ai_sdk_run.mjs SCENARIO PROMPT` (generate, stream or tool) with `createOpenAI({baseURL,
        apiKey})` at `base_url` (with /v1: the SDK posts to `{base_url}/responses`)."""
        argv = [str(self.node), str(SCRIPT), scenario, prompt]
        with tempfile.TemporaryDirectory(prefix="ai-sdk-home-") as home:
            env = {
                "PATH": os.environ.get("PATH", os.defpath),
                "HOME": home,
                "AI_SDK_BASE_URL": base_url,
                "AI_SDK_API_KEY": api_key,
                "AI_SDK_MODEL": model,
            }
            exit_code, stdout, stderr, seconds = run_to_end(argv, env=env, cwd=home, timeout=RUN_TIMEOUT)
        return Run(tuple(argv), exit_code, stdout, stderr, seconds)


# ---- finding it --------------------------------------------------------------------------------------------


def installed_version(package: str) -> str | None:
    manifest = CLIENTS_DIR / "node_modules" / package / "package.json"
    try:
        version: str = json.loads(manifest.read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return None
    return version


def _node(argv: list[str]) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            argv,
            cwd=CLIENTS_DIR,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def _load_failure(node: str) -> str | None:
    """Why the packages do not load under this Node.js (they declare Node.js >= 22; older ones such as
    Debian's may or may not run them), or None when they do."""
    imports = "".join(f"await import({json.dumps(package)});" for package in PACKAGES)
    done = _node([node, "--input-type=module", "-e", imports])
    if done is not None and done.returncode == 0:
        return None
    version = _node([node, "--version"])
    said = (done.stderr.strip().splitlines() or ["no output"])[0] if done is not None else "timed out"
    running = version.stdout.strip() if version is not None else "?"
    return f"the AI SDK does not load under Node.js {running} (its packages declare >= 22): {said}"


@functools.cache
def find_ai_sdk() -> AiSdk | str:
    """Node.js and the pinned packages, or why they cannot be run (a skip reason)."""
    node = shutil.which("node")
    if node is None:
        return "the AI SDK needs Node.js, which is not installed here: install it, then `make clients`"
    versions: dict[str, str] = {}
    for package in PACKAGES:
        version, pinned = installed_version(package), pinned_version(package)
        if version is None:
            return f"{package} is not installed in tests/clients/node_modules: `make clients` installs it"
        if version != pinned:
            return (
                f"{package} {version} is installed, tests/clients/package.json pins {pinned}:"
                " `make clients` installs the pinned one"
            )
        versions[package] = version
    failure = _load_failure(node)
    return failure if failure is not None else AiSdk(Path(node), versions)


def ai_sdk_or_skip() -> AiSdk:
    found = find_ai_sdk()
    if isinstance(found, str):
        pytest.skip(found)
    return found
