"""Helpers for the deploy/ tests: loading the files, the gateway's CLI, Kubernetes wiring, processes."""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.app import create_app
from gateway.cli import _parser
from gateway.engine.registry import Registry
from gateway.reload import RegistryHolder, load_registry
from tests.support.gateway_process import REPO_ROOT, GatewayProcess

DEPLOY = REPO_ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
RELOADER = KUBERNETES / "reloader.sh"
SHIPPED_ROUTES = REPO_ROOT / "routes.yaml"
DEFAULT_PORT = 8080
WAIT = 10.0

Doc = dict[str, Any]

# what is not served yet when these paths are missing
PENDING_PATHS = {
    "/readyz": "/readyz (config loaded, not draining) is not served yet: it lands with the readiness work",
    "/metrics": "/metrics (Prometheus) is not served yet: it lands with the metrics work",
}


# ---- files -----------------------------------------------------------------------------------------
def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def load_docs(path: Path) -> list[Doc]:
    """Every non-empty document of a (multi-document) YAML file."""
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def console_scripts() -> dict[str, str]:
    with (REPO_ROOT / "pyproject.toml").open("rb") as handle:
        return dict(tomllib.load(handle)["project"]["scripts"])


def venv_gateway() -> Path:
    """The `gateway` console script of the environment running the tests."""
    script = Path(sys.executable).parent / "gateway"
    if not script.exists():
        pytest.skip(f"no gateway console script next to {sys.executable} (pip install -e .)")
    return script


# ---- the gateway's command line --------------------------------------------------------------------
def parse_cli(argv: list[str]) -> argparse.Namespace:
    """The arguments as the real CLI reads them; `check FILE` and `hash-key` are subcommands that
    main() handles before the parser. AssertionError (with argparse's message) if rejected."""
    if argv[:1] == ["check"]:
        assert len(argv) == 2, f"usage: gateway check FILE, got {argv}"
        return argparse.Namespace(command="check", file=argv[1])
    if argv[:1] == ["hash-key"]:
        assert len(argv) == 1, f"usage: gateway hash-key (key on stdin), got {argv}"
        return argparse.Namespace(command="hash-key")
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args = _parser().parse_args(argv)
    except SystemExit:
        raise AssertionError(f"the gateway CLI rejects {argv}: {stderr.getvalue().strip()}") from None
    args.command = "serve"
    return args


def listen_port(args: argparse.Namespace, routes: Mapping[str, Any]) -> int:
    """The port the gateway binds: --port, else routes.yaml's listen.port, else the default."""
    if getattr(args, "port", None) is not None:
        return int(args.port)
    return int((routes.get("listen") or {}).get("port", DEFAULT_PORT))


def listen_host(args: argparse.Namespace, routes: Mapping[str, Any]) -> str:
    return str(getattr(args, "host", None) or (routes.get("listen") or {}).get("host", "127.0.0.1"))


def served_paths(registry: Registry) -> set[str]:
    app = create_app(RegistryHolder(registry.config.source, registry))
    return {resource.canonical for resource in app.router.resources()}


def require_served(path: str, served: set[str]) -> None:
    """xfail for an endpoint still to land; fail for anything else the app does not serve."""
    if path not in served and path in PENDING_PATHS:
        pytest.xfail(PENDING_PATHS[path])
    assert path in served, f"{path} is not a route of the gateway (served: {sorted(served)})"


_FILE_REF = re.compile(r"\$\{file:([^}]+)\}")
_VAR_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


def file_refs(text: str) -> list[str]:
    return [m.strip() for m in _FILE_REF.findall(text)]


def required_vars(text: str) -> list[str]:
    """${VAR} references without a default, comments left out."""
    lines = (line.split(" #", 1)[0] for line in text.splitlines() if not line.lstrip().startswith("#"))
    body = "\n".join(lines)
    return sorted({name for name, default in _VAR_REF.findall(body) if not default})


