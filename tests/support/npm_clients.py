"""The agent CLIs the tests run (tests/clients/package.json, installed by `make clients`): where an
installed one is, whether it is the pinned version, and, when it cannot be run, why (a skip reason)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

CLIENTS_DIR = Path(__file__).resolve().parents[1] / "clients"
VERSION_TIMEOUT = 30.0


def pinned_version(package: str) -> str:
    manifest = json.loads((CLIENTS_DIR / "package.json").read_text(encoding="utf-8"))
    version: str = manifest["dependencies"][package]
    return version


def version_of(executable: Path, version_line: re.Pattern[str], env: Mapping[str, str]) -> str | None:
    """What `<cli> --version` says, run with an empty HOME (nothing of this machine's is read)."""
    with tempfile.TemporaryDirectory(prefix="cli-home-") as home:
        full_env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": home, **env}
        try:
            done = subprocess.run(
                [str(executable), "--version"],
                env={key: value.replace("{home}", home) for key, value in full_env.items()},
                cwd=home,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=VERSION_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
    found = version_line.match(done.stdout.strip()) if done.returncode == 0 else None
    return found.group(1) if found else None


def locate(
    name: str,
    package: str,
    candidates: Sequence[Path],
    version_line: re.Pattern[str],
    env: Mapping[str, str],
) -> tuple[Path, str] | str:
    """The first candidate that runs and is the pinned version, with its version; or why none is."""
    install = "`make clients` installs it"
    if shutil.which("npm") is None:
        install = "install Node.js and npm, then `make clients`"
    present = [path for path in candidates if path.exists()]
    if not present:
        return f"{name} is not installed in tests/clients/node_modules: {install}"
    pinned = pinned_version(package)
    for path in present:
        version = version_of(path, version_line, env)
        if version is None:
            continue
        if version != pinned:
            return (
                f"{name} {version} is installed, tests/clients/package.json pins {pinned}:"
                " `make clients` installs the pinned one"
            )
        return path, version
    names = ", ".join(str(path.relative_to(CLIENTS_DIR)) for path in present)
    return f"{name} is installed but does not run here (`--version` failed: {names})"


def run_to_end(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout: float
) -> tuple[int | None, str, str, float]:
    """Run a CLI to its end — or kill its whole process group (the shell commands it started too) at
    `timeout`: exit code (None when killed), stdout, stderr and seconds."""
    started = time.monotonic()
    with subprocess.Popen(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
            exit_code: int | None = process.returncode
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            exit_code = None
    return exit_code, stdout, stderr, time.monotonic() - started
