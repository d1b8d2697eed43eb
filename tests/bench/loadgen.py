"""Runs the load generators as pinned subprocesses: wrk (or the built-in load.py) and stream_client.py.

Every result is a flat dict with ms latencies (p50_ms, p99_ms, ...), requests, rps and errors.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe import AUTH, TargetFailed
from procs import pinned

HERE = Path(__file__).resolve().parent
ERROR_KEYS = ("err_connect", "err_read", "err_write", "err_status", "err_timeout")


def _run(
    argv: list[str], timeout_s: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise TargetFailed(f"{argv[0]} ... did not finish within {timeout_s:.0f}s") from e


def _last_json_line(out: str) -> dict[str, Any]:
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            return result
    raise ValueError("no JSON line")


@dataclass(frozen=True)
class LoadTool:
    python: str
    cpu: int | None
    wrk: str | None

    @classmethod
    def detect(cls, python: str, cpu: int | None, use_wrk: bool = True) -> LoadTool:
        return cls(python, cpu, shutil.which("wrk") if use_wrk else None)

    @property
    def description(self) -> str:
        if self.wrk is None:
            return (
                "built-in asyncio load generator (tests/bench/load.py; install wrk for lower client overhead)"
            )
        first = subprocess.run([self.wrk, "-v"], capture_output=True, text=True).stdout.splitlines()
        return first[0].split(" Copyright")[0] if first else "wrk"

    def run(self, url: str, conns: int, seconds: float, body_file: Path) -> dict[str, Any]:
        if self.wrk is not None:
            return self._wrk(url, conns, seconds, body_file)
        return self._builtin(url, conns, seconds, body_file)

    def run_count(
        self, url: str, conns: int, requests: int, max_s: float, body_file: Path, rps_hint: float = 0.0
    ) -> dict[str, Any]:
        """At least `requests` requests at `conns` connections, giving up after max_s.

        load.py stops at exactly that count. wrk has no request limit, so it runs back to back, each run
        sized from the rate so far (whole seconds, at most 30): the total overshoots by < 1 s of requests.
        """
        if self.wrk is None:
            return self._builtin(url, conns, max_s, body_file, requests)
        runs: list[dict[str, Any]] = []
        done, rate, t0 = 0, rps_hint if rps_hint > 0 else 500.0, time.perf_counter()
        while done < requests:
            left_s = max_s - (time.perf_counter() - t0)
            if left_s < 1:
                break
            run = self._wrk(url, conns, min(math.ceil((requests - done) / rate), 30, int(left_s)), body_file)
            runs.append(run)
            done += run["requests"]
            rate = run["rps"] if run["rps"] > 0 else rate
        wall = sum(r["seconds"] for r in runs)
        errors = {k: sum(r[k] for r in runs) for k in ("errors", *ERROR_KEYS)}
        return {
            "tool": "wrk",
            "conns": conns,
            "runs": len(runs),
            "seconds": round(wall, 3),
            "requests": done,
            "rps": round(done / wall, 1) if wall else 0.0,
            **errors,
            "p99_ms_max": max((r["p99_ms"] for r in runs), default=None),
        }

    def _builtin(
        self, url: str, conns: int, seconds: float, body_file: Path, requests: int = 0
    ) -> dict[str, Any]:
        argv = [
            self.python,
            str(HERE / "load.py"),
            "--url",
            url,
            "--conns",
            str(conns),
            "--seconds",
            str(seconds),
            "--body-file",
            str(body_file),
            "--auth",
            AUTH,
            "--requests",
            str(requests),
        ]
        proc = _run(pinned(argv, self.cpu), seconds + 60)
        try:
            return _last_json_line(proc.stdout)
        except ValueError as e:
            raise TargetFailed(f"load.py failed (rc={proc.returncode}): {proc.stderr[-800:]}") from e

    def _wrk(self, url: str, conns: int, seconds: float, body_file: Path) -> dict[str, Any]:
        assert self.wrk is not None
        argv = [
            self.wrk,
            "-t1",
            f"-c{conns}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(HERE / "post.lua"),
            url,
        ]
        env = dict(os.environ, BENCH_BODY_FILE=str(body_file), BENCH_AUTH=AUTH)
        proc = _run(pinned(argv, self.cpu), seconds + 60, env)
        m = re.search(r"BENCH_JSON (\{.*\})", proc.stdout)
        if not m:
            raise TargetFailed(
                f"wrk failed (rc={proc.returncode}): {proc.stdout[-400:]} {proc.stderr[-400:]}"
            )
        raw = json.loads(m.group(1))
        wall = raw["duration_us"] / 1e6
        errors = sum(raw[k] for k in ERROR_KEYS)
        out: dict[str, Any] = {
            "tool": "wrk",
            "conns": conns,
            "seconds": round(wall, 3),
            "requests": raw["requests"],
            "rps": round(raw["requests"] / wall, 1) if wall else 0.0,
            "bytes": raw["bytes"],
            "errors": errors,
            **{k: raw[k] for k in ERROR_KEYS},
        }
        for key in ("p50", "p90", "p99", "p999", "mean", "max"):
            out[f"{key}_ms"] = round(raw[f"{key}_us"] / 1000, 4)
        return out


def run_streams(
    python: str, cpu: int | None, url: str, body_file: Path, n: int, warmup: int, max_s: float
) -> dict[str, Any]:
    return _stream_client(python, cpu, [(url, body_file)], n, warmup, max_s)


def run_interleaved_streams(
    python: str, cpu: int | None, targets: list[tuple[str, Path]], n: int, warmup: int, max_s: float
) -> list[dict[str, Any]]:
    """The stream figures of each (url, body file), their streams interleaved (stream_client.py)."""
    result = _stream_client(python, cpu, targets, n, warmup, max_s).get("interleaved")
    if not isinstance(result, list) or len(result) != len(targets):
        raise TargetFailed(f"stream client: no interleaved figures in {str(result)[:200]}")
    return result


def _stream_client(
    python: str, cpu: int | None, targets: list[tuple[str, Path]], n: int, warmup: int, max_s: float
) -> dict[str, Any]:
    argv = [python, str(HERE / "stream_client.py")]
    for url, body_file in targets:
        argv += ["--url", url, "--body-file", str(body_file)]
    argv += ["--n", str(n), "--warmup", str(warmup), "--max-seconds", str(max_s), "--auth", AUTH]
    proc = _run(pinned(argv, cpu), max_s * len(targets) + 120)
    try:
        return _last_json_line(proc.stdout)
    except ValueError as e:
        raise TargetFailed(f"stream client failed (rc={proc.returncode}): {proc.stderr[-800:]}") from e
