"""deploy/kubernetes/reloader.sh, run for real: a directory laid out as the kubelet lays out a ConfigMap
volume (files behind a `..data` symlink that is swapped on update), and the real gateway, or a dummy
process tree named like it, as the process to signal."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import RELOADER, SHIPPED_ROUTES, CommandGateway, LineReader, stop, venv_gateway

pytestmark = pytest.mark.subprocess

INTERVAL = "0.1"  # the reloader's poll, in seconds (the manifest uses 5)


class VolumeDir:
    """A ConfigMap/Secret volume as the kubelet writes it: DIR/..<version>/files, DIR/..data -> ..<version>,
    DIR/<file> -> ..data/<file>; an update writes a new version and renames a new ..data over the old."""

    def __init__(self, root: Path, files: dict[str, str]) -> None:
        self.root = root
        self.version = 0
        root.mkdir(parents=True)
        self.update(files)

    def update(self, files: dict[str, str]) -> None:
        self.version += 1
        version = self.root / f"..2026_01_01_00_00_0{self.version}.{uuid.uuid4().hex[:6]}"
        version.mkdir()
        for name, content in files.items():
            (version / name).write_text(content, encoding="utf-8")
        staged = self.root / "..data_tmp"
        staged.symlink_to(version.name)
        os.replace(staged, self.root / "..data")  # the atomic swap
        for name in files:
            link = self.root / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")


def unique_name() -> str:
    """A process name no other process on this machine has (/proc/PID/comm keeps 15 characters)."""
    return f"gw{uuid.uuid4().hex[:8]}"


def start_reloader(name: str, *directories: Path) -> tuple[subprocess.Popen[str], LineReader]:
    process = subprocess.Popen(
        ["sh", str(RELOADER), *map(str, directories)],
        env={**os.environ, "RELOADER_PROCESS": name, "RELOADER_INTERVAL": INTERVAL},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = LineReader(process)
    output.wait_for(lambda line: line.startswith("reloader: watching"))
    return process, output


@pytest.fixture
def reloaders() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        stop(process)


def sent_to(line: str) -> list[int]:
    return [int(pid) for pid in line.removeprefix("reloader: sent SIGHUP to").split()]


# ---- static ------------------------------------------------------------------------------------------
SHELLS = [cmd for cmd in (["sh"], ["dash"], ["busybox", "sh"], ["bash", "--posix"]) if shutil.which(cmd[0])]


@pytest.mark.parametrize("shell", SHELLS, ids=lambda cmd: " ".join(cmd))
def test_reloader_parses_as_posix_sh(shell: list[str]) -> None:
    result = subprocess.run([*shell, "-n", str(RELOADER)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_reloader_without_directories_prints_its_usage() -> None:
    result = subprocess.run(["sh", str(RELOADER)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "usage:" in result.stderr


# ---- with the real gateway ---------------------------------------------------------------------------
def test_configmap_and_secret_updates_reach_the_real_gateway(
    tmp_path: Path, reloaders: list[subprocess.Popen[str]]
) -> None:
    """The gateway is the venv's console script under a unique name (as `gateway` is in the image), its
    routes.yaml and a ${file:...} key in two kubelet-style volumes; each swap of a `..data` ends in
    `config_reloaded` with what changed."""
    name = unique_name()
    script = tmp_path / "bin" / name
    script.parent.mkdir()
    script.symlink_to(venv_gateway())

    secrets = VolumeDir(tmp_path / "secrets", {"unrelated": "x"})  # the key is not there yet
    routes = SHIPPED_ROUTES.read_text(encoding="utf-8").replace(
        '"${OPENAI_API_KEY}"', f'"${{file:{secrets.root}/openai-api-key}}"'
    )
    assert "${file:" in routes
    config_dir = VolumeDir(tmp_path / "config", {"routes.yaml": routes})
    config = config_dir.root / "routes.yaml"
    argv = [
        str(script),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--log-format",
        "json",
    ]

    with CommandGateway(argv, config) as gateway:
        listening = gateway.wait_for_event("listening")
        assert "gpt-4o" in listening["unavailable"], "openai starts disabled: its key file is missing"
        reloader, output = start_reloader(name, config_dir.root, secrets.root)
        reloaders.append(reloader)

        # a route added to the ConfigMap
        after, said = gateway.mark(), output.mark()
        edited = yaml.safe_load(routes)
        edited["models"]["mock-2"] = [{"provider": "mock", "model": "mock-2"}]
        config_dir.update({"routes.yaml": yaml.safe_dump(edited)})
        reloaded = gateway.wait_for_event("config_reloaded", after=after)
        assert "mock-2" in reloaded["models"]
        line = output.wait_for(lambda s: s.startswith("reloader: sent SIGHUP"), after=said)
        assert sent_to(line) == [gateway.pid]

        # the key arriving in the Secret
        after = gateway.mark()
        secrets.update({"unrelated": "x", "openai-api-key": "sk-test-rotated"})
        reloaded = gateway.wait_for_event("config_reloaded", after=after)
        assert "gpt-4o" in reloaded["models"] and "gpt-4o" not in reloaded["unavailable"]
        assert gateway.stop() == 0


def test_a_gateway_with_workers_gets_one_sighup_and_every_worker_reloads(
    tmp_path: Path, reloaders: list[subprocess.Popen[str]]
) -> None:
    """`--workers 2`: the supervisor (named like the console script) is signalled, not its workers
    (`python -m gateway` children); it forwards the SIGHUP, and each worker logs `config_reloaded`."""
    name = unique_name()
    script = tmp_path / "bin" / name
    script.parent.mkdir()
    script.symlink_to(venv_gateway())
    config_dir = VolumeDir(tmp_path / "config", {"routes.yaml": SHIPPED_ROUTES.read_text(encoding="utf-8")})
    config = config_dir.root / "routes.yaml"
    argv = [str(script), "--config", str(config), "--host", "127.0.0.1", "--port", "0", "--workers", "2"]

    with CommandGateway([*argv, "--log-format", "json"], config) as gateway:
        first_worker = gateway.wait_for_event("listening")  # both workers listen before the change
        gateway.wait_for(lambda e: e.get("event") == "listening" and e is not first_worker, timeout=20)
        reloader, output = start_reloader(name, config_dir.root)
        reloaders.append(reloader)

        after, said = gateway.mark(), output.mark()
        config_dir.update({"routes.yaml": SHIPPED_ROUTES.read_text(encoding="utf-8") + "\n# edited\n"})
        line = output.wait_for(lambda s: s.startswith("reloader: sent SIGHUP"), after=said)
        assert sent_to(line) == [gateway.pid], "only the supervisor"
        first = gateway.wait_for_event("config_reloaded", after=after)
        index = next(i for i in range(after, len(gateway.events)) if gateway.events[i] is first)
        gateway.wait_for_event("config_reloaded", after=index + 1)
        assert gateway.stop() == 0


# ---- with a dummy process tree -----------------------------------------------------------------------
DUMMY = """\
#!{python}
# A process named like the gateway. `parent` also starts a forked child (the same name) and a spawned
# `python -m NAME` child, as `--workers` could; each prints a line for every SIGHUP it gets.
# `starting` sets its SIGHUP handler only when it gets SIGUSR1, as a gateway still loading its config.
import os, signal, subprocess, sys

