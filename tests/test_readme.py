"""Every example in README.md runs as written on a fresh clone with no keys, or says why it is not run.

Each fenced block carries a marker, an HTML comment on the line before its fence (GitHub shows
nothing of it):

- `<!-- runnable -->`: run against the gateway `make run` starts (the shipped routes.yaml, no
  provider key in the environment; on a free port, substituted for the README's 8080): shell blocks
  with bash, Python blocks with this venv's python. Each must exit 0 and print every `# → text`
  its comments promise.
- `<!-- not-run: why -->`: not run (it needs a key, a process id, is an excerpt of a file...); the
  reason is required. YAML and JSON blocks that are not run must still parse.

A block with neither marker fails the first test, so that a new example cannot go untested unnoticed.
One gateway process serves every block.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from gateway.reload import RegistryHolder
from tests.support.gateway_process import GatewayProcess

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK_TIMEOUT = 30.0

_FENCE = re.compile(r"^(`{3,}|~{3,})\s*([^`\s]*)")
_MARKER = re.compile(r"^<!--\s*(runnable|not-run:(.*?))\s*-->$")
_PROMISE = re.compile(r"#\s*→\s*(.+?)\s*$")
_RUNNERS = {"sh": "bash", "bash": "bash", "shell": "bash", "python": "python", "py": "python"}
_README_PORT = re.compile(r"\b(127\.0\.0\.1|localhost):8080\b")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    marker: str | None  # "runnable", "not-run: <why>", or None

    @property
    def runnable(self) -> bool:
        return self.marker == "runnable"

    @property
    def id(self) -> str:
        return f"README.md:{self.line}:{self.language or 'text'}"

    def promises(self) -> list[str]:
        """What the block's `# → text` comments say it prints."""
        return [m.group(1) for line in self.text.splitlines() if (m := _PROMISE.search(line))]


def fenced_blocks(markdown: str) -> list[Block]:
    """The fenced blocks of a Markdown text (not nested), each with the marker on the line before it."""
    lines = markdown.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index].strip())
        if opening is None:
            index += 1
            continue
        fence = opening.group(1)
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        above = lines[index - 1].strip() if index else ""
        found = _MARKER.match(above)
        marker = None if found is None else found.group(1).strip()
        text = "\n".join(lines[index + 1 : end]) + "\n"
        blocks.append(Block(index + 1, opening.group(2).lower(), text, marker))
        index = end + 1
    return blocks


def marker_problems(blocks: list[Block]) -> list[str]:
    problems = []
    for block in blocks:
        if block.marker is None:
            problems.append(
                f"{block.id}: no marker on the line before the fence: "
                "<!-- runnable --> or <!-- not-run: why -->"
            )
        elif block.marker.startswith("not-run:") and not block.marker[len("not-run:") :].strip():
            problems.append(f"{block.id}: <!-- not-run: ... --> needs the reason")
        elif block.runnable and block.language not in _RUNNERS:
            problems.append(f"{block.id}: runnable, but not a language the test runs ({sorted(_RUNNERS)})")
    return problems


BLOCKS = fenced_blocks(README.read_text(encoding="utf-8"))
RUNNABLE = [pytest.param(block, id=block.id) for block in BLOCKS if block.runnable]


def test_every_block_is_runnable_or_says_why_not() -> None:
    assert marker_problems(BLOCKS) == []
    assert RUNNABLE, "README.md has no runnable block"


def test_the_marker_rule_catches_an_unmarked_or_unexplained_block() -> None:
    markdown = (
        "Text.\n\n```sh\necho unmarked\n```\n\n<!-- not-run:  -->\n```yaml\na: 1\n```\n\n"
        "<!-- runnable -->\n```ruby\nputs 1\n```\n\n<!-- runnable -->\n```python\nprint(1)  # → 1\n```\n"
    )
    blocks = fenced_blocks(markdown)
    assert [(b.line, b.language, b.marker) for b in blocks] == [
        (3, "sh", None),
        (8, "yaml", "not-run:"),
        (13, "ruby", "runnable"),
        (18, "python", "runnable"),
    ]
    assert [problem.split(":")[1] for problem in marker_problems(blocks)] == ["3", "8", "13"]
    assert blocks[3].promises() == ["1"]


@pytest.mark.parametrize(
    "block",
    [pytest.param(b, id=b.id) for b in BLOCKS if not b.runnable and b.language in ("yaml", "json")],
)
def test_a_yaml_or_json_block_parses(block: Block) -> None:
    if block.language == "json":
        json.loads(block.text)
    else:
        yaml.safe_load(block.text)


