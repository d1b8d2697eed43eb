"""deploy/: every YAML file parses; the Kubernetes manifests and the compose file are wired to what the
gateway really accepts and serves (its CLI parser, its routes, `gateway check`, its ports)."""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.app import create_app
from gateway.reload import RegistryHolder, load_registry
from tests.deploy.support import (
    DEPLOY,
    KUBERNETES,
    PENDING_PATHS,
    RELOADER,
    Doc,
    GatewayPod,
    all_containers,
    assert_check_passes,
    container,
    container_env,
    container_port,
    effective,
    file_refs,
    find,
    gateway_workloads,
    http_urls,
    listen_port,
    load_docs,
    mounted_volume,
    parse_cli,
    pod_labels,
    pod_spec,
    require_served,
    required_vars,
    selects,
    served_paths,
    volume_files,
    workloads,
    yaml_files,
)
from tests.support.gateway_process import GatewayProcess

K8S_FILES = sorted(KUBERNETES.glob("*.yaml"))
SIDECAR = KUBERNETES / "sidecar.yaml"
SHARED = KUBERNETES / "shared-service.yaml"
COMPOSE = DEPLOY / "docker-compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _docs_for_collection(path: Path) -> list[Doc]:
    """For collection only: a file that does not parse fails test_yaml_parses, not the whole module."""
    try:
        return load_docs(path)
    except yaml.YAMLError:
        return []


GATEWAY_PODS = [
    (path, w["metadata"]["name"]) for path in K8S_FILES for w in gateway_workloads(_docs_for_collection(path))
]
GATEWAY_IDS = [f"{path.name}:{name}" for path, name in GATEWAY_PODS]
PROBE_KINDS = ("startupProbe", "livenessProbe", "readinessProbe")
PROBES = [(path, name, kind) for path, name in GATEWAY_PODS for kind in PROBE_KINDS]
PROBE_IDS = [f"{path.name}:{name}:{kind}" for path, name, kind in PROBES]


def gateway_pod(path: Path, name: str) -> GatewayPod:
    docs = load_docs(path)
    workload = next(w for w in workloads(docs) if w["metadata"]["name"] == name)
    return GatewayPod.of(docs, workload)


def test_both_kubernetes_layouts_ship() -> None:
    assert SIDECAR in K8S_FILES
    assert SHARED in K8S_FILES
    assert len(GATEWAY_PODS) >= 2


# ---- every file --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path: Path) -> None:
    docs = load_docs(path)
    assert docs, f"{path} has no YAML document"
    assert all(isinstance(doc, dict) for doc in docs)


@pytest.mark.parametrize("path", K8S_FILES, ids=lambda p: p.name)
def test_kubernetes_objects_are_well_formed(path: Path) -> None:
    seen: set[tuple[str, str]] = set()
    for doc in load_docs(path):
        assert isinstance(doc.get("apiVersion"), str) and doc["apiVersion"], doc
        assert isinstance(doc.get("kind"), str) and doc["kind"], doc
        name = (doc.get("metadata") or {}).get("name")
        assert isinstance(name, str) and DNS_1123.match(name), f"{doc['kind']}: bad metadata.name {name!r}"
        assert (doc["kind"], name) not in seen, f"two {doc['kind']} objects named {name}"
        seen.add((doc["kind"], name))


@pytest.mark.parametrize("path", K8S_FILES, ids=lambda p: p.name)
def test_selectors_select_pods_of_the_file(path: Path) -> None:
    docs = load_docs(path)
    pods = workloads(docs)
    for workload in pods:
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selects(selector, pod_labels(workload)), (
            f"{workload['metadata']['name']}: selector ≠ its labels"
        )
    for doc in docs:
        if doc["kind"] == "Service":
            selector = doc["spec"]["selector"]
        elif doc["kind"] in ("PodDisruptionBudget", "NetworkPolicy"):
            spec = doc["spec"]
            selector = (spec.get("selector") or spec.get("podSelector") or {}).get("matchLabels", {})
        else:
            continue
        matched = [w["metadata"]["name"] for w in pods if selects(selector, pod_labels(w))]
        assert len(matched) == 1, f"{doc['kind']} {doc['metadata']['name']} selects {matched}"


