"""The issue's performance targets, checked against one run's figures: PASS, FAIL or n/a (not measured)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import partial
from typing import Any

Result = dict[str, Any]
Row = dict[str, Any]

GATEWAYS = ("gateway-openai", "gateway-anthropic")
MEMORY_TARGET = "gateway-openai"  # the target the --memory-requests phase runs against
# Anthropic Messages ingress: (target, rps floor, ceiling on added stream TTFB / the passthrough's or None);
# both against passthrough-messages, the bare passthrough relaying the same Messages request
MESSAGES_TARGETS = (("gateway-messages-native", 1.0, None), ("gateway-messages-openai", 0.7, 1.5))
# Responses API ingress, the same figures against passthrough-responses
RESPONSES_TARGETS = (("gateway-responses-native", 1.0, None), ("gateway-responses-openai", 0.7, 1.5))


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _phase(res: Result | None, phase: str, key: str) -> float | None:
    if res is None or res.get("status") != "ok":
        return None
    return _num((res.get(phase) or {}).get(key))


def pooled_rps(res: Result | None) -> tuple[float | None, int]:
    """A target's throughput over its load phase and its ratio rounds (run_bench.run_ratio_rounds):
    requests over seconds, all of them; and how many phases that is. A failed round counts nothing."""
    if res is None or res.get("status") != "ok":
        return None, 0
    rounds = [r for r in res.get("ratio_rounds") or [] if "error" not in r]
    if not rounds:
        return _phase(res, "load", "rps"), 1
    phases = [res.get("load") or {}, *rounds]
    requests = sum(_num(p.get("requests")) or 0 for p in phases)
    seconds = sum(_num(p.get("seconds")) or 0 for p in phases)
    return (requests / seconds if seconds else None), len(phases)


def pooled_ttfb(res: Result | None) -> float | None:
    """A target's stream TTFB p50 over its stream phase and its ratio rounds: their mean (None: not
    measured)."""
    if res is None or res.get("status") != "ok":
        return None
    values = [_phase(res, "stream", "ttfb_p50_ms")]
    values += [_num(r.get("ttfb_p50_ms")) for r in res.get("ratio_rounds") or [] if "error" not in r]
    found = [v for v in values if v is not None]
    return sum(found) / len(found) if found else None


def _added_ttfb(by: dict[str, Result], name: str) -> float | None:
    """Added stream TTFB of `name` over its baseline: from the interleaved streams when it had them (its
    baseline's among them), else pooled over the ratio rounds when it had some (the baseline streamed in
    every round too), else the stream phase's (report.derive)."""
    res = by.get(name) or {}
    base_res = by.get(res.get("baseline") or "direct") or {}
    mine_i, base_i = (_num((r.get("interleaved") or {}).get("ttfb_p50_ms")) for r in (res, base_res))
    if mine_i is not None and base_i is not None:
        return mine_i - base_i
    if not res.get("ratio_rounds"):
        return _num((res.get("added") or {}).get("ttfb_p50_ms"))
    mine, base = pooled_ttfb(res), pooled_ttfb(by.get(res.get("baseline") or "direct"))
    return mine - base if mine is not None and base is not None else None


def _how(by: dict[str, Result], *names: str) -> str:
    """How the added TTFBs of `names` were measured, when not in their own stream phases."""
    results = [by.get(name) or {} for name in names]
    if all(r.get("interleaved") for r in results):
        return ", interleaved streams"
    if all(r.get("ratio_rounds") for r in results):
        return ", pooled over rounds"
    return ""


def _row(figure: str, target: str, value: float | None, ok: Callable[[float], bool], shown: str) -> Row:
    """ok(value) decides PASS / FAIL; no value is n/a."""
    status = "n/a" if value is None else ("PASS" if ok(value) else "FAIL")
    return {
        "figure": figure,
        "measured": shown if value is not None else "not measured",
        "target": target,
        "status": status,
        "value": value,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f} ms"


def _mb(kb: float | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.1f} MB"


