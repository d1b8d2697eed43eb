"""Building the registry: dialect inheritance, user dialects, overrides, precise errors, and how each
provider's requests leave (headers sent explicitly, TLS context, proxy, AWS credentials)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

from gateway import __version__
from gateway.config.loader import config_from_text
from gateway.config.problems import ConfigError
from gateway.engine import registry as registry_module
from gateway.engine.registry import Registry, build_registry
from gateway.rules.context import EvalContext
from gateway.upstream.egress import DIRECT, ProxyEndpoint
from gateway.upstream.signing import SigV4Signer


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


# ---- how a provider's requests leave: headers sent explicitly, TLS, proxy, AWS credentials -------------


def test_user_agent_and_accept_encoding_are_sent_explicitly_and_can_be_overridden() -> None:
    registry = build("""
upstream: {user_agent: "acme-gateway/2"}
providers:
  plain: {dialect: openai, base_url: "http://o.test/v1"}
  own: {dialect: openai, base_url: "http://o.test/v1", headers: {User-Agent: mine, Accept-Encoding: gzip}}
models:
  plain: [{provider: plain, model: x}]
  own: [{provider: own, model: x}]
""")
    plain = registry.routes["plain"].first.provider.headers
    assert (plain["User-Agent"], plain["Accept-Encoding"]) == ("acme-gateway/2", "identity")
    own = registry.routes["own"].first.provider.headers
    assert (own["User-Agent"], own["Accept-Encoding"]) == ("mine", "gzip")
    default = build("""
providers: {p: {dialect: openai, base_url: "http://o.test/v1"}}
models: {m: [{provider: p, model: x}]}
""")
    assert default.routes["m"].first.provider.headers["User-Agent"] == f"llm-gateway/{__version__}"


PROXIED = """
providers:
  env: {dialect: openai, base_url: "https://api.example.com/v1"}
  inside: {dialect: openai, base_url: "https://llm.corp.internal/v1"}
  local: {dialect: openai, base_url: "http://localhost:8000/v1"}
  direct: {dialect: openai, base_url: "https://api.example.com/v1", proxy: false}
  own: {dialect: openai, base_url: "https://api.example.com/v1", proxy: "http://own:pw-0123456789@own.proxy:8080"}
  mock: {dialect: mock, transport: mock}
models:
  env: [{provider: env, model: x}]
  inside: [{provider: inside, model: x}]
  local: [{provider: local, model: x}]
  direct: [{provider: direct, model: x}]
  own: [{provider: own, model: x}]
  mock: [{provider: mock, model: x}]
"""


def test_the_proxy_is_decided_when_the_registry_is_built() -> None:
    environ = {"HTTPS_PROXY": "http://corp:env-pass-0123456@proxy.corp:3128", "NO_PROXY": ".corp.internal"}
    registry = build_registry(config_from_text(PROXIED, "routes.yaml", {}), environ)
    proxies = {alias: route.first.provider.egress.proxy for alias, route in registry.routes.items()}
    assert proxies["env"] == ProxyEndpoint("http", "proxy.corp", 3128, "Basic Y29ycDplbnYtcGFzcy0wMTIzNDU2")
    assert proxies["own"] is not None and proxies["own"].label == "own.proxy:8080"
    assert proxies["inside"] is proxies["local"] is proxies["direct"] is proxies["mock"] is None
    # the proxies' passwords are secrets the redactor knows, the environment's included
    assert registry.redactor.redact("env-pass-0123456 pw-0123456789") == "[REDACTED] [REDACTED]"
    without = build_registry(config_from_text(PROXIED, "routes.yaml", {}), {})
    assert without.routes["env"].first.provider.egress is DIRECT


def test_an_unusable_proxy_in_the_environment_is_a_problem() -> None:
    config = config_from_text(PROXIED, "routes.yaml", {})
    with pytest.raises(ConfigError) as info:
        build_registry(config, {"HTTPS_PROXY": "socks5://proxy.corp:1080"})
    assert info.value.problems[0].startswith(
        "providers.env.proxy: HTTPS_PROXY (from the environment): unsupported proxy scheme 'socks5'"
    )


def test_tls_settings_build_a_context_when_the_registry_is_built(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    registry = build(f"""
providers:
  private: {{dialect: openai, base_url: "https://llm.corp/v1", tls: {{ca_file: "{ca_file}"}}}}
  lab: {{dialect: openai, base_url: "https://lab.test/v1", tls: {{verify: false}}}}
  public: {{dialect: openai, base_url: "https://api.example.com/v1"}}
models:
  private: [{{provider: private, model: x}}]
  lab: [{{provider: lab, model: x}}]
  public: [{{provider: public, model: x}}]
""")
    private = registry.routes["private"].first.provider.egress.ssl_context
    assert private is not None and private.verify_mode == ssl.CERT_REQUIRED
    lab = registry.routes["lab"].first.provider.egress.ssl_context
    assert lab is not None and (lab.verify_mode, lab.check_hostname) == (ssl.CERT_NONE, False)
    assert registry.routes["public"].first.provider.egress.ssl_context is None  # the shared default
    tls_warnings = [w for w in registry.config.warnings if not w.startswith("no price for ")]  # (model x)
    assert tls_warnings == [
        "providers.lab.tls.verify is false: the upstream's certificate and host name are not checked",
    ]


def test_an_unreadable_tls_file_is_a_problem_with_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    found = build_problems(f"""
providers: {{p: {{dialect: openai, base_url: "https://x.test", tls: {{ca_file: "{missing}"}}}}}}
models: {{m: [{{provider: p, model: x}}]}}
""")
    assert found == [f"providers.p.tls.ca_file: cannot read {missing}: No such file or directory"]


@pytest.mark.parametrize(
    ("aws", "chain", "profile"),
    [
        ("", True, None),  # no aws and no api_key: the standard chain
        ("aws: {}", True, None),
        ("aws: {profile: team}", True, "team"),
        ("aws: {access_key_id: AKIASTATIC, secret_access_key: s3cret}", False, None),
    ],
)
def test_sigv4_credentials_static_or_from_the_chain_without_io_at_build(
    monkeypatch: pytest.MonkeyPatch, aws: str, chain: bool, profile: str | None
) -> None:
    profiles: list[str | None] = []
    monkeypatch.setattr(
        registry_module, "botocore_chain", lambda name: profiles.append(name) or (lambda: None)
    )
    registry = build(f"""
providers:
  b:
    dialect: bedrock
    base_url: "https://bedrock-runtime.us-east-1.amazonaws.com"
    {aws}
models: {{m: [{{provider: b, model: anthropic.claude}}]}}
""")
    signer = registry.routes["m"].first.provider.signer
    assert isinstance(signer, SigV4Signer)
    assert (signer._chain is not None, profiles) == (chain, [profile] if chain else [])