@pytest.mark.parametrize("path", K8S_FILES, ids=lambda p: p.name)
def test_volumes_env_and_secrets_resolve(path: Path) -> None:
    docs = load_docs(path)
    for workload in workloads(docs):
        pod = pod_spec(workload)
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        for ctr in all_containers(pod):
            for mount in ctr.get("volumeMounts") or []:
                assert mount["name"] in volumes, f"{ctr['name']}: mounts undefined volume {mount['name']}"
            container_env(docs, ctr)  # asserts every secretKeyRef names a Secret and key of the file
        for volume in volumes.values():
            volume_files(docs, volume)  # asserts ConfigMaps and Secrets are in the file


@pytest.mark.parametrize("path", K8S_FILES, ids=lambda p: p.name)
def test_pods_run_hardened(path: Path) -> None:
    for workload in workloads(load_docs(path)):
        pod = pod_spec(workload)
        assert pod.get("automountServiceAccountToken") is False, workload["metadata"]["name"]
        for ctr in all_containers(pod):
            where = f"{workload['metadata']['name']}/{ctr['name']}"
            assert effective(pod, ctr, "runAsNonRoot") is True, where
            assert effective(pod, ctr, "runAsUser") not in (None, 0), f"{where}: a numeric non-root runAsUser"
            context = ctr.get("securityContext") or {}
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            resources = ctr.get("resources") or {}
            assert {"cpu", "memory"} <= set(resources.get("requests") or {}), f"{where}: requests"
            assert "memory" in (resources.get("limits") or {}), f"{where}: memory limit"


# ---- the gateway container -------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "name"), GATEWAY_PODS, ids=GATEWAY_IDS)
def test_gateway_args_are_accepted_by_the_cli(path: Path, name: str) -> None:
    gateway = gateway_pod(path, name)
    assert gateway.args.command == "serve"
    assert gateway.routes.get("providers"), "the ConfigMap's routes.yaml has no providers"


@pytest.mark.parametrize(("path", "name"), GATEWAY_PODS, ids=GATEWAY_IDS)
def test_routes_configmap_passes_gateway_check(path: Path, name: str, tmp_path: Path) -> None:
    """`gateway check` on the embedded routes.yaml, with the pod's environment (Secret values are the
    manifest's placeholders) and its ${file:...} secrets laid out as the pod mounts them."""
    config, env = gateway_pod(path, name).materialize(tmp_path)
    assert_check_passes(config, env)


@pytest.mark.parametrize(("path", "name"), GATEWAY_PODS, ids=GATEWAY_IDS)
def test_ports_match_the_listen_port(path: Path, name: str) -> None:
    gateway = gateway_pod(path, name)
    port = gateway.port
    assert port == int(gateway.routes.get("listen", {}).get("port", port)), "--port differs from routes.yaml"
    declared = [p["containerPort"] for p in gateway.container.get("ports") or []]
    assert declared == [port], f"containerPort {declared} ≠ listen port {port}"
    annotations = gateway.workload["spec"]["template"]["metadata"].get("annotations") or {}
    if "prometheus.io/port" in annotations:
        assert int(annotations["prometheus.io/port"]) == port
    for service in (d for d in gateway.docs if d["kind"] == "Service"):
        if selects(service["spec"]["selector"], pod_labels(gateway.workload)):
            for service_port in service["spec"]["ports"]:
                assert container_port(gateway.container, service_port["targetPort"]) == port, service_port


def probe_of(gateway: GatewayPod, kind: str) -> Doc:
    """The probe; liveness and readiness are required, a startup probe is optional."""
    if kind == "startupProbe" and kind not in gateway.container:
        pytest.skip("no startupProbe")
    assert kind in gateway.container, f"the gateway container has no {kind}"
    return dict(gateway.container[kind])


