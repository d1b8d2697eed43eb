"""`cache:` and `models.<alias>.cache` in routes.yaml: read into frozen settings, mistakes refused at
load with the path that is wrong."""

from __future__ import annotations

import pytest

from gateway.config.loader import config_from_text
from gateway.config.model import CachePolicy, CacheSettings, GatewayConfig
from gateway.config.problems import ConfigError

PROVIDERS = "providers: {mock: {dialect: mock, transport: mock}}\n"


def load(text: str) -> GatewayConfig:
    return config_from_text(PROVIDERS + text, "routes.yaml", {})


def problems(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(text)
    return str(info.value)


@pytest.mark.parametrize(
    ("ttl", "seconds"),
    [("90", 90.0), ("2.5", 2.5), ("90s", 90.0), ("10m", 600.0), ("2h", 7200.0), ("1d", 86400.0)],
)
def test_ttl_in_seconds_or_with_its_unit(ttl: str, seconds: float) -> None:
    config = load(f"models: {{a: {{provider: mock, model: m, cache: {{ttl: {ttl}}}}}}}\n")
    policy = config.models["a"].cache
    assert isinstance(policy, CachePolicy) and policy.ttl == seconds


def test_on_a_route_mapping_too_and_off_by_default() -> None:
    config = load(
        "models:\n"
        "  a: {targets: [{provider: mock, model: m}], cache: {ttl: 60}}\n"
        "  b: [{provider: mock, model: m}]\n"
        "  c: {provider: mock, model: m}\n"
    )
    assert config.models["a"].cache is not None
    assert config.models["b"].cache is None and config.models["c"].cache is None
    assert config.cache == CacheSettings()


def test_the_scope_changes_with_the_targets_not_with_their_order() -> None:
    def scope(targets: str) -> str:
        policy = load(f"models: {{a: {{targets: {targets}, cache: {{ttl: 60}}}}}}\n").models["a"].cache
        assert policy is not None
        return policy.scope

    one = "[{provider: mock, model: m}, {provider: mock, model: n}]"
    assert scope(one) == scope("[{provider: mock, model: n}, {provider: mock, model: m}]")
    assert scope(one) != scope("[{provider: mock, model: m}, {provider: mock, model: o}]")


def test_global_settings() -> None:
    config = load(
        "cache: {store: redis, redis_url: 'redis://r:6379/1', max_entries: 5, max_bytes: 1000,\n"
        "        max_entry_bytes: 10}\n"
        "models: {a: [{provider: mock, model: m}]}\n"
    )
    assert config.cache == CacheSettings("redis", "redis://r:6379/1", 5, 1000, 10)
    assert "r:6379" not in repr(config.cache)  # the URL may carry a password


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models: {a: {provider: mock, model: m, cache: {ttl: 0}}}\n", "models.a"),
        ("models: {a: {provider: mock, model: m, cache: {ttl: 10x}}}\n", "models.a"),
        ("models: {a: {provider: mock, model: m, cache: {}}}\n", "models.a"),
        ("models: {a: {provider: mock, model: m, cache: {ttl: 5, size: 3}}}\n", "models.a"),
        (
            "models: {a: [{provider: mock, model: m, cache: {ttl: 5}}]}\n",
            "models.a[0].cache: the response cache is set on the alias itself",
        ),
        (
            "models: {a: {targets: [{targets: [{provider: mock, model: m}], cache: {ttl: 5}}]}}\n",
            "models.a.targets[0].cache: the response cache is set on the alias itself",
        ),
        ("cache: {store: redis}\nmodels: {a: [{provider: mock, model: m}]}\n", "redis_url"),
        ("cache: {max_entries: 0}\nmodels: {a: [{provider: mock, model: m}]}\n", "cache.max_entries"),
        ("cache: {store: disk}\nmodels: {a: [{provider: mock, model: m}]}\n", "cache.store"),
    ],
)
def test_mistakes_are_refused_at_load(text: str, expected: str) -> None:
    assert expected in problems(text)
