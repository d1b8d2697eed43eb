"""routes.yaml files for integration tests, pointing providers at the fake upstreams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

OPENAI_KEY = "sk-upstream-test"
ANTHROPIC_KEY = "sk-ant-upstream-test"
CLIENT_KEY = "sk-client-key-that-must-not-leak"

# aliases clients send -> the upstream model names the fakes must see
OPENAI_ALIAS = "gpt-test"
OPENAI_UPSTREAM_MODEL = "gpt-4o-2024-08-06"
EMBED_ALIAS = "embed-test"
EMBED_UPSTREAM_MODEL = "text-embedding-3-small"
INSTRUCT_ALIAS = "instruct-test"
INSTRUCT_UPSTREAM_MODEL = "gpt-3.5-turbo-instruct"
ANTHROPIC_ALIAS = "claude-test"
ANTHROPIC_UPSTREAM_MODEL = "claude-sonnet-4-5-20250929"
MOCK_ALIAS = "mock"
SLASH_ALIAS = "acme/gpt-test"  # an alias with a slash, as in "openai/gpt-4o"
UNREACHABLE_ALIAS = "gpt-unreachable"
SLOW_ALIAS = "gpt-slow"
SLOW_TIMEOUT = 0.5


def routes(
    openai_url: str,
    anthropic_url: str,
    *,
    unreachable_url: str | None = None,
    extra_models: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The test configuration as a mapping (fakes' base URLs without a trailing slash)."""
    providers: dict[str, Any] = {
        "openai-fake": {"dialect": "openai", "base_url": f"{openai_url}/v1", "api_key": OPENAI_KEY},
        "anthropic-fake": {"dialect": "anthropic", "base_url": anthropic_url, "api_key": ANTHROPIC_KEY},
        "mock": {"dialect": "mock", "transport": "mock"},
        "openai-slow": {
            "dialect": "openai",
            "base_url": f"{openai_url}/v1",
            "api_key": OPENAI_KEY,
            "timeouts": {"total": SLOW_TIMEOUT},
        },
    }
    models: dict[str, Any] = {
        OPENAI_ALIAS: [{"provider": "openai-fake", "model": OPENAI_UPSTREAM_MODEL}],
        EMBED_ALIAS: [{"provider": "openai-fake", "model": EMBED_UPSTREAM_MODEL}],
        INSTRUCT_ALIAS: [{"provider": "openai-fake", "model": INSTRUCT_UPSTREAM_MODEL}],
        ANTHROPIC_ALIAS: [{"provider": "anthropic-fake", "model": ANTHROPIC_UPSTREAM_MODEL}],
        MOCK_ALIAS: [{"provider": "mock", "model": "mock-1"}],
        SLOW_ALIAS: [{"provider": "openai-slow", "model": OPENAI_UPSTREAM_MODEL}],
        SLASH_ALIAS: [{"provider": "openai-fake", "model": OPENAI_UPSTREAM_MODEL}],
    }
    if unreachable_url is not None:
        providers["unreachable"] = {"dialect": "openai", "base_url": unreachable_url, "api_key": OPENAI_KEY}
        models[UNREACHABLE_ALIAS] = [{"provider": "unreachable", "model": OPENAI_UPSTREAM_MODEL}]
    models.update(extra_models or {})
    return {"log": {"level": "info", "format": "json"}, "providers": providers, "models": models}


def write_routes(path: Path, config: dict[str, Any]) -> Path:
    """Write atomically (a reload never reads a half-written file)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    tmp.replace(path)
    return path
