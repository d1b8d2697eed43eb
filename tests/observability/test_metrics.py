"""GatewayMetrics, single-process: every metric as it reads in the exposition."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from gateway.observability.metrics import LATENCY_BUCKETS, OVERHEAD_BUCKETS, GatewayMetrics
from tests.observability.exposition import Samples, label_sets, parse, value


def scrape(metrics: GatewayMetrics) -> Samples:
    body, _content_type = metrics.render()
    return parse(body)


def observe(metrics: GatewayMetrics, **overrides: Any) -> None:
    fields: dict[str, Any] = {
        "model": "gpt-4o",
        "provider": "openai",
        "status": 200,
        "stream": False,
        "total_s": 1.25,
        "upstream_s": 1.2,
        "ttfb_s": None,
        "prompt_tokens": 10,
        "completion_tokens": 3,
    }
    fields.update(overrides)
    metrics.observe_request(**fields)


MP = {"model": "gpt-4o", "provider": "openai"}


def test_request_counter_by_model_provider_and_status() -> None:
    metrics = GatewayMetrics()
    observe(metrics)
    observe(metrics)
    observe(metrics, status=429)
    observe(metrics, model="claude", provider="anthropic")
    samples = scrape(metrics)
    assert value(samples, "gateway_requests_total", **MP, status="200") == 2
    assert value(samples, "gateway_requests_total", **MP, status="429") == 1
    assert value(samples, "gateway_requests_total", model="claude", provider="anthropic", status="200") == 1
    assert len(label_sets(samples, "gateway_requests_total")) == 3


def test_durations_overhead_and_buckets() -> None:
    metrics = GatewayMetrics()
    observe(metrics, total_s=1.2003, upstream_s=1.2)
    samples = scrape(metrics)
    assert value(samples, "gateway_request_duration_seconds_count", **MP) == 1
    assert value(samples, "gateway_request_duration_seconds_sum", **MP) == pytest.approx(1.2003)
    assert value(samples, "gateway_upstream_duration_seconds_sum", **MP) == pytest.approx(1.2)
    assert value(samples, "gateway_overhead_seconds_sum", **MP) == pytest.approx(0.0003)
    # 300 us of overhead lands between the 250 us and 500 us buckets
    assert value(samples, "gateway_overhead_seconds_bucket", **MP, le="0.00025") == 0
    assert value(samples, "gateway_overhead_seconds_bucket", **MP, le="0.0005") == 1
    assert value(samples, "gateway_request_duration_seconds_bucket", **MP, le="1.0") == 0
    assert value(samples, "gateway_request_duration_seconds_bucket", **MP, le="2.5") == 1
    overhead_bounds = {s["le"] for s in label_sets(samples, "gateway_overhead_seconds_bucket")}
    latency_bounds = {s["le"] for s in label_sets(samples, "gateway_upstream_duration_seconds_bucket")}
    assert len(overhead_bounds) == len(OVERHEAD_BUCKETS) + 1  # + "+Inf"
    assert len(latency_bounds) == len(LATENCY_BUCKETS) + 1
    assert {"0.0001", "1.0", "+Inf"} <= overhead_bounds
    assert {"0.05", "120.0", "+Inf"} <= latency_bounds


def test_batched_observations_land_in_the_buckets_prometheus_client_would_choose() -> None:
    values = [0.0, 0.05, 0.0500001, 0.3, 2.5, 120.0, 121.0, 7.0, 7.0]
    metrics = GatewayMetrics()
    for total in values:
        observe(metrics, total_s=total, upstream_s=None)
    reference = CollectorRegistry()
    direct = Histogram(
        "direct_seconds", "one observe() per value", buckets=LATENCY_BUCKETS, registry=reference
    )
    for total in values:
        direct.observe(total)
    expected = {s.labels["le"]: s.value for s in next(iter(reference.collect())).samples if "le" in s.labels}
    samples = scrape(metrics)
    for bound, count in expected.items():
        assert value(samples, "gateway_request_duration_seconds_bucket", **MP, le=bound) == count, bound
    assert value(samples, "gateway_request_duration_seconds_sum", **MP) == pytest.approx(sum(values))


def test_figures_are_applied_on_flush_and_render_flushes() -> None:
    metrics = GatewayMetrics()
    observe(metrics)
    observe(metrics, status=502)
    # added up, not yet applied: nothing per request touches prometheus_client (or, with
    # --workers, the shared files)
    assert metrics.registry.get_sample_value("gateway_requests_total", {**MP, "status": "200"}) is None
    metrics.flush()
    assert metrics.registry.get_sample_value("gateway_requests_total", {**MP, "status": "200"}) == 1
    observe(metrics)
    samples = scrape(metrics)  # render() flushes first
    assert value(samples, "gateway_requests_total", **MP, status="200") == 2
    assert value(samples, "gateway_requests_total", **MP, status="502") == 1
    assert value(samples, "gateway_tokens_total", **MP, direction="in") == 30


def test_no_upstream_means_no_upstream_or_overhead_observation() -> None:
    metrics = GatewayMetrics()
    observe(metrics, status=400, upstream_s=None, prompt_tokens=None, completion_tokens=None)
    samples = scrape(metrics)
    assert value(samples, "gateway_request_duration_seconds_count", **MP) == 1
    assert value(samples, "gateway_upstream_duration_seconds_count", **MP) == 0
    assert value(samples, "gateway_overhead_seconds_count", **MP) == 0
    assert value(samples, "gateway_tokens_total", **MP, direction="in") == 0


def test_overhead_is_never_negative() -> None:
    metrics = GatewayMetrics()
    observe(metrics, total_s=0.5, upstream_s=0.5000001)  # clocks read in a different order
    samples = scrape(metrics)
    assert value(samples, "gateway_overhead_seconds_sum", **MP) == 0
    assert value(samples, "gateway_overhead_seconds_bucket", **MP, le="0.0001") == 1


def test_time_to_first_byte_is_for_streams_only() -> None:
    metrics = GatewayMetrics()
    observe(metrics, stream=True, ttfb_s=0.2)
    observe(metrics, stream=False, ttfb_s=0.9)
    observe(metrics, stream=True, ttfb_s=None)  # a stream that failed before its first byte
    samples = scrape(metrics)
    assert value(samples, "gateway_time_to_first_byte_seconds_count", **MP) == 1
    assert value(samples, "gateway_time_to_first_byte_seconds_sum", **MP) == pytest.approx(0.2)
    assert value(samples, "gateway_request_duration_seconds_count", **MP) == 3


def test_tokens_in_and_out() -> None:
    metrics = GatewayMetrics()
    observe(metrics, prompt_tokens=100, completion_tokens=20)
    observe(metrics, prompt_tokens=5, completion_tokens=None)
    observe(metrics, prompt_tokens=0, completion_tokens=-1)  # nonsense usage is not counted
    samples = scrape(metrics)
    assert value(samples, "gateway_tokens_total", **MP, direction="in") == 105
    assert value(samples, "gateway_tokens_total", **MP, direction="out") == 20


def test_unresolved_model_and_provider_are_unknown() -> None:
    metrics = GatewayMetrics()
    observe(metrics, model="", provider="", status=404, upstream_s=None)
    samples = scrape(metrics)
    assert value(samples, "gateway_requests_total", model="unknown", provider="unknown", status="404") == 1


def test_retries_fallbacks_cooldowns() -> None:
    metrics = GatewayMetrics()
    metrics.retry("openai", "gpt-4o")
    metrics.retry("openai", "gpt-4o")
    metrics.fallback("smart")
    metrics.cooldown("azure", "gpt4o-prod")
    samples = scrape(metrics)
    assert value(samples, "gateway_retries_total", provider="openai", model="gpt-4o") == 2
    assert value(samples, "gateway_fallbacks_total", model="smart") == 1
    assert value(samples, "gateway_cooldowns_total", provider="azure", model="gpt4o-prod") == 1


def test_rate_limited_by_key_name_and_kind() -> None:
    metrics = GatewayMetrics()
    metrics.rate_limited("team-alpha", "requests")
    metrics.rate_limited("team-alpha", "requests")
    metrics.rate_limited("team-alpha", "tokens")
    metrics.rate_limited("batch", "model")
    metrics.rate_limited("anonymous", "auth")
    samples = scrape(metrics)
    assert value(samples, "gateway_rate_limited_total", key="team-alpha", kind="requests") == 2
    assert value(samples, "gateway_rate_limited_total", key="team-alpha", kind="tokens") == 1
    assert value(samples, "gateway_rate_limited_total", key="batch", kind="model") == 1
    assert value(samples, "gateway_rate_limited_total", key="anonymous", kind="auth") == 1


def test_rate_limited_rejects_an_unknown_kind() -> None:
    metrics = GatewayMetrics()
    with pytest.raises(ValueError, match="unknown rate-limit kind"):
        metrics.rate_limited("team-alpha", "minutes")  # type: ignore[arg-type]


def test_rate_limited_labels_carry_only_the_key_name_given() -> None:
    """Passing the key's NAME (never the key) is the caller's job; the metric uses exactly what it
    is given, under `key`, and nothing else from the request."""
    secret = "sk-live-DO-NOT-LEAK-123"
    metrics = GatewayMetrics()
    metrics.rate_limited("team-alpha", "auth")
    body, _ = metrics.render()
    samples = parse(body)
    assert label_sets(samples, "gateway_rate_limited_total") == [{"key": "team-alpha", "kind": "auth"}]
    assert secret.encode() not in body
    assert b"sk-" not in body


def test_label_values_are_escaped() -> None:
    metrics = GatewayMetrics()
    odd = 'we"ird\\name\nx'
    metrics.rate_limited(odd, "requests")
    assert value(scrape(metrics), "gateway_rate_limited_total", key=odd, kind="requests") == 1


def test_config_reloads() -> None:
    metrics = GatewayMetrics()
    samples = scrape(metrics)
    assert value(samples, "gateway_config_reloads_total", result="ok") == 0  # both results from the start
    assert value(samples, "gateway_config_reloads_total", result="failed") == 0
    metrics.config_reload(True)
    metrics.config_reload(False)
    metrics.config_reload(True)
    samples = scrape(metrics)
    assert value(samples, "gateway_config_reloads_total", result="ok") == 2
    assert value(samples, "gateway_config_reloads_total", result="failed") == 1


def test_config_info_holds_only_the_current_digest() -> None:
    metrics = GatewayMetrics()
    metrics.config_loaded("aaa111", "0.1.0", 1_700_000_000.5)
    samples = scrape(metrics)
    assert label_sets(samples, "gateway_config_info") == [{"digest": "aaa111", "version": "0.1.0"}]
    assert value(samples, "gateway_config_info", digest="aaa111", version="0.1.0") == 1
    assert value(samples, "gateway_config_loaded_timestamp_seconds") == 1_700_000_000.5

    metrics.config_loaded("bbb222", "0.1.0", 1_700_000_100.0)
    samples = scrape(metrics)
    assert label_sets(samples, "gateway_config_info") == [{"digest": "bbb222", "version": "0.1.0"}]
    assert value(samples, "gateway_config_info", digest="bbb222", version="0.1.0") == 1
    assert value(samples, "gateway_config_loaded_timestamp_seconds") == 1_700_000_100.0

    metrics.config_loaded("bbb222", "0.1.0", 1_700_000_200.0)  # the same config again
    metrics.config_loaded("aaa111", "0.1.0", 1_700_000_300.0)  # and back
    samples = scrape(metrics)
    assert label_sets(samples, "gateway_config_info") == [{"digest": "aaa111", "version": "0.1.0"}]
    assert value(samples, "gateway_config_info", digest="aaa111", version="0.1.0") == 1


def test_no_config_no_info_series() -> None:
    samples = scrape(GatewayMetrics())
    assert label_sets(samples, "gateway_config_info") == []


def test_instances_have_their_own_registries() -> None:
    first, second = GatewayMetrics(), GatewayMetrics()  # two apps in one process: no collision
    observe(first)
    assert value(scrape(first), "gateway_requests_total", **MP, status="200") == 1
    assert value(scrape(second), "gateway_requests_total", **MP, status="200") is None
    assert not any(name.startswith("gateway_") for name in REGISTRY._names_to_collectors)


def test_every_metric_is_prefixed_and_rendered_as_text_0_0_4() -> None:
    metrics = GatewayMetrics()
    observe(metrics, stream=True, ttfb_s=0.1)
    metrics.retry("p", "m")
    metrics.fallback("m")
    metrics.cooldown("p", "m")
    metrics.rate_limited("k", "tokens")
    metrics.config_loaded("d", "v", 1.0)
    body, content_type = metrics.render()
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    names = {name for name, _labels in parse(body)}
    assert all(name.startswith("gateway_") for name in names)
    families = {
        "gateway_requests_total",
        "gateway_request_duration_seconds_count",
        "gateway_upstream_duration_seconds_count",
        "gateway_overhead_seconds_count",
        "gateway_time_to_first_byte_seconds_count",
        "gateway_tokens_total",
        "gateway_retries_total",
        "gateway_fallbacks_total",
        "gateway_cooldowns_total",
        "gateway_rate_limited_total",
        "gateway_config_reloads_total",
        "gateway_config_info",
        "gateway_config_loaded_timestamp_seconds",
    }
    assert families <= names


def test_the_hot_path_binds_labels_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the first request of a label set, observe_request and rate_limited reuse the bound
    children: no `.labels()` (validation, formatting, a lock) per request."""
    metrics = GatewayMetrics()
    observe(metrics, stream=True, ttfb_s=0.1)
    metrics.rate_limited("team-alpha", "requests")

    def no_labels(*_args: object, **_kwargs: object) -> None:
        raise AssertionError(".labels() on the hot path")

    monkeypatch.setattr(Counter, "labels", no_labels)
    monkeypatch.setattr(Histogram, "labels", no_labels)
    for _ in range(3):
        observe(metrics, stream=True, ttfb_s=0.1)
        metrics.rate_limited("team-alpha", "requests")
    monkeypatch.undo()
    samples = scrape(metrics)
    assert value(samples, "gateway_requests_total", **MP, status="200") == 4
    assert value(samples, "gateway_rate_limited_total", key="team-alpha", kind="requests") == 4
