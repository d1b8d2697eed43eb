"""YAML as the gateway reads it: duplicate keys are errors, each with its path and lines, every one
at once and alongside the config's other problems; `<<` merges are not duplicates."""

from __future__ import annotations

import pytest

from gateway.config.loader import config_from_text
from gateway.config.problems import ConfigError
from gateway.config.yaml_document import parse_yaml

BASE = """
providers:
  mock:   {dialect: mock, transport: mock}
  openai: {dialect: openai, base_url: "https://api.openai.com/v1", api_key: sk-test}
models:
  mock: {provider: mock, model: m}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_text(text, "routes.yaml", {})
    return info.value.problems


def test_duplicate_keys_are_errors_with_their_lines_and_paths() -> None:
    text = (
        "providers:\n"  # 1
        "  mock: {dialect: mock, transport: mock}\n"  # 2
        "  openai:\n"  # 3
        "    dialect: openai\n"  # 4
        "    api_key: a\n"  # 5
        "    base_url: https://api.openai.com/v1\n"  # 6
        "    api_key: b\n"  # 7
        "models:\n"  # 8
        "  gpt: [{provider: mock, model: m, model: n}]\n"  # 9
        "  mock: {provider: mock, model: m}\n"  # 10
        "  mock: {provider: mock, model: m}\n"  # 11
        "models: {}\n"  # 12
    )
    assert problems(text) == [
        "providers.openai: duplicate key 'api_key' (lines 5 and 7)",
        "models.gpt[0]: duplicate key 'model' (twice on line 9)",
        "models: duplicate key 'mock' (lines 10 and 11)",
        "(top level): duplicate key 'models' (lines 8 and 12)",
        "models: needs at least 1 entry",  # what the last `models` holds: every problem at once
    ]


def test_duplicate_keys_in_the_dialects_section_are_errors() -> None:
    text = BASE + "dialects:\n  mine:\n    extends: openai\n    extends: mock\n"
    assert problems(text) == ["dialects.mine: duplicate key 'extends' (lines 9 and 10)"]


def test_duplicate_keys_in_a_dialect_file_name_the_file() -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml("name: x\nchat:\n  path: /a\n  path: /b\n", "dialects/x.yaml")
    assert info.value.problems == ["dialects/x.yaml: chat: duplicate key 'path' (lines 3 and 4)"]


def test_yaml_merge_keys_are_not_duplicates() -> None:
    text = (
        "providers:\n"
        "  openai: &openai {dialect: openai, base_url: 'https://api.openai.com/v1', api_key: sk-test}\n"
        "  other: {<<: *openai, base_url: 'https://other.example/v1'}\n"
        "models:\n"
        "  gpt: {provider: other, model: m}\n"
    )
    config = config_from_text(text, "routes.yaml", {})
    assert config.providers["other"].base_url == "https://other.example/v1"


def test_a_key_three_times_and_an_aliased_duplicate_reported_once() -> None:
    text = "a: &x {k: 1, k: 2}\nb: *x\nc: *x\nd: 1\nd: 2\nd: 3\n"
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "f.yaml")
    assert info.value.problems == [
        "f.yaml: a: duplicate key 'k' (twice on line 1)",
        "f.yaml: (top level): duplicate key 'd' (lines 4, 5 and 6)",
    ]
