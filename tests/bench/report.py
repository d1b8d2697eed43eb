"""Derived figures (added latency vs direct, gateway/passthrough ratios) and the markdown report."""

from __future__ import annotations

from typing import Any

Result = dict[str, Any]
API_NAMES = {"messages": "Messages", "responses": "Responses"}


def _get(res: Result | None, phase: str, key: str) -> float | None:
    if res is None or res.get("status") != "ok":
        return None
    value = (res.get(phase) or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 4)


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else round(a / b, 2)


ADDED = (
    ("p50_ms", "serial", "p50_ms"),
    ("p99_ms", "serial", "p99_ms"),
    ("ttfb_p50_ms", "stream", "ttfb_p50_ms"),
    ("total_p50_ms", "stream", "total_p50_ms"),
)


def derive(results: list[Result]) -> dict[str, Any]:
    """Adds res["added"] (target minus its baseline, res["baseline"], "direct" when not given) to every ok
    target but the direct ones; returns the gateway/passthrough ratios, each gateway target's divided by
    its floor's (res["floor"], "passthrough" when not given)."""
    by_name = {r["target"]: r for r in results}
    for res in results:
        baseline = res.get("baseline", "direct")
        if res["status"] == "ok" and baseline is not None and res["target"] != "direct":
            direct = by_name.get(baseline)
            res["added"] = {k: _sub(_get(res, ph, key), _get(direct, ph, key)) for k, ph, key in ADDED}
    ratios: dict[str, Any] = {}
    for res in results:
        if not res["target"].startswith("gateway") or res["status"] != "ok":
            continue
        floor = res.get("floor") or "passthrough"
        passthrough = by_name.get(floor)
        pt_added = (passthrough or {}).get("added") or {}
        added = res.get("added") or {}
        ratios[res["target"]] = {
            "floor": floor,
            "rps": _div(_get(res, "load", "rps"), _get(passthrough, "load", "rps")),
            "added_p50": _div(added.get("p50_ms"), pt_added.get("p50_ms")),
            "added_p99": _div(added.get("p99_ms"), pt_added.get("p99_ms")),
            "added_ttfb_p50": _div(added.get("ttfb_p50_ms"), pt_added.get("ttfb_p50_ms")),
        }
    return ratios


def _f(value: Any, digits: int = 3, sign: bool = False) -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _mb(kb: Any) -> str:
    return f"{kb / 1024:.0f} MB" if isinstance(kb, int | float) and kb else "-"


def _mb1(kb: Any, sign: bool = False) -> str:
    if not isinstance(kb, int | float):
        return "-"
    return f"{kb / 1024:+.1f} MB" if sign else f"{kb / 1024:.1f} MB"


def _div3(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else round(a / b, 3)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(header) - 1)
    return [_row(header), _row(align), *(_row(r) for r in rows), ""]


def render_targets(checks: list[dict[str, Any]]) -> list[str]:
    """The "Targets" section: the issue's performance targets, PASS / FAIL / n/a."""
    counts = {s: sum(1 for c in checks if c["status"] == s) for s in ("PASS", "FAIL", "n/a")}
    out = ["## Targets", ""]
    out += [
        f"{counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['n/a']} n/a (not measured in this run).",
        "",
    ]
    out += _table(
        ["figure", "measured", "target", "result"],
        [[c["figure"], c["measured"], c["target"], c["status"]] for c in checks],
    )
    return out