def evaluate(
    results: list[Result], ratios: dict[str, Any], meta: dict[str, Any], litellm: dict[str, Any] | None
) -> list[Row]:
    """One row per target figure. `results` carry res["added"] (report.derive) and `ratios` the
    gateway/passthrough ratios; meta: chunks, chunk_delay_ms, memory_requests, memory_warmup."""
    by = {r["target"]: r for r in results}
    pt = by.get("passthrough")
    pt_rps = _phase(pt, "load", "rps")
    pt_added = (pt or {}).get("added") or {}
    rows: list[Row] = []

    # 1. throughput at c=32
    for name, floor in (("gateway-openai", 0.8), ("gateway-anthropic", 0.6)):
        value = (ratios.get(name) or {}).get("rps")
        rps = _phase(by.get(name), "load", "rps")
        shown = f"{value:.2f} ({rps:.0f} / {pt_rps:.0f} rps)" if value is not None and rps and pt_rps else ""
        rows.append(
            _row(
                f"rps c={meta['conns']}, {name} / passthrough",
                f">= {floor}",
                value,
                partial(operator.le, floor),
                shown,
            )
        )

    # 2. serial added latency vs the passthrough's
    for key, pct, ceiling in (("p50", "added_p50", 1.5), ("p99", "added_p99", 2.0)):
        for name in GATEWAYS:
            value = (ratios.get(name) or {}).get(pct)
            added = ((by.get(name) or {}).get("added") or {}).get(f"{key}_ms")
            shown = (
                f"{value:.2f} ({_ms(added)} / {_ms(pt_added.get(f'{key}_ms'))})" if value is not None else ""
            )
            rows.append(
                _row(
                    f"added {key} c=1, {name} / passthrough",
                    f"<= {ceiling}",
                    value,
                    partial(operator.ge, ceiling),
                    shown,
                )
            )

    # 3. streaming: added TTFB, added total, chunks relayed as they arrive
    for name in GATEWAYS:
        value = ((by.get(name) or {}).get("added") or {}).get("ttfb_p50_ms")
        rows.append(
            _row(
                f"stream TTFB p50 added vs direct, {name}", "<= 0.5 ms", value, lambda v: v <= 0.5, _ms(value)
            )
        )
    for name in GATEWAYS:
        value = ((by.get(name) or {}).get("added") or {}).get("total_p50_ms")
        rows.append(
            _row(
                f"{meta['chunks']}-chunk stream total p50 added vs direct, {name}",
                "<= 1 ms",
                value,
                lambda v: v <= 1.0,
                _ms(value),
            )
        )
    delay = meta.get("chunk_delay_ms") or 0
    for name in GATEWAYS:
        res = by.get(name)
        ttfb, total = _phase(res, "stream_delay", "ttfb_p50_ms"), _phase(res, "stream_delay", "total_p50_ms")
        ratio = None if ttfb is None or not total else round(ttfb / total, 4)
        shown = f"TTFB {ttfb:.2f} / total {total:.1f} ms = {ratio:.3f}" if ratio is not None else ""
        rows.append(
            _row(
                f"chunks flushed as they arrive ({delay:g} ms apart), {name}: TTFB p50 / total p50",
                "< 0.25 (not buffered)",
                ratio,
                lambda v: v < 0.25,
                shown,
            )
        )

    # 4. memory
    for name in GATEWAYS:
        kb = (
            _num((by.get(name) or {}).get("rss_idle_kb"))
            if (by.get(name) or {}).get("status") == "ok"
            else None
        )
        rows.append(
            _row(f"RSS idle after startup, {name}", "<= 60 MB", kb, lambda v: v <= 60 * 1024, _mb(kb))
        )
    mem = (by.get(MEMORY_TARGET) or {}).get("memory") or {}
    growth = _num(mem.get("growth_kb"))
    done = (mem.get("run") or {}).get("requests")
    shown = (
        f"{_mb(mem.get('rss_after_warmup_kb'))} after {mem.get('warmup', {}).get('requests')} warm-up -> "
        f"{_mb(mem.get('rss_after_kb'))} after {done} more ({growth / 1024:+.1f} MB)"
        if growth is not None
        else ""
    )
    rows.append(
        _row(
            f"RSS growth over {meta['memory_requests']} requests (c={meta['conns']}), {MEMORY_TARGET}",
            "<= 5 MB",
            growth if mem.get("complete") else None,
            lambda v: v <= 5 * 1024,
            shown,
        )
    )

    # 5. startup
    for name in GATEWAYS:
        res = by.get(name) or {}
        value = _num(res.get("startup_s")) if res.get("status") == "ok" else None
        rows.append(
            _row(
                f"startup to first served request, {name}",
                "<= 1 s",
                value,
                lambda v: v <= 1.0,
                "" if value is None else f"{value:.2f} s",
            )
        )

    # 6. CPU per request, --workers 2 vs --workers 1
    w1 = _phase(by.get("gateway-w1"), "load", "cpu_us_per_req")
    w2 = _phase(by.get("gateway-w2"), "load", "cpu_us_per_req")
    ratio = None if w1 is None or w2 is None or w1 <= 0 else round(w2 / w1, 3)
    shown = ""
    if ratio is not None and w1 and w2:
        shown = f"{ratio:.3f} ({w2:.0f} / {w1:.0f} us)"
        per_round = [
            f"{n[-2:]} " + ", ".join(f"{r.get('cpu_us_per_req') or 0:.0f}" for r in by[n].get("rounds") or [])
            for n in ("gateway-w1", "gateway-w2")
            if len(by[n].get("rounds") or []) > 1
        ]
        if per_round:
            shown += f"; per round {'; '.join(per_round)} us"

    rows.append(
        _row(
            "CPU time per request (tree user+sys, c=32 load), --workers 2 / --workers 1",
            "within 10% (0.90-1.10)",
            ratio,
            lambda v: 0.9 <= v <= 1.1,
            shown,
        )
    )
    # The control: the bare passthrough in the same layout (1 vs 2 processes sharing one CPU) shows what
    # the operating system charges for two busy processes on one core, with no gateway code at all.
    p1 = _phase(by.get("passthrough-p1"), "load", "cpu_us_per_req")
    p2 = _phase(by.get("passthrough-p2"), "load", "cpu_us_per_req")
    control = None if p1 is None or p2 is None or p1 <= 0 else p2 / p1
    adjusted = None if ratio is None or control is None else round(ratio / control, 3)
    rows.append(
        _row(
            "the same, relative to the bare passthrough's 2 / 1 processes in this layout (control)",
            "<= 1.10 (at most 10% above the OS's own cost)",
            adjusted,
            lambda v: v <= 1.1,
            ""
            if adjusted is None or control is None
            else f"{adjusted:.3f} (gateway {ratio:.3f} / passthrough {control:.3f}: {p2:.0f} / {p1:.0f} us)",
        )
    )

    rows += _ingress_rows(by, ratios, meta, MESSAGES_TARGETS)
    rows += _ingress_rows(by, ratios, meta, RESPONSES_TARGETS)

    # 8. LiteLLM
    lite = litellm or {}
    value = _num(lite.get("ratio"))
    rows.append(
        _row(
            f"rps c={meta['conns']}, gateway / LiteLLM (../shared/bench/run.py, same run)",
            ">= 30",
            value,
            lambda v: v >= 30,
            f"{value:.1f} ({lite.get('gateway_rps'):.0f} / {lite.get('litellm_rps'):.1f} rps)"
            if value is not None
            else "",
        )
    )
    if value is None and lite.get("reason"):
        rows[-1]["measured"] = f"n/a: {lite['reason']}"
    return rows


