"""Gateway overhead benchmark: direct vs bare passthrough vs the gateway, in one run.

  python tests/bench/run_bench.py [--targets direct,passthrough,gateway-openai,gateway-messages-native,...]
                                  [--serial-s 5] [--load-s 8] [--streams 300] [--memory-requests 100000]
                                  [--litellm] [--out-dir bench-results]

A mock upstream (mock_upstream.py) serves precomputed OpenAI and Anthropic answers. Each target is
started fresh as a subprocess and measured in turn: startup (spawn -> first 200 on chat), a warm-up,
serial latency at 1 connection, requests/s at --conns connections (and the CPU time the target's process
tree spent on them), sequential streams (TTFB and total time), streams whose chunks the mock sends
--chunk-delay-ms apart (relayed as they arrive?), and its RSS. gateway-openai then serves
--memory-requests more requests (RSS after a warm-up vs after them). gateway-w1 / gateway-w2 (--workers 1
/ 2) run the load phase only, for CPU time per request. "direct" (the mock itself) is always measured
first: every "added" figure is target minus direct. With taskset and >= 2 CPUs the targets run on the
first CPU, the mock, load generator and this script on the second. Load comes from wrk when it is on
PATH, otherwise from the built-in load.py. --litellm then runs ../shared/bench/run.py (direct,
passthrough, LiteLLM and the gateway). Results: markdown on stdout, with a "Targets" table (the issue's
performance targets, PASS / FAIL / n/a), and bench-results/bench-<timestamp>.md + .json.

The *-messages targets send an Anthropic Messages request to /v1/messages instead; their "added" figures
are against direct-messages (the mock's /v1/messages, measured whenever one of them is) and their ratios
against passthrough-messages (the bare passthrough relaying the same request). The *-responses targets
likewise send an OpenAI Responses API request to /v1/responses (direct-responses, passthrough-responses).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import litellm_cmp
from checks import MEMORY_TARGET, evaluate
from interleaved import interleaved_ttfb
from loadgen import LoadTool, run_streams
from probe import TargetFailed, check_reply, wait_ready
from procs import Proc, Supervisor, cpu_plan, free_port
from report import derive, render
from targets import (
    CHAT,
    MESSAGES,
    RESPONSES,
    TARGETS,
    Api,
    Target,
    delay_prefix,
    gateway_config,
    mock_argv,
    target_argv,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHAT_PATH = CHAT.path
STREAM_WARMUP = 20
DELAY_STREAM_WARMUP = 3


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Bench:
    args: argparse.Namespace
    sup: Supervisor
    tool: LoadTool
    work: Path
    target_cpu: int | None
    load_cpu: int | None
    upstream_port: int
    gateway_yaml: Path

    def body_file(self, model: str, api: Api = CHAT) -> Path:
        path = self.work / f"body-{api.name}-{model}.json"
        if not path.exists():
            obj = json.loads(api.body_file.read_bytes())
            obj["model"] = model
            path.write_bytes(json.dumps(obj, separators=(",", ":")).encode())
        return path

    def load_with_cpu(self, proc: Proc, url: str, body_file: Path) -> dict[str, Any]:
        """The load phase, plus the CPU time (user + system) the target's process tree spent in it."""
        cpu0, pids0 = proc.cpu_sample()
        result = self.tool.run(url, self.args.conns, self.args.load_s, body_file)
        cpu1, pids1 = proc.cpu_sample()
        result["cpu_s"] = round(cpu1 - cpu0, 3)
        result["procs"] = len(pids1)
        if result.get("requests"):
            result["cpu_us_per_req"] = round((cpu1 - cpu0) / result["requests"] * 1e6, 1)
        if sorted(pids0) != sorted(pids1):
            result["cpu_warning"] = f"the process tree changed during the phase ({pids0} -> {pids1})"
        return result

    def memory(self, res: dict[str, Any], proc: Proc, url: str, body_file: Path) -> dict[str, Any]:
        """--memory-warmup requests, RSS, then --memory-requests more, RSS again (all at --conns)."""
        a = self.args
        hint = float((res.get("load") or {}).get("rps") or 0)
        log(f"  [{res['target']}] memory: {a.memory_warmup} warm-up + {a.memory_requests} requests")
        warm = self.tool.run_count(url, a.conns, a.memory_warmup, a.memory_max_s, body_file, hint)
        out: dict[str, Any] = {"warmup": warm, "rss_after_warmup_kb": proc.rss_kb()}
        hint = float(warm.get("rps") or hint)
        run = self.tool.run_count(url, a.conns, a.memory_requests, a.memory_max_s, body_file, hint)
        out.update(run=run, rss_after_kb=proc.rss_kb())
        if not proc.alive():
            raise TargetFailed(f"exited with code {proc.popen.returncode} during the memory phase")
        out["growth_kb"] = out["rss_after_kb"] - out["rss_after_warmup_kb"]
        out["complete"] = run.get("requests", 0) >= a.memory_requests
        if not out["complete"]:
            res.setdefault("warnings", []).append(
                f"memory: only {run.get('requests')} of {a.memory_requests} requests within "
                f"--memory-max-s {a.memory_max_s:g}; growth not judged"
            )
        errors = (warm.get("errors") or 0) + (run.get("errors") or 0)
        if errors:
            res.setdefault("warnings", []).append(f"memory: {errors} errors")
        return out

    def measure(self, res: dict[str, Any], proc: Proc, base: str, target: Target) -> None:
        a = self.args
        url, body_file = base + target.api.path, self.body_file(target.model, target.api)
        res["probe_content"] = check_reply(url, body_file.read_bytes(), target.api.name)[:80]
        phases: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("warmup", lambda: self.tool.run(url, a.conns, a.warmup_s, body_file)),
        ]
        if not target.load_only:
            phases.append(("serial", lambda: self.tool.run(url, 1, a.serial_s, body_file)))
        phases.append(("load", lambda: self.load_with_cpu(proc, url, body_file)))
        if not target.load_only:
            phases.append(
                (
                    "stream",
                    lambda: run_streams(
                        a.python, self.load_cpu, url, body_file, a.streams, STREAM_WARMUP, a.stream_max_s
                    ),
                )
            )
        if target.delay_model and a.chunk_delay_ms > 0 and a.delay_streams > 0:
            prefix = delay_prefix(a.chunk_delay_ms) if target.kind == "direct" else ""
            delay_url = base + prefix + target.api.path
            delay_body = self.body_file(target.delay_model, target.api)
            phases.append(
                (
                    "stream_delay",
                    lambda: run_streams(
                        a.python,
                        self.load_cpu,
                        delay_url,
                        delay_body,
                        a.delay_streams,
                        DELAY_STREAM_WARMUP,
                        a.stream_max_s,
                    ),
                )
            )
        for phase, run in phases:
            log(f"  [{res['target']}] {phase}")
            result = run()
            if phase != "warmup":
                res[phase] = result
                if result.get("errors"):
                    res.setdefault("warnings", []).append(
                        f"{phase}: {result['errors']} errors ({result.get('error_samples') or 'see JSON'}); "
                        "the figures include failed requests"
                    )
            if not proc.alive():
                raise TargetFailed(f"exited with code {proc.popen.returncode} during {phase}")
        res["rss_after_kb"] = proc.rss_kb()
        for phase in ("stream", "stream_delay"):
            if phase in res and res[phase].get("n", 0) == 0:
                raise TargetFailed(f"{phase}: no stream succeeded: {res[phase].get('error_samples')}")
        if target.name == MEMORY_TARGET and a.memory_requests > 0:
            res["memory"] = self.memory(res, proc, url, body_file)

    def run_direct(self, target: Target, mock: Proc, startup_s: float, idle_kb: int) -> dict[str, Any]:
        """A direct target: the mock itself (already running), asked target.api's request."""
        res: dict[str, Any] = {
            "target": target.name,
            "about": target.about,
            "status": "ok",
            "cmd": " ".join(mock.argv),
            "pid": mock.pid,
            "startup_s": startup_s,
            "rss_idle_kb": idle_kb,
            "api": target.api.name,
            "baseline": None,
            "floor": None,
        }
        try:
            self.measure(res, mock, f"http://127.0.0.1:{self.upstream_port}", target)
        except TargetFailed as e:
            res.update(status="failed", error=str(e), log_tail=mock.log_tail())
        return res

    def load_round(self, target: Target) -> dict[str, Any]:
        """One more load phase of `target`, started fresh (a warm-up first), then --round-streams
        sequential streams: {requests, seconds, rps, errors, ttfb_p50_ms}, or {error} when it failed."""
        a = self.args
        port = free_port()
        argv = target_argv(target, a.python, port, self.upstream_port, self.gateway_yaml)
        proc = self.sup.spawn(target.name, argv, self.target_cpu, cwd=REPO)
        url, body_file = f"http://127.0.0.1:{port}{target.api.path}", self.body_file(target.model, target.api)
        try:
            wait_ready(proc, url, body_file.read_bytes(), a.startup_timeout)
            self.tool.run(url, a.conns, a.warmup_s, body_file)
            load = self.tool.run(url, a.conns, a.round_load_s, body_file)
            ttfb = self.round_ttfb(url, body_file)
        except TargetFailed as e:
            return {"error": str(e)}
        finally:
            self.sup.stop(proc)
        return {**{k: load.get(k) for k in ("requests", "seconds", "rps", "errors")}, "ttfb_p50_ms": ttfb}

    def round_ttfb(self, url: str, body_file: Path) -> float | None:
        """The stream TTFB p50 of --round-streams sequential streams (None: none asked, or none ok)."""
        a = self.args
        if a.round_streams <= 0:
            return None
        streams = run_streams(
            a.python, self.load_cpu, url, body_file, a.round_streams, STREAM_WARMUP, a.stream_max_s
        )
        value = streams.get("ttfb_p50_ms") if streams.get("n") else None
        return float(value) if isinstance(value, int | float) else None

    def run_target(self, target: Target) -> dict[str, Any]:
        port = free_port()
        argv = target_argv(target, self.args.python, port, self.upstream_port, self.gateway_yaml)
        res: dict[str, Any] = {
            "target": target.name,
            "about": target.about,
            "status": "ok",
            "cmd": " ".join(argv),
            "api": target.api.name,
            "baseline": target.baseline,
            "floor": target.floor,
        }
        base = f"http://127.0.0.1:{port}"
        proc = self.sup.spawn(target.name, argv, self.target_cpu, cwd=REPO)
        res["pid"] = proc.pid
        try:
            body = self.body_file(target.model, target.api).read_bytes()
            ready = wait_ready(proc, base + target.api.path, body, self.args.startup_timeout)
            res["startup_s"] = round(ready, 3)
            time.sleep(0.2)
            res["rss_idle_kb"] = proc.rss_kb()
            self.measure(res, proc, base, target)
        except TargetFailed as e:
            res.update(status="failed", error=str(e), log_tail=proc.log_tail())
        finally:
            self.sup.stop(proc)
        return res


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help=f"comma-separated, from {', '.join(TARGETS)} (direct is always measured first, and "
        "direct-messages / direct-responses whenever a *-messages / *-responses target is)",
    )
    ap.add_argument("--warmup-s", type=float, default=2.0, help="warm-up at --conns before measuring")
    ap.add_argument("--serial-s", type=float, default=5.0, help="serial latency phase, 1 connection")
    ap.add_argument("--load-s", type=float, default=8.0, help="throughput phase, --conns connections")
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--streams", type=int, default=300, help="sequential streamed requests per target")
    ap.add_argument("--stream-max-s", type=float, default=60.0, help="cap on the streaming phase")
    ap.add_argument("--chunks", type=int, default=20, help="SSE content events per mock stream")
    ap.add_argument(
        "--chunk-delay-ms",
        type=float,
        default=5.0,
        help="chunk flushing sub-phase: the mock sends stream events this far apart (0 skips it)",
    )
    ap.add_argument("--delay-streams", type=int, default=30, help="streams in the chunk flushing sub-phase")
    ap.add_argument(
        "--memory-requests",
        type=int,
        default=100_000,
        help=f"requests sent to {MEMORY_TARGET} after a warm-up, RSS compared before/after (0 skips)",
    )
    ap.add_argument("--memory-warmup", type=int, default=10_000, help="warm-up requests of the memory phase")
    ap.add_argument(
        "--memory-max-s", type=float, default=300.0, help="cap on each of the memory phase's two runs"
    )
    ap.add_argument(
        "--litellm",
        action="store_true",
        help=f"afterwards, compare with LiteLLM through {litellm_cmp.HARNESS} (n/a if it or "
        f"{litellm_cmp.LITELLM_BIN} is missing)",
    )
    ap.add_argument("--litellm-harness", type=Path, default=litellm_cmp.HARNESS, help=argparse.SUPPRESS)
    ap.add_argument("--litellm-bin", type=Path, default=litellm_cmp.LITELLM_BIN, help=argparse.SUPPRESS)
    ap.add_argument(
        "--cpu-rounds",
        type=int,
        default=3,
        help="gateway-w1 / gateway-w2 are each started and load-tested this many times (w1 w2 w2 w1 ...); "
        "their CPU per request is the total over the rounds",
    )
    ap.add_argument(
        "--ratio-rounds",
        type=int,
        default=3,
        help="each client protocol's floor and gateway targets (passthrough-messages, gateway-messages-*; "
        "the same for responses) get this many more load phases, fresh processes, in alternating order "
        "(A B C C B A ...): their throughput ratios are over all of them (0: the main load phase only)",
    )
    ap.add_argument("--round-load-s", type=float, default=5.0, help="load phase of each ratio round")
    ap.add_argument(
        "--round-streams",
        type=int,
        default=100,
        help="sequential streams after each ratio round's load phase (their TTFB pools like its rps; "
        "the direct baseline of the group streams in every round too)",
    )
    ap.add_argument(
        "--interleaved-streams",
        type=int,
        default=300,
        help="after the ratio rounds, each ratio group streams again with all its targets up: this many "
        "streams each, one to each in turn with the direct baseline (interleaved.py); the added TTFB "
        "ratios come from these when measured (0: from the stream phases)",
    )
    ap.add_argument("--startup-timeout", type=float, default=30.0)
    ap.add_argument("--out-dir", type=Path, default=REPO / "bench-results")
    ap.add_argument("--python", default=sys.executable, help="interpreter for the mock, targets and clients")
    ap.add_argument(
        "--no-wrk", action="store_true", help="use the built-in load generator even if wrk exists"
    )
    ap.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    if args.cpu_rounds < 1:
        ap.error("--cpu-rounds must be >= 1")
    if args.ratio_rounds < 0:
        ap.error("--ratio-rounds must be >= 0")
    args.target_names = target_order(names)
    return args


