"""The gateway's Prometheus metrics: one `GatewayMetrics` per app, with its own registry.

Every metric lives in the instance's own `CollectorRegistry`, never the global default one, so
several apps in one process (tests) do not collide. Names start with `gateway_`. Label values are
what the caller passes: configured model aliases, provider names and key *names*, never request
data, so cardinality stays bounded by the config. An empty model or provider (a 404 for an unknown
alias) is reported as `unknown`.

The hot path: `observe_request` only adds figures up in plain Python (a bucket index by bisection, a
few additions); `flush()` applies them to the prometheus_client metrics, reaching pre-bound label
children through a dict keyed by the caller's arguments, so `.labels()` (validation, string
conversion, a lock) runs once per label set. `rate_limited` (rare) goes to its child directly.

Multi-process mode (`gateway --workers N`): when `PROMETHEUS_MULTIPROC_DIR` names a directory at the
time a `GatewayMetrics` is built, prometheus_client's multiprocess mode is used:

- Each worker process writes its values to memory-mapped files `<type>_<pid>.db` in that directory,
  when it flushes: every `FLUSH_INTERVAL_S` (the app runs the timer), before it renders and at
  shutdown, never per request. Build `GatewayMetrics` in each worker, after the fork.
- `render()` in any worker merges every process's files (`MultiProcessCollector`): counters and
  histograms are summed across processes, dead ones included, so totals never go backwards when a
  worker is replaced. Whichever worker a scrape reaches, it sees the whole server.
- The config gauges use `livemax`: `gateway_config_info{digest,version}` is 1 for each digest that
  some live worker serves (two digests at 1 means the workers disagree, e.g. mid-SIGHUP) and 0 for
  digests a worker has moved off; `gateway_config_loaded_timestamp_seconds` is the latest load of any
  live worker. A supervisor that sees a worker exit should call `worker_exited(pid)`, which drops that
  worker's gauge files; counters are kept. The directory should be empty when the server starts.
- prometheus_client chooses in-process or file-backed values once, from the environment, when it is
  first imported, which can be before `--workers` sets the variable; `GatewayMetrics` re-makes that
  choice from the environment as it is when the instance is built.
- All instances in one process share the files: in this mode "own registry" does not isolate values.

Without the variable, values are plain in-process floats and `render()` reads this instance's registry.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from gateway.observability.spend_metrics import SpendMetrics

# prometheus_client's untyped multiprocess helpers, with their types
_multiprocess_collector = cast(Callable[[CollectorRegistry, str], object], multiprocess.MultiProcessCollector)
_mark_process_dead = cast(Callable[[int, str], None], multiprocess.mark_process_dead)
_get_value_class = cast(Callable[[], type], values.get_value_class)

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
FLUSH_INTERVAL_S: Final = 1.0  # multi-process mode: how often a worker writes its figures to the files
UNKNOWN: Final = "unknown"  # label value for a model or provider the request never resolved to

# gateway overhead: 100 us ... 1 s; upstream latencies: 50 ms ... 2 min
OVERHEAD_BUCKETS: Final = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
LATENCY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)

RateLimitKind = Literal["requests", "tokens", "model", "auth", "budget"]
RATE_LIMIT_KINDS: Final = frozenset(("requests", "tokens", "model", "auth", "budget"))
StoreOperation = Literal["admit", "spend"]

_MODEL_PROVIDER = ("model", "provider")

PoolStats = Callable[[], Iterable[tuple[str, int, int, int]]]  # (origin, open, idle, waiting) per origin


@dataclass(slots=True)
class _Series:
    """The label children of one (model, provider) pair, bound once."""

    duration: Histogram
    upstream: Histogram
    overhead: Histogram
    ttfb: Histogram
    tokens_in: Counter
    tokens_out: Counter
    requests: dict[int, Counter] = field(default_factory=dict)  # by status


class _PendingHistogram:
    """Observations not yet applied to a prometheus_client histogram: per-bucket counts and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds  # the finite upper bounds; index len(bounds) is +Inf
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def add(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # the first bucket with value <= bound
        self.total += value

    def apply(self, child: Histogram) -> None:
        for i, count in enumerate(self.counts):
            if count:
                child._buckets[i].inc(count)  # what Histogram.observe does, `count` observations at once
        child._sum.inc(self.total)


@dataclass(slots=True)
class _Pending:
    """One (model, provider)'s observations since the last flush."""

    duration: _PendingHistogram
    upstream: _PendingHistogram
    overhead: _PendingHistogram
    ttfb: _PendingHistogram
    requests: dict[int, int] = field(default_factory=dict)  # by status
    tokens_in: int = 0
    tokens_out: int = 0


class GatewayMetrics:
    """The gateway's metrics. Build one per app (in multi-process mode: one per worker).

    Per-request figures are first added up in plain Python (`observe_request` costs the same in
    both modes: nothing shared between workers is touched per request) and applied to the
    prometheus_client metrics by `flush()`: before every `render()`, and in multi-process mode every
    `FLUSH_INTERVAL_S` by the app (so another worker's scrape lags at most that much) and at shutdown.
    """

    def __init__(self) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        _choose_value_class(self.multiprocess_dir is not None)
        self.registry = CollectorRegistry()
        self._render_from = self.registry
        if self.multiprocess_dir is not None:
            self._render_from = CollectorRegistry()
            _multiprocess_collector(self._render_from, self.multiprocess_dir)
        reg = self.registry

        self._requests = Counter(
            "gateway_requests_total",
            "Requests answered, by model alias, provider and HTTP status.",
            ("model", "provider", "status"),
            registry=reg,
        )
        self._duration = Histogram(
            "gateway_request_duration_seconds",
            "Whole request time as the gateway saw it (for streams: until the last byte).",
            _MODEL_PROVIDER,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._upstream = Histogram(
            "gateway_upstream_duration_seconds",
            "Time spent waiting on the upstream provider, all attempts included.",
            _MODEL_PROVIDER,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._overhead = Histogram(
            "gateway_overhead_seconds",
            "Request time not spent on the upstream: the gateway's own cost.",
            _MODEL_PROVIDER,
            buckets=OVERHEAD_BUCKETS,
            registry=reg,
        )
        self._ttfb = Histogram(
            "gateway_time_to_first_byte_seconds",
            "Streams: time until the first byte of the response reached the client.",
            _MODEL_PROVIDER,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self._tokens = Counter(
            "gateway_tokens_total",
            "Tokens reported by the upstream's usage: direction in = prompt, out = completion.",
            ("model", "provider", "direction"),
            registry=reg,
        )
        self._retries = Counter(
            "gateway_retries_total", "Retries of a target.", ("provider", "model"), registry=reg
        )
        self._fallbacks = Counter(
            "gateway_fallbacks_total", "Falls back to a later target of a route.", ("model",), registry=reg
        )
        self._cooldowns = Counter(
            "gateway_cooldowns_total", "Targets put to rest.", ("provider", "model"), registry=reg
        )
        self._rate_limited = Counter(
            "gateway_rate_limited_total",
            "Requests refused by a limit, by key name and kind (requests|tokens|model|auth|budget).",
            ("key", "kind"),
            registry=reg,
        )
        reloads = Counter(
            "gateway_config_reloads_total",
            "Config reloads, by result.",
            ("result",),
            registry=reg,
        )
        self._reload_ok = reloads.labels("ok")
        self._reload_failed = reloads.labels("failed")
        self._config_info = Gauge(
            "gateway_config_info",
            "The config being served: 1 for its digest and version.",
            ("digest", "version"),
            registry=reg,
            multiprocess_mode="livemax",
        )
        self._config_loaded_at = Gauge(
            "gateway_config_loaded_timestamp_seconds",
            "Unix time the config being served was loaded.",
            registry=reg,
            multiprocess_mode="livemax",
        )
        self._config_labels: tuple[str, str] | None = None

        self._series: dict[tuple[str, str], _Series] = {}
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._lock = threading.Lock()  # observe_request (event loop) vs flush (render runs in a thread)
        self._rate_limited_children: dict[tuple[str, str], Counter] = {}
        self._stream_outcomes = Counter(
            "gateway_stream_outcomes_total",
            "Streams whose 200 went out, by how they ended: ok, truncated, timeout, broken, "
            "upstream_error, invalid, too_large, translation_failed, client_closed, internal_error.",
            ("model", "provider", "outcome"),
            registry=reg,
        )
        self._stream_outcome_children: dict[tuple[str, str, str], Counter] = {}
        self._pending_stream_outcomes: dict[tuple[str, str, str], int] = {}
        self._pool_stats: PoolStats | None = None
        self._pool_gauges: tuple[Gauge, Gauge, Gauge] | None = None
        self._store_errors = self._rate_limit_store_counters()
        self._response_store_errors = Counter(
            "gateway_response_store_errors_total",
            "Calls to the store of responses (responses.store) that failed: get or delete (the client got "
            "a 503) or put (the response went out, not stored).",
            ("operation",),
            registry=self.registry,
        )
        self._cache_requests = Counter(
            "gateway_cache_requests_total",
            "Requests to an alias that caches (models.<alias>.cache), by result: hit, miss, or skip "
            "(the client's Cache-Control: no-cache).",
            ("alias", "result"),
            registry=reg,
        )
        self._cache_children: dict[tuple[str, str], Counter] = {}
        self.spend = SpendMetrics(reg)  # cost per request, budget use (spend_metrics.py)

    # -- per request -----------------------------------------------------------------------------

    def observe_request(
        self,
        model: str,
        provider: str,
        status: int,
        stream: bool,
        total_s: float,
        upstream_s: float | None,
        ttfb_s: float | None,
        prompt_tokens: int | None,
        completion_tokens: int | None,
    ) -> None:
        """One finished request. `upstream_s` None: no upstream was reached (no upstream or overhead
        observation); `ttfb_s` is observed for streams only; tokens when the usage reported them."""
        with self._lock:
            pending = self._pending.get((model, provider))
            if pending is None:
                pending = self._pending[(model, provider)] = _Pending(
                    _PendingHistogram(LATENCY_BUCKETS),
                    _PendingHistogram(LATENCY_BUCKETS),
                    _PendingHistogram(OVERHEAD_BUCKETS),
                    _PendingHistogram(LATENCY_BUCKETS),
                )
            pending.requests[status] = pending.requests.get(status, 0) + 1
            pending.duration.add(total_s)
            if upstream_s is not None:
                pending.upstream.add(upstream_s)
                overhead = total_s - upstream_s
                pending.overhead.add(overhead if overhead > 0.0 else 0.0)
            if stream and ttfb_s is not None:
                pending.ttfb.add(ttfb_s)
            if prompt_tokens is not None and prompt_tokens > 0:
                pending.tokens_in += prompt_tokens
            if completion_tokens is not None and completion_tokens > 0:
                pending.tokens_out += completion_tokens

    def flush(self) -> None:
        """Apply what `observe_request` added up since the last flush."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if self._pool_stats is not None:
            self._flush_pool(self._pool_stats)
        self._flush_stream_outcomes()
        self.spend.flush()
        for (model, provider), figures in pending.items():
            series = self._series.get((model, provider))
            if series is None:
                series = self._bind_series(model, provider)
            for status, count in figures.requests.items():
                counter = series.requests.get(status)
                if counter is None:
                    counter = series.requests[status] = self._requests.labels(
                        model or UNKNOWN, provider or UNKNOWN, str(status)
                    )
                counter.inc(count)
            figures.duration.apply(series.duration)
            if any(figures.upstream.counts):
                figures.upstream.apply(series.upstream)
                figures.overhead.apply(series.overhead)
            if any(figures.ttfb.counts):
                figures.ttfb.apply(series.ttfb)
            if figures.tokens_in:
                series.tokens_in.inc(figures.tokens_in)
            if figures.tokens_out:
                series.tokens_out.inc(figures.tokens_out)

    def _bind_series(self, model: str, provider: str) -> _Series:
        labels = (model or UNKNOWN, provider or UNKNOWN)
        series = _Series(
            duration=self._duration.labels(*labels),
            upstream=self._upstream.labels(*labels),
            overhead=self._overhead.labels(*labels),
            ttfb=self._ttfb.labels(*labels),
            tokens_in=self._tokens.labels(*labels, "in"),
            tokens_out=self._tokens.labels(*labels, "out"),
        )
        self._series[(model, provider)] = series
        return series

    def rate_limited(self, key_name: str, kind: RateLimitKind) -> None:
        """A request refused by a limit. `key_name` is the configured NAME of the client key, never
        the key itself."""
        child = self._rate_limited_children.get((key_name, kind))
        if child is None:
            if kind not in RATE_LIMIT_KINDS:
                raise ValueError(f"unknown rate-limit kind {kind!r} (known: {sorted(RATE_LIMIT_KINDS)})")
            child = self._rate_limited_children[(key_name, kind)] = self._rate_limited.labels(key_name, kind)
        child.inc()

    # -- stream outcomes -------------------------------------------------------------------------

    def stream_outcome(self, model: str, provider: str, outcome: str) -> None:
        """How a stream that reached the client ended (gateway/proxy/stream_outcome.py): counted per
        stream in plain Python, like `observe_request`, and applied by `flush()`."""
        key = (model, provider, outcome)
        with self._lock:
            self._pending_stream_outcomes[key] = self._pending_stream_outcomes.get(key, 0) + 1

    def _flush_stream_outcomes(self) -> None:
        with self._lock:
            pending, self._pending_stream_outcomes = self._pending_stream_outcomes, {}
        for key, count in pending.items():
            child = self._stream_outcome_children.get(key)
            if child is None:
                model, provider, outcome = key
                child = self._stream_outcome_children[key] = self._stream_outcomes.labels(
                    model or UNKNOWN, provider or UNKNOWN, outcome
                )
            child.inc(count)

    # -- rate-limit store ------------------------------------------------------------------------

    def _rate_limit_store_counters(self) -> dict[str, Counter]:
        errors = Counter(
            "gateway_rate_limit_store_errors_total",
            "Calls to the rate-limit store (auth.store) that failed: admit (the request was served "
            "uncounted or refused, per auth.store_failure) or spend (its tokens were not counted).",
            ("operation",),
            registry=self.registry,
        )
        return {operation: errors.labels(operation) for operation in ("admit", "spend")}

    def rate_limit_store_error(self, operation: StoreOperation) -> None:
        self._store_errors[operation].inc()

    def response_store_error(self, operation: str) -> None:
        self._response_store_errors.labels(operation).inc()

    # -- response cache --------------------------------------------------------------------------

    def cache_request(self, alias: str, result: str) -> None:
        """A request to an alias that caches (configured aliases only: bounded labels)."""
        child = self._cache_children.get((alias, result))
        if child is None:
            child = self._cache_children[(alias, result)] = self._cache_requests.labels(alias, result)
        child.inc()

    # -- routing events (rare: no pre-binding) ---------------------------------------------------

    def retry(self, provider: str, model: str) -> None:
        self._retries.labels(provider, model).inc()

    def fallback(self, model: str) -> None:
        self._fallbacks.labels(model).inc()

    def cooldown(self, provider: str, model: str) -> None:
        self._cooldowns.labels(provider, model).inc()

    # -- config ----------------------------------------------------------------------------------

    def config_reload(self, ok: bool) -> None:
        (self._reload_ok if ok else self._reload_failed).inc()

    def config_loaded(self, digest: str, version: str, loaded_at: float) -> None:
        """The config now served; the previous digest's series is dropped (multi-process: set to 0,
        since the worker's file keeps it)."""
        labels = (digest, version)
        previous = self._config_labels
        if previous is not None and previous != labels:
            self._config_info.labels(*previous).set(0)
            self._config_info.remove(*previous)
        self._config_info.labels(*labels).set(1)
        self._config_labels = labels
        self._config_loaded_at.set(loaded_at)

    # -- upstream connection pool ----------------------------------------------------------------

    def watch_pool(self, stats: PoolStats) -> None:
        """Show the pool's `stats()` — (origin, open, idle, waiting) per origin — as gauges, read at
        every flush (before a render; multi-process: every FLUSH_INTERVAL_S): nothing per request.
        Origins are the configured upstreams' `scheme://host:port`, bounded by the config."""
        reg = self.registry
        self._pool_gauges = (
            Gauge(
                "gateway_upstream_connections_open",
                "Upstream connections open (busy or idle), by origin.",
                ("origin",),
                registry=reg,
                multiprocess_mode="livesum",
            ),
            Gauge(
                "gateway_upstream_connections_idle",
                "Upstream connections open and idle (kept alive for reuse), by origin.",
                ("origin",),
                registry=reg,
                multiprocess_mode="livesum",
            ),
            Gauge(
                "gateway_upstream_pool_waiting",
                "Requests waiting for an upstream connection slot, by origin.",
                ("origin",),
                registry=reg,
                multiprocess_mode="livesum",
            ),
        )
        self._pool_stats = stats

    def _flush_pool(self, stats: PoolStats) -> None:
        assert self._pool_gauges is not None
        opened, idle, waiting = self._pool_gauges
        for origin, open_count, idle_count, waiting_count in stats():
            opened.labels(origin).set(open_count)
            idle.labels(origin).set(idle_count)
            waiting.labels(origin).set(waiting_count)

    # -- exposition ------------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The text exposition (format 0.0.4: what every Prometheus reads) and its content type."""
        self.flush()
        return generate_latest(self._render_from), CONTENT_TYPE_PLAIN_0_0_4


def worker_exited(pid: int, multiprocess_dir: str | None = None) -> None:
    """Multi-process mode: drop the gauge files of a worker that is gone (its counters stay)."""
    path = multiprocess_dir or os.environ.get(MULTIPROC_ENV)
    if path:
        _mark_process_dead(pid, path)


def _choose_value_class(multiprocess: bool) -> None:
    """Make prometheus_client's process-wide choice of value storage (taken from the environment at
    its import) agree with the environment now, before any metric of ours is created."""
    if bool(getattr(values.ValueClass, "_multiprocess", False)) != multiprocess:
        values.ValueClass = _get_value_class()
