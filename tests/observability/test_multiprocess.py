"""Multi-process mode (`--workers N`): workers in child processes, one scrape sees them all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.observability.exposition import Samples, label_sets, parse, value

ROOT = Path(__file__).resolve().parents[2]

# A worker: runs GatewayMetrics method calls, prints its pid. With "late", prometheus_client is
# imported before the variable is set, as in `gateway --workers N` (the cli imports the app first).
WORKER = """
import json, os, sys
late = sys.argv[3] == "late"
if late:
    import prometheus_client
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
from gateway.observability.metrics import GatewayMetrics
metrics = GatewayMetrics()
assert metrics.multiprocess_dir == sys.argv[1]
for name, *args in json.loads(sys.argv[2]):
    getattr(metrics, name)(*args)
metrics.flush()  # what the app does every second and at shutdown
print(os.getpid())
"""

# A scrape: marks the given workers as exited, then renders from the directory.
SCRAPE = """
import sys
from gateway.observability.metrics import GatewayMetrics, worker_exited
for pid in sys.argv[1:]:
    worker_exited(int(pid))
body, content_type = GatewayMetrics().render()
assert content_type == "text/plain; version=0.0.4; charset=utf-8"
sys.stdout.write(body.decode())
"""


def run(code: str, args: list[str], multiproc_dir: Path | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if multiproc_dir is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc_dir)
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def worker(directory: Path, calls: list[list[Any]], late: bool = False) -> int:
    env_dir = None if late else directory
    return int(run(WORKER, [str(directory), json.dumps(calls), "late" if late else "early"], env_dir))


def scrape(directory: Path, exited: tuple[int, ...] = ()) -> Samples:
    return parse(run(SCRAPE, [str(pid) for pid in exited], directory))


MP = {"model": "gpt-4o", "provider": "openai"}
STREAM_OK = ["observe_request", "gpt-4o", "openai", 200, True, 1.0, 0.9, 0.2, 10, 5]


def test_counters_and_histograms_add_up_across_workers(tmp_path: Path) -> None:
    worker(tmp_path, [STREAM_OK, STREAM_OK, ["retry", "openai", "gpt-4o"], ["config_reload", True]])
    failed = ["observe_request", "gpt-4o", "openai", 502, False, 0.3, 0.2999, None, None, None]
    worker(tmp_path, [STREAM_OK, failed, ["rate_limited", "team-alpha", "tokens"], ["config_reload", False]])
    samples = scrape(tmp_path)
    assert value(samples, "gateway_requests_total", **MP, status="200") == 3
    assert value(samples, "gateway_requests_total", **MP, status="502") == 1
    assert value(samples, "gateway_request_duration_seconds_count", **MP) == 4
    assert value(samples, "gateway_request_duration_seconds_sum", **MP) == pytest.approx(3.3)
    assert value(samples, "gateway_request_duration_seconds_bucket", **MP, le="0.5") == 1
    assert value(samples, "gateway_request_duration_seconds_bucket", **MP, le="1.0") == 4
    assert value(samples, "gateway_overhead_seconds_count", **MP) == 4
    assert value(samples, "gateway_overhead_seconds_bucket", **MP, le="0.0001") == 1
    assert value(samples, "gateway_time_to_first_byte_seconds_count", **MP) == 3
    assert value(samples, "gateway_tokens_total", **MP, direction="in") == 30
    assert value(samples, "gateway_tokens_total", **MP, direction="out") == 15
    assert value(samples, "gateway_retries_total", provider="openai", model="gpt-4o") == 1
    assert value(samples, "gateway_rate_limited_total", key="team-alpha", kind="tokens") == 1
    assert value(samples, "gateway_config_reloads_total", result="ok") == 1
    assert value(samples, "gateway_config_reloads_total", result="failed") == 1
    assert not [name for name, _ in samples if not name.startswith("gateway_")]


def test_config_info_across_workers(tmp_path: Path) -> None:
    first = worker(tmp_path, [["config_loaded", "aaa", "0.1.0", 100.0]])
    worker(tmp_path, [["config_loaded", "aaa", "0.1.0", 100.0], ["config_loaded", "bbb", "0.1.0", 200.0]])
    samples = scrape(tmp_path)
    # each digest some live worker serves is 1 (here: the workers disagree), no pid label
    assert value(samples, "gateway_config_info", digest="aaa", version="0.1.0") == 1
    assert value(samples, "gateway_config_info", digest="bbb", version="0.1.0") == 1
    assert value(samples, "gateway_config_loaded_timestamp_seconds") == 200.0

    samples = scrape(tmp_path, exited=(first,))  # the worker still on aaa is gone
    assert value(samples, "gateway_config_info", digest="aaa", version="0.1.0") == 0
    assert value(samples, "gateway_config_info", digest="bbb", version="0.1.0") == 1
    assert len(label_sets(samples, "gateway_config_info")) == 2


def test_an_exited_workers_counters_are_kept(tmp_path: Path) -> None:
    gone = worker(tmp_path, [STREAM_OK, ["config_loaded", "aaa", "0.1.0", 100.0]])
    worker(tmp_path, [STREAM_OK])
    samples = scrape(tmp_path, exited=(gone,))
    assert value(samples, "gateway_requests_total", **MP, status="200") == 2
    assert value(samples, "gateway_config_info", digest="aaa", version="0.1.0") is None


def test_the_variable_may_be_set_after_prometheus_client_is_imported(tmp_path: Path) -> None:
    pid = worker(tmp_path, [STREAM_OK], late=True)
    assert (tmp_path / f"counter_{pid}.db").exists()
    assert value(scrape(tmp_path), "gateway_requests_total", **MP, status="200") == 1


def test_a_missing_directory_fails_at_startup(tmp_path: Path) -> None:
    code = "from gateway.observability.metrics import GatewayMetrics\nGatewayMetrics()"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "absent")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "PROMETHEUS_MULTIPROC_DIR" in done.stderr
