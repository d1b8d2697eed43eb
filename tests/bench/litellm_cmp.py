"""--litellm: the gateway next to LiteLLM, measured by the shared harness ../shared/bench/run.py.

That harness starts its own mocks (nginx and aiohttp), then direct, passthrough, litellm and our gateway
(a custom target whose command line it runs under `taskset -c 0 bash -c "exec CMD"`, with $UPSTREAM_URL
set to the mock's OpenAI-style base URL; the generated gateway config reads it as ${UPSTREAM_URL}).
We fold its rps figures into the Targets table as gateway rps / LiteLLM rps.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from procs import Supervisor
from targets import litellm_gateway_config

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO.parent / "shared" / "bench" / "run.py"
LITELLM_BIN = Path("/tmp/litellm-venv/bin/litellm")
TARGETS = ("direct", "passthrough", "litellm", "gateway")


def missing(harness: Path, litellm_bin: Path) -> str | None:
    """Why the comparison cannot run (a missing file), or None."""
    for path in (harness, litellm_bin):
        if not path.exists():
            return f"{path} not found"
    return None


def command(
    harness: Path,
    litellm_bin: Path,
    python: str,
    config: Path,
    out_dir: Path,
    durations: dict[str, str],
    cpus: tuple[int | None, int | None],
) -> list[str]:
    gateway = shlex.join([python, "-m", "gateway", "--config", str(config), "--host", "127.0.0.1"])
    gateway += " --port {port}"  # the shared harness's placeholder
    argv = [
        shutil.which("python3") or sys.executable,
        str(harness),
        "--targets",
        ",".join(TARGETS),
        "--target",
        f"gateway={gateway}",
        "--litellm",
        str(litellm_bin),
        "--out-dir",
        str(out_dir),
    ]
    for flag, value in durations.items():
        argv += [flag, value]
    if cpus[0] is not None and cpus[1] is not None:
        argv += ["--target-cpu", str(cpus[0]), "--load-cpu", str(cpus[1])]
    return argv


def _figures(res: dict[str, Any]) -> dict[str, Any]:
    serial, load, stream = res.get("serial") or {}, res.get("load") or {}, res.get("stream") or {}

    def us_to_ms(v: Any) -> float | None:
        return round(v / 1000, 4) if isinstance(v, int | float) else None

    return {
        "target": res.get("target"),
        "rps": round(load["rps"], 1) if isinstance(load.get("rps"), int | float) else None,
        "errors": (serial.get("errors") or 0) + (load.get("errors") or 0) if load else None,
        "p50_ms": us_to_ms(serial.get("p50_us")),
        "p99_ms": us_to_ms(serial.get("p99_us")),
        "ttfb_p50_ms": stream.get("ttfb_p50_ms"),
        "idle_rss_kb": res.get("idle_rss_kb"),
        "startup_s": res.get("startup_s"),
        "error": res.get("error"),
    }


def run(
    sup: Supervisor,
    work: Path,
    python: str,
    durations: dict[str, str],
    cpus: tuple[int | None, int | None],
    conns: int,
    harness: Path = HARNESS,
    litellm_bin: Path = LITELLM_BIN,
    timeout_s: float = 1800.0,
) -> dict[str, Any]:
    """Runs the shared harness to completion; returns its per-target figures and the rps ratio.

    status "n/a" when its files are absent, "failed" when it ran but gave no usable figures.
    """
    reason = missing(harness, litellm_bin)
    if reason:
        return {"status": "n/a", "reason": reason}
    out_dir = work / "litellm"
    out_dir.mkdir(exist_ok=True)
    config = work / "gateway-litellm-cmp.yaml"
    config.write_text(litellm_gateway_config())
    argv = command(harness, litellm_bin, python, config, out_dir, durations, cpus)
    res: dict[str, Any] = {
        "status": "failed",
        "cmd": shlex.join(argv),
        "out_dir": str(out_dir),
        "conns": conns,
    }
    proc = sup.spawn("litellm-run", argv, None, cwd=REPO)
    try:
        proc.popen.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        res["reason"] = f"did not finish within {timeout_s:.0f}s; log {proc.log_path}"
        return res
    finally:
        sup.stop(proc)
    found = sorted(out_dir.glob("results-*.json"))
    if not found:
        res["reason"] = f"exit code {proc.popen.returncode}, no results file; log tail:\n{proc.log_tail(15)}"
        return res
    data = json.loads(found[-1].read_text())
    figures = [_figures(r) for r in data.get("results", [])]
    res["targets"] = figures
    res["nonstream_upstream"] = (data.get("config") or {}).get("nonstream_upstream")
    by = {f["target"]: f for f in figures}
    gw, lite = (by.get("gateway") or {}).get("rps"), (by.get("litellm") or {}).get("rps")
    if not gw or not lite:
        errors = "; ".join(
            f"{n}: {(by.get(n) or {}).get('error') or 'no rps'}" for n in ("gateway", "litellm")
        )
        res["reason"] = f"no rps for gateway and litellm ({errors[:300]})"
        return res
    res.update(status="ok", gateway_rps=gw, litellm_rps=lite, ratio=round(gw / lite, 1))
    return res