def test_a_provider_is_turned_on_by_writing_its_key_file_and_reloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the README tells a user who started without a key (a running process's environment
    cannot be changed from outside): the key as `${file:...}`, then SIGHUP, whose handler is
    `RegistryHolder.reload`."""
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    secret = tmp_path / "anthropic.key"
    shipped = (ROOT / "routes.yaml").read_text(encoding="utf-8")
    # the first one: the provider served (a commented-out example follows)
    served = shipped.replace('"${ANTHROPIC_API_KEY}"', f'"${{file:{secret}}}"', 1)
    assert served != shipped
    routes = tmp_path / "routes.yaml"
    routes.write_text(served, encoding="utf-8")
    holder = RegistryHolder.load(str(routes))
    assert "claude-sonnet" in holder.current.unavailable
    secret.write_text("sk-ant-written-later\n", encoding="utf-8")
    assert holder.reload()
    assert "claude-sonnet" in holder.current.routes
    assert holder.current.config.providers["anthropic"].api_key == "sk-ant-written-later"


# ---- the runnable blocks, against the gateway `make run` starts -----------------------------------------
def fresh_environment() -> dict[str, str]:
    """This environment as a fresh clone's user has it: no provider or SDK keys, no OpenAI SDK
    settings, and not this venv's bin/ on PATH (a shell block must say `.venv/bin/...` itself)."""
    venv_bin = str(Path(sys.executable).parent)
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.endswith(("_API_KEY", "_KEY_ID", "_SECRET_ACCESS_KEY", "_SESSION_TOKEN"))
        and not name.startswith(("OPENAI_", "ANTHROPIC_", "AWS_"))
    }
    path = [part for part in environment.get("PATH", "").split(os.pathsep) if part and part != venv_bin]
    environment["PATH"] = os.pathsep.join(path)
    return environment


def make_run_command() -> list[str]:
    """What `make run PORT=0` runs, asked of make itself (`-n`: printed, not run); PORT=0 picks a free
    port, which the gateway's `listening` log line names."""
    dry_run = subprocess.run(
        ["make", "-s", "-n", "run", "PORT=0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=BLOCK_TIMEOUT,
    )
    command = shlex.split(dry_run.stdout.strip().splitlines()[-1])
    assert "--port" in command and command[command.index("--port") + 1] == "0", (
        f"`make run PORT=0` runs {command}: make run must take PORT"
    )
    return command


@pytest.fixture(scope="module")
def make_run() -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(ROOT / "routes.yaml")
    gateway.args = make_run_command()
    with pytest.MonkeyPatch.context() as patch:
        for name in set(os.environ) - set(fresh_environment()) - {"PATH"}:
            patch.delenv(name)
        gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.mark.parametrize("block", RUNNABLE)
def test_a_runnable_block_runs_as_written(block: Block, make_run: GatewayProcess) -> None:
    text = _README_PORT.sub(lambda m: f"{m.group(1)}:{make_run.port}", block.text)
    if _RUNNERS[block.language] == "bash":
        command = ["bash", "-e", "-o", "pipefail", "-c", text]
    else:
        command = [sys.executable, "-c", text]
    status, stdout, stderr = run_in_own_group(command)
    assert status == 0, f"{block.id} exited {status}:\n{stdout}\n{stderr}"
    for promise in block.promises():
        assert promise in stdout, f"{block.id} promises {promise!r}; it printed:\n{stdout}"


def run_in_own_group(command: list[str]) -> tuple[int | None, str, str]:
    """Exit status (None: killed after BLOCK_TIMEOUT), stdout and stderr of `command`, run in a process
    group of its own that is killed whole when it ends or times out: a block that starts something
    (a server, a background job) leaves nothing running."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=fresh_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    status: int | None = None
    try:
        process.wait(BLOCK_TIMEOUT)
        status = process.returncode
    except subprocess.TimeoutExpired:
        pass
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    return status, stdout, stderr if status is not None else f"{stderr}\n(killed after {BLOCK_TIMEOUT} s)"


def test_a_block_that_outlives_its_timeout_is_killed_with_everything_it_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "BLOCK_TIMEOUT", 0.5)
    started = time.monotonic()
    status, stdout, stderr = run_in_own_group(["bash", "-c", "sleep 60 & echo $!; wait"])
    elapsed = time.monotonic() - started
    assert status is None and "killed after 0.5 s" in stderr
    assert 0.5 <= elapsed < 5.0
    assert ended(int(stdout), within=5.0)  # the background `sleep` went with its group


def ended(pid: int, within: float) -> bool:
    """Whether process `pid` has ended (a zombie not yet reaped counts), waiting at most `within` s."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return True  # ended and reaped
    try:
        readable, _, _ = select.select([descriptor], [], [], within)  # readable once it has ended
        return bool(readable)
    finally:
        os.close(descriptor)