def target_order(names: list[str]) -> list[str]:
    """The targets to measure: direct first, then every direct target a chosen target's "added" figures
    need (its baseline), then the rest in the order given."""
    chosen = list(dict.fromkeys(["direct", *names]))
    baselines = [TARGETS[n].baseline for n in chosen if TARGETS[n].kind != "direct"]
    directs = [n for n in dict.fromkeys([*chosen, *baselines]) if TARGETS[n].kind == "direct"]
    return directs + [n for n in chosen if n not in directs]


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def cpu_busy(window_s: float = 0.5) -> float | None:
    """Fraction of all CPUs' time spent non-idle over window_s (from /proc/stat), None if unreadable."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(window_s)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


def machine_line(python: str) -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for pkg in ("aiohttp", "orjson", "uvloop"):
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            versions.append(f"no {pkg}")
    busy = cpu_busy()
    idle = "" if busy is None else f"; CPUs {busy:.0%} busy before the run"
    if busy is not None and busy > 0.15:
        idle += " (BUSY: other processes compete with the benchmark, figures are unreliable)"
    return (
        f"Machine: {os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()} ({python}), {', '.join(versions)}{idle}"
    )


def describe(bench: Bench, tool: LoadTool, machine: str, wall_s: float, interrupted: bool) -> dict[str, Any]:
    """The report's setup lines and commands (also kept in the JSON)."""
    a = bench.args
    if bench.load_cpu is not None:
        pin = (
            f"target on CPU {bench.target_cpu}; mock upstream, load generator, stream client and this "
            f"script on CPU {bench.load_cpu}"
        )
    else:
        pin = "none (needs taskset and >= 2 CPUs), so figures are noisier"
    body_len = len(bench.body_file(TARGETS["direct"].model).read_bytes())
    messages_len = len(bench.body_file(TARGETS["direct-messages"].model, MESSAGES).read_bytes())
    responses_len = len(bench.body_file(TARGETS["direct-responses"].model, RESPONSES).read_bytes())
    if tool.wrk:
        load_cmd = f"wrk -t1 -c{{1|{a.conns}}} -d{{N}}s --timeout 10s -s tests/bench/post.lua URL"
    else:
        load_cmd = f"python tests/bench/load.py --url URL --conns {{1|{a.conns}}} --seconds N"
    return {
        "setup": [
            machine,
            f"CPU pinning: {pin}",
            f"Load generator: {tool.description}",
            f"Request: POST {CHAT_PATH}, {body_len}-byte JSON body (tests/bench/chat_request.json, model "
            f"per target); *-messages targets: POST {MESSAGES.path}, {messages_len}-byte Anthropic Messages "
            "body (tests/bench/messages_request.json, the same conversation); *-responses targets: POST "
            f"{RESPONSES.path}, {responses_len}-byte Responses API body (tests/bench/responses_request.json, "
            "the same conversation, store false); upstream: aiohttp mock (tests/bench/mock_upstream.py)",
            f"Per target, started fresh: startup probe, {a.warmup_s:g}s warm-up at c={a.conns}, serial c=1 "
            f"for {a.serial_s:g}s, load c={a.conns} for {a.load_s:g}s, {a.streams} sequential streams "
            f"(after {STREAM_WARMUP} warm-up, capped at {a.stream_max_s:g}s)"
            + (
                f", then {a.delay_streams} streams with events {a.chunk_delay_ms:g} ms apart at the mock "
                "(direct and the gateway targets but gateway-w1/-w2)"
                if a.chunk_delay_ms > 0 and a.delay_streams > 0
                else ""
            ),
            (
                f"Ratio rounds: each client protocol's floor and gateway targets (passthrough-messages and "
                f"gateway-messages-*, the same for responses) then get {a.ratio_rounds} more load phases of "
                f"{a.round_load_s:g}s and {a.round_streams} streams, fresh processes, in alternating order "
                "(A B C, C B A, ...), the group's direct baseline streaming in every round; their rps "
                "ratios are over every load phase (requests / seconds, pooled), their TTFB the mean p50"
                if a.ratio_rounds
                else "Ratio rounds: none (--ratio-rounds 0): ratios from the one load phase"
            ),
            (
                f"Memory phase ({MEMORY_TARGET}, after its other phases): {a.memory_warmup} warm-up "
                f"requests, RSS, {a.memory_requests} more requests at c={a.conns}, RSS"
                if a.memory_requests > 0
                else "Memory phase skipped (--memory-requests 0)"
            ),
            "gateway-w1 / gateway-w2: the gateway-openai command with --workers 1 / --workers 2, warm-up and "
            f"load phase only, {a.cpu_rounds} rounds each (fresh processes, order w1 w2 w2 w1 ...; figures "
            "summed over the rounds); both pinned like every target"
            + (
                f" (to CPU {bench.target_cpu}: w2's supervisor and 2 workers share it)"
                if bench.target_cpu is not None
                else ""
            )
            + ", so CPU per request compares like with like (throughput is not the point)",
            "added = target - direct (the mock's OpenAI endpoint); for gateway-anthropic it includes the "
            "OpenAI <-> Anthropic translation. *-messages targets: added = target - direct-messages (the "
            "mock's /v1/messages), ratios to passthrough-messages (the bare passthrough relaying the same "
            "Messages request); gateway-messages-openai includes the Messages <-> OpenAI chat translation. "
            "*-responses targets likewise against direct-responses and passthrough-responses; "
            "gateway-responses-openai includes the Responses <-> OpenAI chat translation",
            f"Wall time {wall_s:.0f}s; process logs in {bench.work}"
            + ("; INTERRUPTED, partial results" if interrupted else ""),
        ],
        "commands": [
            f"load: {load_cmd}",
            f"streams: python tests/bench/stream_client.py --url URL --n {a.streams} "
            f"--warmup {STREAM_WARMUP} [--body-file tests/bench/messages_request.json | "
            "tests/bench/responses_request.json]",
        ],
    }