def render(
    meta: dict[str, Any],
    results: list[Result],
    ratios: dict[str, Any],
    checks: list[dict[str, Any]] | None = None,
    litellm: dict[str, Any] | None = None,
) -> str:
    ok = [r for r in results if r["status"] == "ok"]
    out = [f"# Gateway benchmark: {meta['started']}", ""]
    out += [f"- {line}" for line in meta["setup"]] + [""]
    if checks:
        out += render_targets(checks)

    out += ["## Non-streaming", ""]
    apis = sorted({str(r["api"]) for r in ok if r.get("api")} - {"chat"})
    if apis:
        out += [
            "Chat requests; "
            + "; ".join(
                f"the *-{api} targets send the {API_NAMES.get(api, api)} request, and their added figures "
                f"are against direct-{api}"
                for api in apis
            )
            + ".",
            "",
        ]
    out += _table(
        [
            "target",
            f"rps (c={meta['conns']})",
            "p50 c=1 ms",
            "p99 c=1 ms",
            "added p50 ms",
            "added p99 ms",
            f"p50 c={meta['conns']} ms",
            f"p99 c={meta['conns']} ms",
            "errors",
        ],
        [
            [
                r["target"],
                _f(_get(r, "load", "rps"), 0),
                _f(_get(r, "serial", "p50_ms")),
                _f(_get(r, "serial", "p99_ms")),
                _f(r.get("added", {}).get("p50_ms"), sign=True),
                _f(r.get("added", {}).get("p99_ms"), sign=True),
                _f(_get(r, "load", "p50_ms")),
                _f(_get(r, "load", "p99_ms")),
                str(int((_get(r, "serial", "errors") or 0) + (_get(r, "load", "errors") or 0))),
            ]
            for r in ok
        ],
    )
    out += [f"## Streaming ({meta['chunks']} chunks, sequential)", ""]
    out += [
        "Sub-millisecond streaming differences move by a few tenths of a ms between runs; compare them "
        "over repeated runs.",
        "",
    ]
    out += _table(
        [
            "target",
            "TTFB p50 ms",
            "total p50 ms",
            "added TTFB p50 ms",
            "added total p50 ms",
            "TTFB p99 ms",
            "total p99 ms",
            "events/stream",
            "streams",
            "errors",
        ],
        [
            [
                r["target"],
                _f(_get(r, "stream", "ttfb_p50_ms")),
                _f(_get(r, "stream", "total_p50_ms")),
                _f(r.get("added", {}).get("ttfb_p50_ms"), sign=True),
                _f(r.get("added", {}).get("total_p50_ms"), sign=True),
                _f(_get(r, "stream", "ttfb_p99_ms")),
                _f(_get(r, "stream", "total_p99_ms")),
                _f(_get(r, "stream", "events_mean"), 1),
                _f(_get(r, "stream", "n"), 0),
                _f(_get(r, "stream", "errors"), 0),
            ]
            for r in ok
            if r.get("stream")
        ],
    )
    out += _interleaved(ok)
    delayed = [r for r in ok if r.get("stream_delay")]
    if delayed:
        out += [
            f"## Chunk flushing ({meta['chunks']} chunks, {meta['chunk_delay_ms']:g} ms apart at the mock)",
            "",
            "A proxy that relays chunks as they arrive keeps TTFB near the non-delayed figure; a buffering "
            "one shows TTFB close to the total.",
            "",
        ]
        out += _table(
            [
                "target",
                "TTFB p50 ms",
                "total p50 ms",
                "TTFB / total",
                "TTFB p99 ms",
                "events/stream",
                "streams",
            ],
            [
                [
                    r["target"],
                    _f(_get(r, "stream_delay", "ttfb_p50_ms")),
                    _f(_get(r, "stream_delay", "total_p50_ms"), 1),
                    _f(
                        _div3(_get(r, "stream_delay", "ttfb_p50_ms"), _get(r, "stream_delay", "total_p50_ms"))
                    ),
                    _f(_get(r, "stream_delay", "ttfb_p99_ms")),
                    _f(_get(r, "stream_delay", "events_mean"), 1),
                    _f(_get(r, "stream_delay", "n"), 0),
                ]
                for r in delayed
            ],
        )
    out += ["## Process", ""]
    out += [
        f"CPU = user + system time of the target's process tree (/proc/<pid>/stat utime + stime, summed over "
        f"the tree's processes) during the c={meta['conns']} load phase, per request served."
        + (
            f" {', '.join(r['target'] for r in ok if r.get('rounds'))}: totals over "
            f"{max(len(r['rounds']) for r in ok if r.get('rounds'))} rounds (each a fresh process), startup "
            "= the slowest round."
            if any(r.get("rounds") for r in ok)
            else ""
        ),
        "",
    ]
    out += _table(
        [
            "target",
            "startup s",
            "RSS idle",
            "RSS after run",
            "CPU us/request",
            "CPU s (load)",
            "procs",
            "pid",
        ],
        [
            [
                r["target"],
                _f(r.get("startup_s"), 2),
                _mb(r.get("rss_idle_kb")),
                _mb(r.get("rss_after_kb")),
                _f(_get(r, "load", "cpu_us_per_req"), 1),
                _f(_get(r, "load", "cpu_s"), 2),
                _f(_get(r, "load", "procs"), 0),
                str(r.get("pid", "-")),
            ]
            for r in ok
        ],
    )
    mem = [r for r in ok if r.get("memory")]
    if mem:
        out += [f"## Memory under sustained load (c={meta['conns']})", ""]
        rows = []
        for r in mem:
            m = r["memory"]
            warm, run = m.get("warmup") or {}, m.get("run") or {}
            rows.append(
                [
                    r["target"],
                    _mb(r.get("rss_idle_kb")),
                    f"{warm.get('requests', '-')}",
                    _mb1(m.get("rss_after_warmup_kb")),
                    f"{run.get('requests', '-')}",
                    _mb1(m.get("rss_after_kb")),
                    _mb1(m.get("growth_kb"), sign=True),
                    _f(run.get("rps"), 0),
                    str(int((warm.get("errors") or 0) + (run.get("errors") or 0))),
                ]
            )
        out += _table(
            [
                "target",
                "RSS idle",
                "warm-up requests",
                "RSS after warm-up",
                "requests",
                "RSS after",
                "growth",
                "rps",
                "errors",
            ],
            rows,
        )
    if litellm:
        out += render_litellm(litellm)
    if ratios:
        out += [
            "## Gateway vs passthrough",
            "",
            "rps: gateway / passthrough (higher is better); added: gateway added latency / "
            "passthrough added latency (lower is better, 1.0 = the Python floor).",
            "",
        ]
        out += _table(
            ["target", "floor", "rps ratio", "added p50 ratio", "added p99 ratio", "added TTFB p50 ratio"],
            [
                [
                    name,
                    v.get("floor", "passthrough"),
                    _f(v["rps"], 2),
                    _f(v["added_p50"], 2),
                    _f(v["added_p99"], 2),
                    _f(v["added_ttfb_p50"], 2),
                ]
                for name, v in ratios.items()
            ],
        )
    warned = [r for r in ok if r.get("warnings")]
    if warned:
        out += ["## Warnings", ""]
        out += [f"- **{r['target']}**: {w}" for r in warned for w in r["warnings"]] + [""]
    failed = [r for r in results if r["status"] != "ok"]
    if failed:
        out += ["## Failed targets", ""]
        for r in failed:
            out += [f"### {r['target']}", "", f"{r.get('error', '?')}", ""]
            if r.get("log_tail"):
                out += ["```", r["log_tail"], "```", ""]
    out += ["## Commands", ""]
    out += [f"- **{r['target']}**: `{r['cmd']}`" for r in results if r.get("cmd")]
    out += [f"- {line}" for line in meta["commands"]] + [""]
    return "\n".join(out)


