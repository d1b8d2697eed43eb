"""Config mistakes get exact messages: the YAML path, what is wrong, and a "did you mean" where a close
name exists; the branch of a `oneOf` the user meant is the one reported; nothing secret is echoed."""

from __future__ import annotations

import pytest

from gateway.config.loader import config_from_text
from gateway.config.problems import ConfigError, did_you_mean
from gateway.engine.registry import build_registry

BASE = """
providers:
  mock:   {dialect: mock, transport: mock}
  openai: {dialect: openai, base_url: "https://api.openai.com/v1", api_key: sk-test}
models:
  mock: {provider: mock, model: m}
"""

# (what the models/providers section adds, the exact problems expected)
CASES: dict[str, tuple[str, list[str]]] = {
    "typo in a target of a list": (
        "  gpt: [{provider: mock, modle: m}]",
        ["models.gpt[0]: unknown key 'modle' (did you mean 'model'?)"],
    ),
    "typo in a single target": (
        "  gpt: {provider: mock, model: m, wieght: 2}",
        ["models.gpt: unknown key 'wieght' (did you mean 'weight'?)"],
    ),
    "typo in a route": (
        "  gpt: {stratgy: fallback, targets: [{provider: mock, model: m}]}",
        ["models.gpt: unknown key 'stratgy' (did you mean 'strategy'?)"],
    ),
    "typo in a target inside a route": (
        "  gpt: {strategy: loadbalance, targets: [{provider: mock, model: m}, {provider: mock, modle: n}]}",
        ["models.gpt.targets[1]: unknown key 'modle' (did you mean 'model'?)"],
    ),
    "typo in a nested route": (
        "  gpt: [{targets: [{provider: mock, model: m, wieght: 1}]}]",
        ["models.gpt[0].targets[0]: unknown key 'wieght' (did you mean 'weight'?)"],
    ),
    "a target missing its model": (
        "  gpt: [{provider: mock}]",
        ["models.gpt[0]: missing required key 'model'"],
    ),
    "an unknown key with no close name": (
        "  gpt: {provider: mock, model: m, colour: blue}",
        ["models.gpt: unknown key 'colour' (allowed: cache, model, provider, weight)"],
    ),
    "enum value": (
        "  gpt: {strategy: loadbalancer, targets: [{provider: mock, model: m}]}",
        ["models.gpt.strategy: expected one of 'fallback', 'loadbalance' (did you mean 'loadbalance'?)"],
    ),
    "unknown provider": (
        "  gpt: {provider: opnai, model: m}",
        ["models.gpt.provider: unknown provider 'opnai' (did you mean 'openai'?)"],
    ),
    "unknown provider, no close name": (
        "  gpt: {provider: azure, model: m}",
        ["models.gpt.provider: unknown provider 'azure' (defined: mock, openai)"],
    ),
    "an empty mapping: no key says which form": (
        "  gpt: {}",
        ["models.gpt: needs 'provider' and 'model', or 'targets'"],
    ),
    "no key of any form": (
        "  gpt: [{name: x}]",
        ["models.gpt[0]: needs 'provider' and 'model', or 'targets' (unknown: 'name')"],
    ),
    "a route of the wrong type": (
        "  gpt: 5",
        ["models.gpt: expected a mapping or a list, got an integer"],
    ),
}


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_text(text, "routes.yaml", {})
    return info.value.problems


@pytest.mark.parametrize("case", list(CASES))
def test_each_mistake_gets_its_exact_message(case: str) -> None:
    added, expected = CASES[case]
    assert problems(BASE + added + "\n") == expected


# (a replacement in BASE, the exact problems expected)
EDITS: dict[str, tuple[tuple[str, str], list[str]]] = {
    "top-level typo": (
        ("models:", "modles:"),
        ["(top level): unknown key 'modles' (did you mean 'models'?)"],
    ),
    "provider key typo": (
        ("transport: mock}", "transprot: mock}"),
        [
            "providers.mock: missing required key 'base_url'",
            "providers.mock: unknown key 'transprot' (did you mean 'transport'?)",
        ],
    ),
    "transport value typo": (
        ("transport: mock}", "transport: mokc}"),
        [
            "providers.mock.transport: expected one of 'http', 'mock' (did you mean 'mock'?)",
            "providers.mock: missing required key 'base_url'",  # true of any transport but mock
        ],
    ),
    "a proxy that is not an HTTP URL": (
        ("api_key: sk-test}", 'api_key: sk-test, proxy: "socks5://p:1080"}'),
        ["providers.openai.proxy: 'socks5://p:1080' does not match '^https?://'"],
    ),
    "a proxy URL's password is never echoed": (
        ("api_key: sk-test}", 'api_key: sk-test, proxy: "socks5://me:hunter2@p:1080"}'),
        ["providers.openai.proxy: 'socks5://me:***@p:1080' does not match '^https?://'"],
    ),
    "a proxy of the wrong type": (
        ("api_key: sk-test}", "api_key: sk-test, proxy: 5}"),
        ["providers.openai.proxy: expected a string or false, got an integer"],
    ),
}


@pytest.mark.parametrize("case", list(EDITS))
def test_each_edit_gets_its_exact_message(case: str) -> None:
    (old, new), expected = EDITS[case]
    assert old in BASE
    assert problems(BASE.replace(old, new, 1)) == expected


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ("[{name: a}]", "auth.keys[0]: needs 'hash' or 'key'"),
        (
            "[{name: a, key: sk-live-0123456789abcdef, hash: 'sha256:" + "0" * 64 + "'}]",
            "auth.keys[0]: give 'hash' or 'key', not both",
        ),
    ],
)
def test_a_gateway_key_needs_exactly_one_form_and_is_never_echoed(keys: str, expected: str) -> None:
    found = problems(BASE + f"auth: {{keys: {keys}}}\n")
    assert found == [expected]
    assert not any("sk-live" in p for p in found)


def test_aws_static_keys_and_a_profile_together_are_named_without_echoing_the_secret() -> None:
    text = BASE.replace(
        "  mock:   {dialect: mock, transport: mock}",
        "  mock:   {dialect: mock, transport: mock, aws: {access_key_id: AKIA1, "
        "secret_access_key: very-secret-value, profile: prod}}",
    )
    found = problems(text)
    assert found == ["providers.mock.aws: 'access_key_id' and 'profile' cannot be used together"]


@pytest.mark.parametrize(
    ("word", "choices", "expected"),
    [
        ("modle", ["model", "provider", "weight"], "model"),
        ("wieght", ["model", "provider", "weight"], "weight"),
        ("colour", ["model", "provider", "weight"], None),
        ("opnai", ["mock", "openai"], "openai"),
    ],
)
def test_did_you_mean(word: str, choices: list[str], expected: str | None) -> None:
    assert did_you_mean(word, choices) == expected


def test_an_unknown_dialect_gets_a_did_you_mean() -> None:
    config = config_from_text(BASE.replace("dialect: openai", "dialect: opnai"), "routes.yaml", {})
    with pytest.raises(ConfigError) as info:
        build_registry(config)
    assert info.value.problems == [
        "providers.openai.dialect: unknown dialect 'opnai' (did you mean 'openai'?)"
    ]


def test_a_typo_in_a_dialect_of_the_dialects_section() -> None:
    text = BASE + "dialects:\n  mine:\n    extends: openai\n    operatoins: {}\n"
    config = config_from_text(text, "routes.yaml", {})
    with pytest.raises(ConfigError) as info:
        build_registry(config)
    assert info.value.problems == ["dialects.mine: unknown key 'operatoins' (did you mean 'operations'?)"]