NAME = os.path.splitext(os.path.basename(__file__))[0]
role = sys.argv[1] if len(sys.argv) > 1 else "single"
children = []


def say(line):
    os.write(1, (line + "\\n").encode())  # one write: the processes share the pipe


def on_hup(signum, frame):
    say(f"hup {{role}} {{os.getpid()}}")


def on_term(signum, frame):
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        except OSError:
            pass
    os._exit(0)


def on_usr1(signum, frame):  # `starting` is done starting: now it handles SIGHUP
    signal.signal(signal.SIGHUP, on_hup)
    say(f"started {{os.getpid()}}")


signal.signal(signal.SIGTERM, on_term)
if role == "starting":  # no SIGHUP handler until SIGUSR1: a SIGHUP now would end it
    signal.signal(signal.SIGUSR1, on_usr1)
else:
    signal.signal(signal.SIGHUP, on_hup)
if role == "parent":
    pid = os.fork()
    if pid == 0:
        role = "forked"
    else:
        children.append(pid)
        here = os.path.dirname(os.path.abspath(__file__))
        children.append(subprocess.Popen([sys.executable, "-m", NAME, "spawned"], cwd=here).pid)
say(f"ready {{role}} {{os.getpid()}}")
while True:
    signal.pause()
"""


class Dummy:
    """The dummy as the script `NAME` (matched by its process name) or as `python -m NAME`."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory, self.name = directory, name
        text = DUMMY.format(python=sys.executable)
        (directory / name).write_text(text, encoding="utf-8")
        (directory / name).chmod(0o755)
        (directory / f"{name}.py").write_text(text, encoding="utf-8")
        self.processes: list[subprocess.Popen[str]] = []
        self.outputs: list[LineReader] = []
        self.pids: dict[str, int] = {}

    def start(self, argv: list[str], roles: list[str]) -> LineReader:
        process = subprocess.Popen(
            argv, cwd=self.directory, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
        )
        self.processes.append(process)
        output = LineReader(process)
        self.outputs.append(output)
        for role in roles:
            line = output.wait_for(lambda s, role=role: s.startswith(f"ready {role} "))
            self.pids[role] = int(line.split()[-1])
        return output

    def stop(self) -> None:
        for process in self.processes:
            stop(process)  # the parent stops its children first
        for pid in self.pids.values():  # and should one be left: only ours, by pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for output in self.outputs:
            output.close()


