"""Interleaved streams: the stream TTFB of a ratio group (a floor, its gateway targets and their direct
baseline) measured with all of them up at once, one sequential stream to each in turn, round after round.

Why: the added TTFB the issues set targets for is a difference of sub-millisecond p50s (target minus
direct), and a phase of streams measured minutes after another one moved by 0.1-0.2 ms on this machine
(the direct baseline alone read 0.14 ms in one phase and 0.31 ms in the next). Streams in turn share
whatever state the machine is in, so the differences between them keep, and the ratios checks.py makes
of them stop swinging between 0.9 and 1.7 for the same code. Sequential streams leave the processes
idle but for the one stream in flight, so starting them together costs nothing in accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadgen import run_interleaved_streams
from probe import TargetFailed, wait_ready
from procs import Proc, free_port
from targets import TARGETS, target_argv

if TYPE_CHECKING:
    from run_bench import Bench

REPO = Path(__file__).resolve().parents[2]

WARMUP_STREAMS = 20  # to each target before the measured ones


def interleaved_ttfb(
    bench: Bench, group: list[str], baseline: str, streams: int
) -> dict[str, dict[str, Any]]:
    """{target: its figures (ttfb_p50_ms, ...)} for the group's targets and `baseline` (the mock's own
    endpoint), `streams` each, interleaved; TargetFailed when a target does not start or the client fails."""
    a = bench.args
    procs: list[Proc] = []
    urls: list[tuple[str, tuple[str, Path]]] = []
    direct = TARGETS[baseline]
    urls.append(
        (
            baseline,
            (
                f"http://127.0.0.1:{bench.upstream_port}{direct.api.path}",
                bench.body_file(direct.model, direct.api),
            ),
        )
    )
    try:
        for name in group:
            target = TARGETS[name]
            port = free_port()
            argv = target_argv(target, a.python, port, bench.upstream_port, bench.gateway_yaml)
            proc = bench.sup.spawn(f"{name}-interleaved", argv, bench.target_cpu, cwd=REPO)
            procs.append(proc)
            url = f"http://127.0.0.1:{port}{target.api.path}"
            body_file = bench.body_file(target.model, target.api)
            wait_ready(proc, url, body_file.read_bytes(), a.startup_timeout)
            urls.append((name, (url, body_file)))
        figures = run_interleaved_streams(
            a.python,
            bench.load_cpu,
            [pair for _, pair in urls],
            streams,
            WARMUP_STREAMS,
            a.stream_max_s,
        )
    finally:
        for proc in procs:
            bench.sup.stop(proc)
    out: dict[str, dict[str, Any]] = {}
    for (name, _), result in zip(urls, figures, strict=True):
        if not result.get("n"):
            raise TargetFailed(f"{name}: no interleaved stream succeeded ({result.get('error_samples')})")
        out[name] = result
    return out