def _ingress_rows(
    by: dict[str, Result],
    ratios: dict[str, Any],
    meta: dict[str, Any],
    targets: tuple[tuple[str, float, float | None], ...],
) -> list[Row]:
    """A client protocol's ingress targets (Messages, Responses): throughput, and added stream TTFB where a
    translation sits in between, each relative to the floor the target names (report.derive) and added
    over the baseline it names. Ratios unrounded: 0.996 is not 1.0."""
    rows: list[Row] = []
    for name, rps_floor, ttfb_ceiling in targets:
        res = by.get(name)
        protocol = name.split("-")[1]  # gateway-<protocol>-<upstream>
        floor = (ratios.get(name) or {}).get("floor") or f"passthrough-{protocol}"
        baseline = (res or {}).get("baseline") or f"direct-{protocol}"
        (rps, phases), (floor_rps, _) = pooled_rps(res), pooled_rps(by.get(floor))
        value = rps / floor_rps if rps is not None and floor_rps else None
        over = f", {phases} load phases each" if phases > 1 else ""
        rows.append(
            _row(
                f"rps c={meta['conns']}, {name} / {floor}",
                f">= {rps_floor}",
                value,
                partial(operator.le, rps_floor),
                f"{value:.3f} ({rps:.0f} / {floor_rps:.0f} rps{over})" if value is not None else "",
            )
        )
        if ttfb_ceiling is None:
            continue
        added, floor_added = _added_ttfb(by, name), _added_ttfb(by, floor)
        value = added / floor_added if added is not None and floor_added and floor_added > 0 else None
        rows.append(
            _row(
                f"stream TTFB p50 added vs {baseline}, {name} / {floor}",
                f"<= {ttfb_ceiling}",
                value,
                partial(operator.ge, ttfb_ceiling),
                f"{value:.2f} ({_ms(added)} / {_ms(floor_added)}{_how(by, name, floor)})"
                if value is not None
                else "",
            )
        )
    return rows