@pytest.mark.parametrize(("path", "name", "kind"), PROBES, ids=PROBE_IDS)
def test_probe_targets_a_served_route_on_the_listen_port(
    path: Path, name: str, kind: str, tmp_path: Path
) -> None:
    gateway = gateway_pod(path, name)
    probe = probe_of(gateway, kind)
    expected = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}.get(kind)
    if "httpGet" in probe:
        http = probe["httpGet"]
        assert "host" not in http, "httpGet.host would send the kubelet elsewhere than the pod"
        assert container_port(gateway.container, http["port"]) == gateway.port
        assert not ipaddress.ip_address(gateway.host).is_loopback, (
            f"the kubelet's httpGet probes reach the pod IP, but the gateway listens on {gateway.host}"
        )
        path_probed = http["path"]
    else:
        urls = http_urls(probe["exec"]["command"])
        assert len(urls) == 1, f"{kind}: one http:// URL expected in {probe['exec']['command']}"
        host, port, path_probed = urls[0]
        assert host in ("127.0.0.1", "localhost") and port == gateway.port, urls[0]
    if expected is not None:
        assert path_probed == expected, f"{kind} probes {path_probed}, expected {expected}"
    require_served(path_probed, served_paths(gateway.registry(tmp_path)))


@pytest.mark.subprocess
@pytest.mark.parametrize(("path", "name", "kind"), PROBES, ids=PROBE_IDS)
def test_exec_probe_succeeds_against_a_running_gateway(
    path: Path, name: str, kind: str, live_gateway: GatewayProcess
) -> None:
    """The probe's command itself, run against the real gateway (its port swapped for the test's)."""
    gateway = gateway_pod(path, name)
    probe = probe_of(gateway, kind)
    if "exec" not in probe:
        pytest.skip("an httpGet probe: checked against the routes above")
    command = [sys.executable if arg == "python" else arg for arg in probe["exec"]["command"]]
    command = [arg.replace(f"127.0.0.1:{gateway.port}", f"127.0.0.1:{live_gateway.port}") for arg in command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    (_, _, probed) = http_urls(probe["exec"]["command"])[0]
    if result.returncode != 0 and probed in PENDING_PATHS and "HTTP Error 404" in result.stderr:
        pytest.xfail(PENDING_PATHS[probed])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("path", "name"), GATEWAY_PODS, ids=GATEWAY_IDS)
def test_grace_period_outlasts_the_drain(path: Path, name: str, tmp_path: Path) -> None:
    gateway = gateway_pod(path, name)
    drain = gateway.registry(tmp_path).config.limits.drain_timeout
    pre_stop = (gateway.container.get("lifecycle") or {}).get("preStop") or {}
    command = (pre_stop.get("exec") or {}).get("command") or []
    waits = (
        float(command[1])
        if command[:1] == ["sleep"]
        else float((pre_stop.get("sleep") or {}).get("seconds", 0))
    )
    grace = gateway.pod.get("terminationGracePeriodSeconds", 30)
    assert grace > drain + waits, f"terminationGracePeriodSeconds {grace} ≤ preStop {waits} + drain {drain}"


# ---- the sidecar -------------------------------------------------------------------------------------
def sidecar() -> GatewayPod:
    docs = load_docs(SIDECAR)
    (workload,) = gateway_workloads(docs)
    return GatewayPod.of(docs, workload)


def test_sidecar_app_talks_to_the_gateway_on_loopback() -> None:
    gateway = sidecar()
    assert ipaddress.ip_address(gateway.host).is_loopback, "a sidecar's gateway should not be on the network"
    app = container(gateway.pod, "app")
    env = container_env(gateway.docs, app)
    assert env["OPENAI_BASE_URL"] == f"http://127.0.0.1:{gateway.port}/v1"
    assert not any("secretKeyRef" in str(item) for item in app.get("env") or []), "the app holds no key"
    secret_volumes = {v["name"] for v in gateway.pod.get("volumes") or [] if "secret" in v}
    assert not [m for m in app.get("volumeMounts") or [] if m["name"] in secret_volumes], "no key files"
    gateway_uid = effective(gateway.pod, gateway.container, "runAsUser")
    assert effective(gateway.pod, app, "runAsUser") != gateway_uid, (
        "in a shared PID namespace a process of the gateway's UID can read its /proc/PID/environ"
    )


def test_sidecar_keys_come_from_the_secret_as_files() -> None:
    gateway = sidecar()
    refs = file_refs(gateway.routes_text)
    assert refs, "provider keys should be ${file:...} references to the mounted Secret"
    for ref in refs:
        volume = mounted_volume(gateway.pod, gateway.container, str(Path(ref).parent))
        assert volume is not None and "secret" in volume, ref
    assert not required_vars(gateway.routes_text)