def gateway_check(config: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """`gateway check FILE` as a subprocess, with only PATH and `env` in its environment."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", "check", str(config)],
        cwd=REPO_ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_check_passes(config: Path, env: Mapping[str, str]) -> None:
    result = gateway_check(config, env)
    assert result.returncode == 0, f"gateway check {config} failed:\n{result.stdout}{result.stderr}"
    unavailable = re.search(r"(\d+) unavailable", result.stdout)
    assert unavailable is None or unavailable.group(1) == "0", (
        f"providers left disabled (a secret not wired?):\n{result.stdout}{result.stderr}"
    )


# ---- Kubernetes ------------------------------------------------------------------------------------
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}


def workloads(docs: list[Doc]) -> list[Doc]:
    return [doc for doc in docs if doc.get("kind") in WORKLOAD_KINDS]


def find(docs: list[Doc], kind: str, name: str) -> Doc | None:
    return next((d for d in docs if d.get("kind") == kind and d["metadata"]["name"] == name), None)


def pod_spec(workload: Doc) -> Doc:
    return dict(workload["spec"]["template"]["spec"])


def pod_labels(workload: Doc) -> dict[str, str]:
    return dict(workload["spec"]["template"]["metadata"].get("labels") or {})


def all_containers(pod: Doc) -> list[Doc]:
    return [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]


def container(pod: Doc, name: str) -> Doc:
    found = next((c for c in all_containers(pod) if c["name"] == name), None)
    assert found is not None, f"no container {name!r} (have {[c['name'] for c in all_containers(pod)]})"
    return found


def gateway_workloads(docs: list[Doc]) -> list[Doc]:
    return [w for w in workloads(docs) if any(c["name"] == "gateway" for c in all_containers(pod_spec(w)))]


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def effective(pod: Doc, ctr: Doc, field: str) -> Any:
    """A securityContext field of the container, else of the pod."""
    value = (ctr.get("securityContext") or {}).get(field)
    return value if value is not None else (pod.get("securityContext") or {}).get(field)


def secret_values(secret: Doc) -> dict[str, str]:
    values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    values.update({k: str(v) for k, v in (secret.get("stringData") or {}).items()})
    return values


def volume_files(docs: list[Doc], volume: Doc) -> dict[str, str]:
    """The files a configMap or secret volume shows: {relative path: content}."""
    if "configMap" in volume:
        source = volume["configMap"]
        obj = find(docs, "ConfigMap", source["name"])
        data = {k: str(v) for k, v in ((obj or {}).get("data") or {}).items()}
    elif "secret" in volume:
        source = volume["secret"]
        obj = find(docs, "Secret", source["secretName"])
        data = secret_values(obj) if obj is not None else {}
    else:
        return {}
    assert obj is not None or source.get("optional"), f"volume {volume['name']}: source not in the file"
    if source.get("items"):
        return {item["path"]: data[item["key"]] for item in source["items"]}
    return data


def mounted_volume(pod: Doc, ctr: Doc, directory: str) -> Doc | None:
    """The volume mounted (whole, not subPath) at `directory` in the container."""
    for mount in ctr.get("volumeMounts") or []:
        if mount["mountPath"].rstrip("/") == directory.rstrip("/") and not mount.get("subPath"):
            return next(v for v in pod.get("volumes") or [] if v["name"] == mount["name"])
    return None


_DEPENDENT_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def container_env(docs: list[Doc], ctr: Doc) -> dict[str, str]:
    """The container's environment as Kubernetes builds it: values, secretKeyRef/configMapKeyRef, and
    $(VAR) references to variables defined earlier."""
    env: dict[str, str] = {}
    for source in ctr.get("envFrom") or []:
        if "secretRef" in source:
            env.update(secret_values(find(docs, "Secret", source["secretRef"]["name"]) or {}))
        if "configMapRef" in source:
            env.update((find(docs, "ConfigMap", source["configMapRef"]["name"]) or {}).get("data") or {})
    for item in ctr.get("env") or []:
        if "value" in item:
            env[item["name"]] = _DEPENDENT_VAR.sub(lambda m: env.get(m[1], m[0]), item["value"])
            continue
        ref = item["valueFrom"]
        if "secretKeyRef" in ref:
            name, key = ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]
            secret = find(docs, "Secret", name)
            assert secret is not None, f"env {item['name']}: Secret {name} is not in the file"
            values = secret_values(secret)
            assert key in values, f"env {item['name']}: Secret {name} has no key {key}"
            env[item["name"]] = values[key]
        elif "configMapKeyRef" in ref:
            config_map = find(docs, "ConfigMap", ref["configMapKeyRef"]["name"]) or {}
            env[item["name"]] = str(config_map["data"][ref["configMapKeyRef"]["key"]])
    return env


def container_port(ctr: Doc, port: int | str) -> int:
    """A probe's or Service's port, named or numbered, as the container's port number."""
    if isinstance(port, int):
        return port
    if port.isdigit():
        return int(port)
    found = next((p["containerPort"] for p in ctr.get("ports") or [] if p.get("name") == port), None)
    assert found is not None, f"container {ctr['name']} has no port named {port!r}"
    return int(found)


@dataclass
class GatewayPod:
    """The gateway container of a workload, with the routes.yaml it is given."""

    docs: list[Doc]
    workload: Doc
    pod: Doc
    container: Doc
    args: argparse.Namespace
    routes_text: str
    routes: dict[str, Any]

    @classmethod
    def of(cls, docs: list[Doc], workload: Doc) -> GatewayPod:
        pod = pod_spec(workload)
        ctr = container(pod, "gateway")
        assert "command" not in ctr, "the gateway container should keep the image's ENTRYPOINT"
        args = parse_cli(list(ctr.get("args") or []))
        config = Path(args.config)
        volume = mounted_volume(pod, ctr, str(config.parent))
        assert volume is not None, f"nothing is mounted at {config.parent} for --config {config}"
        assert "configMap" in volume, f"--config {config} should come from a ConfigMap volume"
        files = volume_files(docs, volume)
        assert config.name in files, f"ConfigMap {volume['configMap']['name']} has no {config.name}"
        text = files[config.name]
        return cls(docs, workload, pod, ctr, args, text, yaml.safe_load(text))

    @property
    def port(self) -> int:
        return listen_port(self.args, self.routes)

    @property
    def host(self) -> str:
        return listen_host(self.args, self.routes)

    def materialize(self, root: Path) -> tuple[Path, dict[str, str]]:
        """routes.yaml written under `root`, its ${file:...} paths pointing at the Secret/ConfigMap files
        laid out under `root` as the pod would mount them; and the container's environment."""
        text = self.routes_text
        for ref in file_refs(text):
            directory = str(Path(ref).parent)
            volume = mounted_volume(self.pod, self.container, directory)
            assert volume is not None, f"${{file:{ref}}}: no volume is mounted at {directory}"
            files = volume_files(self.docs, volume)
            assert Path(ref).name in files, f"${{file:{ref}}}: volume {volume['name']} has no such file"
            local = root / directory.lstrip("/") / Path(ref).name
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(files[Path(ref).name], encoding="utf-8")
            text = text.replace(f"${{file:{ref}}}", f"${{file:{local}}}")
        config = root / "routes.yaml"
        config.write_text(text, encoding="utf-8")
        env = container_env(self.docs, self.container)
        missing = [name for name in required_vars(self.routes_text) if name not in env]
        assert not missing, f"routes.yaml needs {missing}, which the gateway container's env does not set"
        return config, env

    def registry(self, root: Path) -> Registry:
        config, env = self.materialize(root)
        return load_registry(str(config), env)


def http_urls(command: list[str]) -> list[tuple[str, int, str]]:
    """(host, port, path) of every http:// URL in an exec command."""
    found = re.findall(r"http://([^/:'\"\s]+)(?::(\d+))?(/[^'\"\s)]*)?", " ".join(command))
    return [(host, int(port or 80), path or "/") for host, port, path in found]


def unit_exec(value: str) -> list[str]:
    """A systemd Exec*= line as argv (its `-@:+!` prefixes left out)."""
    return shlex.split(value.lstrip("-@:+!"))


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit: {section: [(key, value), ...]} in order (keys may repeat); `\\` continues a line."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"a setting outside of a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        current.append((key.strip(), value.strip()))
    return sections


# ---- processes -------------------------------------------------------------------------------------
class CommandGateway(GatewayProcess):
    """GatewayProcess (JSON logs read into events) started with any command line, e.g. a console
    script or a unit's ExecStart. It must log JSON lines (stdout not a terminal does) and `listening`."""

    def __init__(self, argv: list[str], config_path: Path) -> None:
        super().__init__(config_path)
        self.args = argv

    def wait_exit(self, timeout: float = WAIT) -> int:
        """The exit status once the process ends by itself (stop() would send another SIGTERM)."""
        assert self._proc is not None
        return self._proc.wait(timeout)


class LineReader:
    """The stdout lines of a child process, read by a thread; wait for one with a timeout."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.process = process
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        self.process.stdout.close()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.lines)

    def wait_for(self, predicate: Callable[[str], bool], *, after: int = 0, timeout: float = WAIT) -> str:
        def found() -> str | None:
            return next((line for line in self.lines[after:] if predicate(line)), None)

        with self._cond:
            self._cond.wait_for(lambda: found() is not None or self._eof, timeout)
            line = found()
        if line is None:
            state = "the process exited" if self._eof else f"timed out after {timeout} s"
            raise AssertionError(f"{state}; its output:\n" + "\n".join(self.lines[-20:]))
        return line

    def close(self) -> None:
        self._thread.join(WAIT)


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM, wait, SIGKILL: the one process we started, by its pid."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(WAIT)


def iter_probes(ctr: Doc) -> Iterator[tuple[str, Doc]]:
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        if ctr.get(kind):
            yield kind, ctr[kind]