def _interleaved(ok: list[Result]) -> list[str]:
    """The interleaved streams (interleaved.py): each ratio group with its direct baseline, one stream
    to each in turn; added = target - its baseline in the same interleaving."""
    rows = [r for r in ok if r.get("interleaved")]
    if not rows:
        return []
    by = {r["target"]: r for r in rows}
    out = [
        "## Interleaved streams (ratio groups, all up at once, one stream to each in turn)",
        "",
        "The added TTFB targets use these figures when they were measured.",
        "",
    ]
    cells = []
    for r in rows:
        mine = r["interleaved"]
        base = (by.get(r.get("baseline") or "") or {}).get("interleaved") or {}
        added = _sub(mine.get("ttfb_p50_ms"), base.get("ttfb_p50_ms")) if r.get("baseline") else None
        ttfb = [_f(mine.get("ttfb_p50_ms")), _f(added, sign=True), _f(mine.get("ttfb_p90_ms"))]
        cells.append(
            [
                r["target"],
                *ttfb,
                _f(mine.get("total_p50_ms")),
                _f(mine.get("n"), 0),
                _f(mine.get("errors"), 0),
            ]
        )
    header = ["target", "TTFB p50 ms", "added TTFB p50 ms", "TTFB p90 ms", "total p50 ms", "streams"]
    header.append("errors")
    return out + _table(header, cells)


def render_litellm(lite: dict[str, Any]) -> list[str]:
    """The LiteLLM comparison section (figures from ../shared/bench/run.py, run after our own targets)."""
    out = ["## LiteLLM comparison (../shared/bench/run.py)", ""]
    if lite.get("status") != "ok":
        out += [f"Not measured: {lite.get('reason', '?')}", ""]
        return out
    out += [
        f"Measured by the shared harness in this run, each target fresh, on its own mocks "
        f"(non-stream upstream: {lite.get('nonstream_upstream', '?')}); results in {lite.get('out_dir')}.",
        "",
    ]
    out += _table(
        [
            "target",
            f"rps (c={lite.get('conns', '?')})",
            "p50 c=1 ms",
            "p99 c=1 ms",
            "stream TTFB p50 ms",
            "RSS idle",
            "startup s",
            "error",
        ],
        [
            [
                t["target"],
                _f(t.get("rps"), 1),
                _f(t.get("p50_ms")),
                _f(t.get("p99_ms")),
                _f(t.get("ttfb_p50_ms")),
                _mb(t.get("idle_rss_kb")),
                _f(t.get("startup_s"), 2),
                (t.get("error") or "").splitlines()[0][:80] if t.get("error") else "",
            ]
            for t in lite.get("targets", [])
        ],
    )
    out += [f"Command: `{lite.get('cmd', '?')}`", ""]
    return out
