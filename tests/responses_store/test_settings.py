"""`responses:` in routes.yaml: defaults, durations, and mistakes reported like every other section's."""

from __future__ import annotations

import pytest

from gateway.config.loader import config_from_text, duration_seconds
from gateway.config.model import ResponsesSettings
from gateway.config.problems import ConfigError

BASE = """
providers: {mock: {dialect: mock, transport: mock}}
models:
  mock: [{provider: mock, model: m}]
"""


def load(section: str) -> ResponsesSettings:
    return config_from_text(BASE + section, "routes.yaml", {"REDIS_URL": "redis://:pw@r:6379/0"}).responses


def problems(section: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(section)
    return caught.value.problems


def test_defaults_are_a_bounded_memory_store_for_30_days() -> None:
    assert load("") == ResponsesSettings("memory", None, 30 * 86400.0, 10_000, 128 * 1024 * 1024)


def test_a_redis_store_with_its_url_from_the_environment() -> None:
    settings = load("responses: {store: redis, redis_url: '${REDIS_URL}', ttl: 12h}")
    assert (settings.store, settings.redis_url, settings.ttl) == ("redis", "redis://:pw@r:6379/0", 43200.0)
    assert "pw" not in repr(settings)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90.0), (0.5, 0.5), ("45s", 45.0), ("90m", 5400.0), ("1.5h", 5400.0), ("30d", 2592000.0)],
)
def test_durations(value: float | str, seconds: float) -> None:
    assert duration_seconds(value) == seconds


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("responses: {store: disk}", "responses.store: expected one of 'memory', 'redis', 'none'"),
        ("responses: {store: redis}", "responses: missing required key 'redis_url'"),
        ("responses: {ttl: 30 days}", "responses.ttl"),
        ("responses: {ttl: 0}", "responses.ttl"),
        ("responses: {max_entries: 0}", "responses.max_entries: 0 is less than the minimum of 1"),
        ("responses: {max_entrys: 5}", "responses: unknown key 'max_entrys' (did you mean 'max_entries'?)"),
    ],
)
def test_mistakes_name_where_they_are(section: str, expected: str) -> None:
    found = problems(section)
    assert any(problem.startswith(expected) for problem in found), found