@pytest.fixture
def dummy(tmp_path: Path) -> Iterator[Dummy]:
    made = Dummy(tmp_path, unique_name())
    yield made
    made.stop()


def test_only_the_parent_of_worker_processes_is_signalled(
    tmp_path: Path, dummy: Dummy, reloaders: list[subprocess.Popen[str]]
) -> None:
    """A supervisor forwards SIGHUP to its workers: the reloader signals it alone, not its children
    (a forked one, same name; a spawned `python -m` one)."""
    tree = dummy.start([str(tmp_path / dummy.name), "parent"], ["parent", "forked", "spawned"])
    volume = VolumeDir(tmp_path / "config", {"routes.yaml": "a"})
    reloader, output = start_reloader(dummy.name, volume.root)
    reloaders.append(reloader)

    volume.update({"routes.yaml": "b"})
    line = output.wait_for(lambda s: s.startswith("reloader: sent SIGHUP"))
    assert sent_to(line) == [dummy.pids["parent"]]
    tree.wait_for(lambda s: s == f"hup parent {dummy.pids['parent']}")


def test_a_change_seen_while_no_gateway_runs_is_delivered_once_one_does(
    tmp_path: Path, dummy: Dummy, reloaders: list[subprocess.Popen[str]]
) -> None:
    """No gateway when the volume changes: the reloader says so and keeps trying; a `python -m NAME`
    process that appears then gets the SIGHUP."""
    volume = VolumeDir(tmp_path / "config", {"routes.yaml": "a"})
    reloader, output = start_reloader(dummy.name, volume.root)
    reloaders.append(reloader)

    said = output.mark()
    volume.update({"routes.yaml": "b"})
    output.wait_for(lambda s: "no process named" in s, after=said)

    single = dummy.start([sys.executable, "-m", dummy.name], ["single"])
    line = output.wait_for(lambda s: s.startswith("reloader: sent SIGHUP"), after=said)
    assert sent_to(line) == [dummy.pids["single"]]
    single.wait_for(lambda s: s == f"hup single {dummy.pids['single']}")

    # the next change is a new SIGHUP too
    said, heard = output.mark(), single.mark()
    volume.update({"routes.yaml": "c"})
    output.wait_for(lambda s: s.startswith("reloader: sent SIGHUP"), after=said)
    single.wait_for(lambda s: s.startswith("hup single"), after=heard)


def test_a_gateway_still_starting_gets_the_sighup_once_it_handles_it(
    tmp_path: Path, dummy: Dummy, reloaders: list[subprocess.Popen[str]]
) -> None:
    """A process that has no SIGHUP handler yet (a gateway loading its config) would be killed by
    SIGHUP: the reloader waits, and sends it once the handler is there."""
    starting = dummy.start([str(tmp_path / dummy.name), "starting"], ["starting"])
    pid = dummy.pids["starting"]
    volume = VolumeDir(tmp_path / "config", {"routes.yaml": "a"})
    reloader, output = start_reloader(dummy.name, volume.root)
    reloaders.append(reloader)

    said = output.mark()
    volume.update({"routes.yaml": "b"})
    output.wait_for(lambda s: s == f"reloader: pid {pid} does not handle SIGHUP yet (starting?); will retry")
    os.kill(pid, signal.SIGUSR1)
    starting.wait_for(lambda s: s == f"started {pid}")
    line = output.wait_for(lambda s: s.startswith("reloader: sent SIGHUP"), after=said)
    assert sent_to(line) == [pid]
    starting.wait_for(lambda s: s == f"hup starting {pid}")


def test_sigterm_stops_the_reloader_at_once(tmp_path: Path) -> None:
    volume = VolumeDir(tmp_path / "config", {"routes.yaml": "a"})
    process = subprocess.Popen(
        ["sh", str(RELOADER), str(volume.root)],
        env={**os.environ, "RELOADER_PROCESS": unique_name(), "RELOADER_INTERVAL": "600"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        output = LineReader(process)
        output.wait_for(lambda line: line.startswith("reloader: watching"))
        process.terminate()
        assert process.wait(10) == 0, "TERM ends the 600 s sleep at once, with status 0"
        output.wait_for(lambda line: line == "reloader: stopping")
    finally:
        stop(process)