def test_sidecar_reloader_is_wired() -> None:
    gateway = sidecar()
    pod = gateway.pod
    assert pod.get("shareProcessNamespace") is True, "the reloader must see the gateway's process"
    reloader = container(pod, "reloader")
    command = [*(reloader.get("command") or []), *(reloader.get("args") or [])]
    assert command[0] == "sh", command
    script, watched = Path(command[1]), command[2:]
    volume = mounted_volume(pod, reloader, str(script.parent))
    assert volume is not None and "configMap" in volume, f"{script} does not come from a ConfigMap"
    assert volume_files(gateway.docs, volume)[script.name] == RELOADER.read_text(encoding="utf-8"), (
        "the ConfigMap's reloader.sh differs from deploy/kubernetes/reloader.sh"
    )
    # it watches every ConfigMap/Secret the gateway reads, through the same volumes
    read_by_gateway = {str(Path(gateway.args.config).parent)} | {
        str(Path(r).parent) for r in file_refs(gateway.routes_text)
    }
    assert set(watched) == read_by_gateway, f"watched {watched}, the gateway reads {sorted(read_by_gateway)}"
    for directory in watched:
        ours = mounted_volume(pod, reloader, directory)
        assert ours is not None and ours == mounted_volume(pod, gateway.container, directory), directory
    # the process it looks for is the image's entrypoint, and it may signal it (same UID)
    env = container_env(gateway.docs, reloader)
    entrypoint = next(line for line in DOCKERFILE.read_text().splitlines() if line.startswith("ENTRYPOINT"))
    assert yaml.safe_load(entrypoint.split(None, 1)[1])[0] == env.get("RELOADER_PROCESS", "gateway")
    assert effective(pod, reloader, "runAsUser") == effective(pod, gateway.container, "runAsUser")


