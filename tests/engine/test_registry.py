"""Building the registry: dialect inheritance, user dialects, overrides, and precise errors."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config.loader import config_from_text
from gateway.config.problems import ConfigError
from gateway.engine.registry import Registry, build_registry
from gateway.rules.context import EvalContext


def build(text: str, env: dict[str, str] | None = None) -> Registry:
    return build_registry(config_from_text(text, "routes.yaml", env or {}))


def build_problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build(text)
    return info.value.problems


def request_sent(registry: Registry, alias: str, body: dict[str, Any]) -> Any:
    target = registry.routes[alias].first
    source = {**body, "model": target.model}
    return target.provider.operations["chat"].request.apply(source, EvalContext(request=body))


USER_DIALECT = """
dialects:
  strict-openai:
    extends: openai
    description: An OpenAI-compatible server that rejects unknown fields
    headers: {x-vendor: "yes"}
    operations:
      chat:
        request:
          rename: {seed: random_seed}
          drop: [stream_options, user]
          set: {safe_prompt: "`false`"}
      embeddings: null
providers:
  v: {dialect: strict-openai, base_url: "http://v.test/v1", api_key: k}
models:
  m: [{provider: v, model: vendor-large}]
"""


def test_user_dialect_extends_openai_with_rename_drop_set_and_removed_operation() -> None:
    registry = build(USER_DIALECT)
    provider = registry.routes["m"].first.provider
    assert set(provider.operations) == {"chat", "completions"}
    assert provider.headers["x-vendor"] == "yes"
    assert provider.headers["Authorization"] == "Bearer k"
    sent = request_sent(
        registry, "m", {"model": "m", "messages": [], "seed": 3, "user": "u", "stream_options": {}}
    )
    assert sent == {"model": "vendor-large", "messages": [], "random_seed": 3, "safe_prompt": False}
    assert (
        provider.url(provider.operations["chat"], False, "vendor-large")
        == "http://v.test/v1/chat/completions"
    )


def test_provider_overrides_headers_and_request_after_the_dialect() -> None:
    registry = build("""
providers:
  a:
    dialect: anthropic
    base_url: "https://api.anthropic.com"
    api_key: sk-a
    headers: {anthropic-version: null, anthropic-beta: "tools-2024"}
    request: {set: {max_tokens: "max_tokens || `8192`"}, drop: [metadata]}
models:
  c: [{provider: a, model: claude}]
""")
    provider = registry.routes["c"].first.provider
    assert "anthropic-version" not in provider.headers
    assert provider.headers["anthropic-beta"] == "tools-2024"
    assert provider.headers["x-api-key"] == "sk-a"
    sent = request_sent(
        registry, "c", {"model": "c", "messages": [{"role": "user", "content": "x"}], "user": "u"}
    )
    assert sent["max_tokens"] == 8192
    assert "metadata" not in sent


def test_no_api_key_means_no_auth_header() -> None:
    registry = build("""
providers: {local: {dialect: openai, base_url: "http://127.0.0.1:8000/v1"}}
models: {m: [{provider: local, model: x}]}
""")
    assert "Authorization" not in registry.routes["m"].first.provider.headers


def test_disabled_provider_makes_its_models_unavailable_with_the_reason() -> None:
    registry = build("""
providers:
  o: {dialect: openai, base_url: "https://api.openai.com/v1", api_key: "${OPENAI_API_KEY}"}
  mock: {dialect: mock, transport: mock}
models:
  gpt: [{provider: o, model: gpt-4o}]
  mock: [{provider: mock, model: m}]
""")
    assert list(registry.routes) == ["mock"]
    assert "OPENAI_API_KEY is not set" in registry.unavailable["gpt"]
    assert b'"id":"mock"' in registry.models_body and b"gpt" not in registry.models_body


@pytest.mark.parametrize(
    ("dialect_yaml", "expected"),
    [
        ("{extends: nowhere}", "dialects.d.extends: unknown dialect 'nowhere'"),
        ("{extends: d}", "dialects.d.extends: circular: d -> d"),
        (
            "{operations: {chat: {path: /x, request: {template: {a: 'b.['}}}}}",
            "dialects.d.operations.chat.request.template.a: invalid JMESPath expression",
        ),
        (
            "{operations: {chat: {path: /x, response: {template: 'nosuch(@)'}}}}",
            "dialects.d.operations.chat.response.template: unknown function nosuch()",
        ),
        (
            "{operations: {chat: {path: /x, response: {template: \"rule('ghost', @)\"}}}}",
            "dialects.d.rules: rule() refers to undefined rules: ghost",
        ),
        ("{operations: {chat: {request: {}}}}", "dialects.d.operations.chat: missing required key 'path'"),
        ("{colour: blue}", "dialects.d: unknown key 'colour'"),
        (
            "{operations: {chat: {path: /x, stream: {events: {e: [{emit: '@', bogus: 1}]}}}}}",
            "dialects.d.operations.chat.stream.events.e[0]: unknown key 'bogus'",
        ),
    ],
)
def test_dialect_problems_name_the_path(dialect_yaml: str, expected: str) -> None:
    found = build_problems(f"""
dialects:
  d: {dialect_yaml}
providers: {{p: {{dialect: d, base_url: "http://x.test"}}}}
models: {{m: [{{provider: p, model: x}}]}}
""")
    assert any(problem.startswith(expected) for problem in found), found


def test_unknown_dialect_on_a_provider_lists_the_known_ones() -> None:
    found = build_problems("""
providers: {p: {dialect: klingon, base_url: "http://x.test"}}
models: {m: [{provider: p, model: x}]}
""")
    assert found[0].startswith("providers.p.dialect: unknown dialect 'klingon' (known: anthropic, ")
    assert ", openai" in found[0]


def test_shipped_dialects_all_compile() -> None:
    registry = build("""
providers:
  o: {dialect: openai, base_url: "http://o.test/v1"}
  a: {dialect: anthropic, base_url: "http://a.test"}
  m: {dialect: mock, transport: mock}
models:
  o: [{provider: o, model: x}]
  a: [{provider: a, model: x}]
  m: [{provider: m, model: x}]
""")
    assert sorted(registry.routes) == ["a", "m", "o"]