def run_litellm(bench: Bench) -> dict[str, Any]:
    a = bench.args
    reason = litellm_cmp.missing(a.litellm_harness, a.litellm_bin)
    if reason:
        log(f"[litellm] n/a: {reason}")
        return {"status": "n/a", "reason": reason}
    log(f"[litellm] {a.litellm_harness} (direct, passthrough, litellm, gateway); this takes a few minutes")
    durations = {
        "--serial-s": str(max(1, round(a.serial_s))),
        "--load-s": str(max(1, round(a.load_s))),
        "--warmup-s": str(max(1, round(a.warmup_s))),
        "--conns": str(a.conns),
        "--chunks": str(a.chunks),
        "--stream-n": str(a.streams),
    }
    res = litellm_cmp.run(
        bench.sup,
        bench.work,
        a.python,
        durations,
        (bench.target_cpu, bench.load_cpu),
        a.conns,
        a.litellm_harness,
        a.litellm_bin,
    )
    if res["status"] != "ok":
        log(f"[litellm] {res['status']}: {res.get('reason')}")
    return res


def run_all(bench: Bench, results: list[dict[str, Any]]) -> None:
    """Starts the mock, then measures every target in turn into results (kept on KeyboardInterrupt)."""
    a, port = bench.args, bench.upstream_port
    log(f"mock upstream on :{port}; logs in {bench.work}")
    mock = bench.sup.spawn("mock_upstream", mock_argv(a.python, port, a.chunks), bench.load_cpu)
    body = bench.body_file(TARGETS["direct"].model).read_bytes()
    try:
        mock_startup = wait_ready(mock, f"http://127.0.0.1:{port}{CHAT_PATH}", body, 30)
    except TargetFailed as e:
        raise SystemExit(f"error: the mock upstream did not start: {e}\n{mock.log_tail()}") from None
    # The load-only targets (gateway-w1/-w2) run last, --cpu-rounds times each, fresh every time, in ABBA
    # order (w1 w2 w2 w1 ...) so that a drift of the machine's speed hits both alike.
    cpu_pair = [n for n in a.target_names if TARGETS[n].load_only]
    order = [(n, 0) for n in a.target_names if n not in cpu_pair]
    for rnd in range(max(a.cpu_rounds, 1)):
        order += [(n, rnd) for n in (cpu_pair if rnd % 2 == 0 else cpu_pair[::-1])]
    rounds: dict[str, list[dict[str, Any]]] = {n: [] for n in cpu_pair}
    try:
        for name, rnd in order:
            if not mock.alive():
                log("error: the mock upstream died; stopping the run")
                break
            label = f" (round {rnd + 1}/{a.cpu_rounds})" if name in rounds and a.cpu_rounds > 1 else ""
            log(f"[{name}] {TARGETS[name].about}{label}")
            if TARGETS[name].kind == "direct":
                res = bench.run_direct(TARGETS[name], mock, round(mock_startup, 3), mock.rss_kb())
            else:
                res = bench.run_target(TARGETS[name])
            if res["status"] != "ok":
                log(f"[{name}] FAILED: {res['error']}")
            if name in rounds:
                rounds[name].append(res)
            else:
                results.append(res)
    finally:  # also on KeyboardInterrupt: the rounds done so far
        results += [merge_rounds(runs) for runs in rounds.values() if runs]
    run_ratio_rounds(bench, results, mock)