def test_sidecars_start_before_the_app() -> None:
    pod = sidecar().pod
    init = [c["name"] for c in pod.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    assert init[:1] == ["gateway"], "the gateway is a native sidecar, started first"
    assert "startupProbe" in container(pod, "gateway"), (
        "the app starts once the gateway's startupProbe passes"
    )


# ---- the shared service ------------------------------------------------------------------------------
def shared() -> GatewayPod:
    docs = load_docs(SHARED)
    (workload,) = gateway_workloads(docs)
    return GatewayPod.of(docs, workload)


def test_shared_service_runs_three_replicas_behind_a_service_and_a_pdb() -> None:
    gateway = shared()
    assert gateway.workload["spec"]["replicas"] == 3
    labels = pod_labels(gateway.workload)
    kinds = {d["kind"] for d in gateway.docs if selects(_selector(d), labels)}
    assert {"Service", "PodDisruptionBudget"} <= kinds
    budget = next(d for d in gateway.docs if d["kind"] == "PodDisruptionBudget")
    assert budget["spec"].get("maxUnavailable") == 1 or budget["spec"].get("minAvailable") == 2
    assert gateway.workload["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def _selector(doc: Doc) -> dict[str, str]:
    spec = doc.get("spec") or {}
    if doc["kind"] == "Service":
        return dict(spec.get("selector") or {})
    if doc["kind"] == "PodDisruptionBudget":
        return dict(spec["selector"]["matchLabels"])
    return {}


def test_shared_service_limits_live_in_the_redis_of_the_file(tmp_path: Path) -> None:
    gateway = shared()
    assert gateway.routes["auth"]["store"] == "redis"
    assert gateway.routes["auth"]["redis_url"] == "${REDIS_URL}"
    assert gateway.routes["auth"]["keys"], "a shared service needs gateway keys"
    redis_url = container_env(gateway.docs, gateway.container)["REDIS_URL"]
    url = urlsplit(redis_url)
    assert url.scheme == "redis"
    service = find(gateway.docs, "Service", url.hostname or "")
    assert service is not None, f"REDIS_URL names {url.hostname}, which is not a Service of the file"
    (service_port,) = service["spec"]["ports"]
    assert service_port["port"] == (url.port or 6379)
    (redis,) = [w for w in workloads(gateway.docs) if selects(service["spec"]["selector"], pod_labels(w))]
    (redis_container,) = pod_spec(redis)["containers"]
    assert container_port(redis_container, service_port["targetPort"]) == 6379
    assert redis_container["args"][:2] == ["--requirepass", "$(REDIS_PASSWORD)"]
    password = container_env(gateway.docs, redis_container)["REDIS_PASSWORD"]
    assert url.password == password, "the gateway's REDIS_URL carries the password Redis requires"
    auth = gateway.registry(tmp_path).config.auth
    assert (auth.store, auth.redis_url) == ("redis", redis_url), "what the loaded config uses"


def test_shared_service_metrics_annotation_targets_metrics(tmp_path: Path) -> None:
    gateway = shared()
    annotations = gateway.workload["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    require_served(annotations["prometheus.io/path"], served_paths(gateway.registry(tmp_path)))


async def test_shared_service_metrics_need_the_scrapers_key(tmp_path: Path, aiohttp_client: Any) -> None:
    """Gateway keys are configured, so /metrics answers only a key with `metrics: true`: the file
    must carry one (that serves no model) for the scrape job to send, and the probes stay open."""
    gateway = shared()
    registry = gateway.registry(tmp_path)
    scrapers = [key for key in registry.config.auth.keys if key.metrics]
    assert scrapers, "keys are configured but none may read /metrics: Prometheus would get 401"
    assert all(key.models == () for key in scrapers), "a scraper's key should call no model"
    client = await aiohttp_client(create_app(RegistryHolder(registry.config.source, registry)))
    path = gateway.workload["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"]
    assert (await client.get(path)).status == 401
    for probe in ("livenessProbe", "readinessProbe"):
        assert (await client.get(gateway.container[probe]["httpGet"]["path"])).status == 200


# ---- docker compose ----------------------------------------------------------------------------------
_COMPOSE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}")


def compose_service_env(service: Doc) -> dict[str, str]:
    """A compose service's environment with the shell's variables set to dummy values."""
    env: dict[str, str] = {}
    for item in service.get("environment") or []:
        name, sep, value = str(item).partition("=")
        env[name] = (
            _COMPOSE_VAR.sub(lambda m: f"dummy-{m[1].lower()}-0123456789abcdef", value) if sep else "dummy"
        )
    return env


def test_compose_gateway_is_built_from_the_dockerfile_and_served_as_configured(tmp_path: Path) -> None:
    compose = load_docs(COMPOSE)[0]
    services = compose["services"]
    gateway = services["gateway"]
    build = gateway["build"]
    assert (COMPOSE.parent / build["context"]).resolve() == DEPLOY.parent
    assert (DEPLOY.parent / build["dockerfile"]).resolve() == DOCKERFILE
    args = parse_cli(list(gateway["command"]))
    mounts = {target: source for source, target, *_ in (v.split(":") for v in gateway["volumes"])}
    config_dir = str(Path(args.config).parent)
    assert config_dir in mounts, f"{config_dir} is not mounted (a directory, so that reloads see edits)"
    routes_file = (COMPOSE.parent / mounts[config_dir] / Path(args.config).name).resolve()
    routes = yaml.safe_load(routes_file.read_text(encoding="utf-8"))
    port = listen_port(args, routes)
    published = [str(p).rsplit(":", 1)[1] for p in gateway["ports"]]
    assert published == [str(port)], f"published container ports {published} ≠ listen port {port}"
    healthcheck = next(line for line in DOCKERFILE.read_text().splitlines() if "http://127.0.0.1:" in line)
    assert f"127.0.0.1:{port}/healthz" in healthcheck, (
        "depends_on: service_healthy uses the image's HEALTHCHECK"
    )
    env = compose_service_env(gateway)
    missing = [name for name in required_vars(routes_file.read_text(encoding="utf-8")) if name not in env]
    assert not missing, f"{routes_file.name} needs {missing}, which the gateway service does not set"
    redis_url = urlsplit(env["REDIS_URL"])
    assert redis_url.hostname in services, f"REDIS_URL names {redis_url.hostname}, not a compose service"
    app_env = compose_service_env(services["app"])
    assert app_env["OPENAI_BASE_URL"] == f"http://gateway:{port}/v1"
    assert app_env["OPENAI_API_KEY"] == env["APP_GATEWAY_KEY"], "the app sends the key the gateway knows"
    stop_grace = int(str(gateway["stop_grace_period"]).rstrip("s"))
    config = tmp_path / "routes.yaml"
    config.write_text(routes_file.read_text(encoding="utf-8"), encoding="utf-8")
    assert_check_passes(config, env)
    assert stop_grace > load_registry(str(config), env).config.limits.drain_timeout