def ratio_groups(results: list[dict[str, Any]]) -> list[list[str]]:
    """Each floor that some measured gateway target is compared with, and those targets (all measured
    fine): [floor, gateway, ...] per client protocol with ratio targets."""
    ok = {r["target"] for r in results if r.get("status") == "ok"}
    groups: dict[str, list[str]] = {}
    for name in ok:
        target = TARGETS[name]
        if target.kind == "gateway" and target.floor != "passthrough" and target.floor in ok:
            groups.setdefault(target.floor, []).append(name)
    return [[floor, *sorted(names)] for floor, names in sorted(groups.items())]


def run_ratio_rounds(bench: Bench, results: list[dict[str, Any]], mock: Proc) -> None:
    """--ratio-rounds more load phases of each ratio group, alternating the order round by round (a drift
    of the machine's speed hits a gateway target and its floor alike); each result gets `ratio_rounds`,
    and its load phase plus these make the ratio (checks.py). Then the group's --interleaved-streams
    (interleaved.py): each of its results, and its baseline's, gets `interleaved`."""
    a = bench.args
    by = {r["target"]: r for r in results}
    for group in ratio_groups(results) if a.ratio_rounds or a.interleaved_streams else []:
        baseline = TARGETS[group[1]].baseline  # (the mock itself: its streams, every round)
        for rnd in range(a.ratio_rounds):
            for name in group if rnd % 2 == 0 else group[::-1]:
                if not mock.alive():
                    log("error: the mock upstream died; no more ratio rounds")
                    return
                log(f"[{name}] ratio round {rnd + 1}/{a.ratio_rounds}")
                by[name].setdefault("ratio_rounds", []).append(bench.load_round(TARGETS[name]))
            if baseline in by:
                direct = TARGETS[baseline]
                url = f"http://127.0.0.1:{bench.upstream_port}{direct.api.path}"
                ttfb = bench.round_ttfb(url, bench.body_file(direct.model, direct.api))
                by[baseline].setdefault("ratio_rounds", []).append({"ttfb_p50_ms": ttfb})
        if a.interleaved_streams > 0 and baseline in by and mock.alive():
            log(f"[{', '.join(group)}] interleaved streams with {baseline}")
            try:
                figures = interleaved_ttfb(bench, group, baseline, a.interleaved_streams)
            except TargetFailed as e:
                log(f"error: interleaved streams: {e}")
                continue
            for name, result in figures.items():
                by[name]["interleaved"] = result


def merge_rounds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from a load-only target's rounds: requests, seconds and CPU time summed (so the CPU per
    request is total CPU / total requests), latency percentiles averaged, per-round figures kept."""
    failed = [r for r in runs if r["status"] != "ok"]
    if failed:
        return failed[0]
    res = dict(runs[0])
    loads = [r["load"] for r in runs]
    requests, seconds = sum(ld["requests"] for ld in loads), sum(ld["seconds"] for ld in loads)
    cpu_s = sum(ld["cpu_s"] for ld in loads)
    load = {
        "tool": loads[0].get("tool"),
        "conns": loads[0].get("conns"),
        "rounds": len(loads),
        "requests": requests,
        "seconds": round(seconds, 3),
        "rps": round(requests / seconds, 1) if seconds else 0.0,
        "errors": sum(ld.get("errors") or 0 for ld in loads),
        "cpu_s": round(cpu_s, 3),
        "cpu_us_per_req": round(cpu_s / requests * 1e6, 1) if requests else None,
        "procs": max(ld.get("procs", 0) for ld in loads),
    }
    for key in ("p50_ms", "p99_ms"):
        values = [ld[key] for ld in loads if isinstance(ld.get(key), int | float)]
        load[key] = round(sum(values) / len(values), 4) if values else None
    res["load"] = load
    res["rounds"] = [
        {
            "pid": r.get("pid"),
            "startup_s": r.get("startup_s"),
            "rss_idle_kb": r.get("rss_idle_kb"),
            **{
                k: r["load"].get(k)
                for k in ("requests", "seconds", "rps", "cpu_s", "cpu_us_per_req", "procs")
            },
        }
        for r in runs
    ]
    res["startup_s"] = max(r.get("startup_s") or 0 for r in runs)
    res["rss_after_kb"] = runs[-1].get("rss_after_kb")
    res["warnings"] = [w for r in runs for w in r.get("warnings", [])]
    for r in runs:
        if r["load"].get("cpu_warning"):
            res["warnings"].append(f"pid {r.get('pid')}: {r['load']['cpu_warning']}")
    return res


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now()
    stamp = started.strftime("%Y%m%d-%H%M%S")
    work = args.out_dir / f"bench-{stamp}-logs"
    work.mkdir(parents=True)
    machine = machine_line(args.python)  # before we add load of our own
    if "BUSY" in machine:
        log("warning: the CPUs are busy before the run: other processes will skew the figures")
    target_cpu, load_cpu = (None, None) if args.no_pin else cpu_plan()
    if load_cpu is not None:
        os.sched_setaffinity(0, {load_cpu})
    tool = LoadTool.detect(args.python, load_cpu, use_wrk=not args.no_wrk)
    if tool.wrk is None:
        log("note: wrk not found (or --no-wrk): using the built-in load generator tests/bench/load.py")
    upstream_port = free_port()
    gateway_yaml = work / "gateway.yaml"
    gateway_yaml.write_text(gateway_config(upstream_port, args.chunk_delay_ms))
    bench = Bench(args, Supervisor(work), tool, work, target_cpu, load_cpu, upstream_port, gateway_yaml)
    signal.signal(signal.SIGTERM, _sigterm)
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = []
    litellm: dict[str, Any] | None = None
    interrupted = False
    try:
        run_all(bench, results)
        bench.sup.stop_all()
        if args.litellm:
            litellm = run_litellm(bench)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: stopping every process")
    finally:
        bench.sup.stop_all()
    if interrupted and not results:
        return 130
    if litellm is None:
        litellm = {"status": "n/a", "reason": "not requested (--litellm)"}

    ratios = derive(results)
    meta = {
        "started": started.strftime("%Y-%m-%d %H:%M:%S"),
        "chunks": args.chunks,
        "conns": args.conns,
        "chunk_delay_ms": args.chunk_delay_ms,
        "memory_requests": args.memory_requests,
        "memory_warmup": args.memory_warmup,
        "interrupted": interrupted,
        "wall_s": round(time.perf_counter() - t0, 1),
        **describe(bench, tool, machine, time.perf_counter() - t0, interrupted),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    checks = evaluate(results, ratios, meta, litellm)
    markdown = render(meta, results, ratios, checks, litellm if args.litellm else None)
    md_path = args.out_dir / f"bench-{stamp}.md"
    md_path.write_text(markdown)
    md_path.with_suffix(".json").write_text(
        json.dumps(
            {"meta": meta, "targets": checks, "results": results, "ratios": ratios, "litellm": litellm},
            indent=2,
        )
    )
    print(markdown, flush=True)
    log(f"wrote {md_path} and {md_path.with_suffix('.json')}")
    if interrupted:
        return 130
    # FAIL rows are findings, not errors: only a target (or the requested LiteLLM run) that did not run
    # through makes the exit code non-zero.
    harness_failed = any(r["status"] != "ok" for r in results) or litellm.get("status") == "failed"
    return 1 if harness_failed else 0


if __name__ == "__main__":
    sys.exit(main())
