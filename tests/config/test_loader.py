"""routes.yaml loading: interpolation, validation with paths, provider disabling, references."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.loader import config_from_text, load_config
from gateway.config.problems import ConfigError

GOOD = """
listen: {host: 0.0.0.0, port: 9000}
providers:
  openai: {dialect: openai, base_url: "https://api.openai.com/v1/", api_key: "${OPENAI_API_KEY}"}
  local:  {dialect: openai, base_url: "${LOCAL_URL:-http://127.0.0.1:8000/v1}"}
  mock:   {dialect: mock, transport: mock}
models:
  gpt: [{provider: openai, model: gpt-4o}]
  local: {provider: local, model: llama}
  mock: [{provider: mock, model: m}]
"""


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_text(text, "routes.yaml", env or {})
    return info.value.problems


def test_good_config_loads_frozen_with_defaults_and_interpolation() -> None:
    config = config_from_text(GOOD, "routes.yaml", {"OPENAI_API_KEY": "sk-1"})
    assert (config.listen.host, config.listen.port) == ("0.0.0.0", 9000)
    assert config.providers["openai"].api_key == "sk-1"
    assert config.providers["openai"].base_url == "https://api.openai.com/v1"  # trailing slash removed
    assert config.providers["local"].base_url == "http://127.0.0.1:8000/v1"
    assert [t.model for t in config.models["local"].targets()] == ["llama"]
    assert config.warnings == ()
    with pytest.raises(AttributeError):
        config.listen.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.providers["x"] = config.providers["openai"]  # type: ignore[index]


def test_missing_provider_variable_disables_that_provider_with_a_warning() -> None:
    config = config_from_text(GOOD, "routes.yaml", {})
    assert config.providers["openai"].disabled_reason == "environment variable OPENAI_API_KEY is not set"
    assert config.warnings == (
        "provider 'openai' is disabled: environment variable OPENAI_API_KEY is not set",
    )


def test_missing_variable_elsewhere_is_an_error_naming_it() -> None:
    text = GOOD.replace("port: 9000", 'port: "${PORT}"')
    found = problems(text)
    assert "listen.port: environment variable PORT is not set" in found


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("port: 9000", "port: nine"), "listen.port: expected an integer, got a string"),
        (
            ("dialect: mock, transport: mock", "dialect: mock, transport: carrier-pigeon"),
            "providers.mock.transport: expected one of 'http', 'mock'",
        ),
        (
            ("local:  {dialect: openai, base_url", "local:  {dialect: openai, colour: blue, base_url"),
            "providers.local: unknown key 'colour'",
        ),
        (
            ("gpt: [{provider: openai, model: gpt-4o}]", "gpt: [{provider: azure, model: gpt-4o}]"),
            "models.gpt[0].provider: unknown provider 'azure' (defined: local, mock, openai)",
        ),
        (
            (
                'local:  {dialect: openai, base_url: "${LOCAL_URL:-http://127.0.0.1:8000/v1}"}',
                "local:  {dialect: openai}",
            ),
            "providers.local: missing required key 'base_url'",
        ),
        (
            ("mock: [{provider: mock, model: m}]", "mock: [{provider: mock}]"),
            "models.mock[0]: missing required key 'model'",
        ),
    ],
)
def test_schema_problems_name_the_yaml_path(edit: tuple[str, str], expected: str) -> None:
    old, new = edit
    assert old in GOOD
    found = problems(GOOD.replace(old, new), {"OPENAI_API_KEY": "k"})
    assert any(problem.startswith(expected) for problem in found), found


def test_every_problem_is_reported_at_once() -> None:
    text = GOOD.replace("port: 9000", "port: -1").replace("model: llama", "model: 5")
    found = problems(text, {"OPENAI_API_KEY": "k"})
    assert len(found) == 2


def test_yaml_syntax_error_names_line_and_column() -> None:
    found = problems("providers: {a: [\n", {})
    assert len(found) == 1 and "YAML syntax error at line" in found[0]


def test_secret_values_are_never_echoed_in_problems() -> None:
    text = GOOD.replace('api_key: "${OPENAI_API_KEY}"', "api_key: [sk-live-SECRET]")
    found = problems(text, {})
    assert any(p.startswith("providers.openai.api_key") for p in found)
    assert not any("sk-live-SECRET" in p for p in found)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.yaml", {})
    assert "cannot read" in info.value.problems[0]


def test_secret_files_are_read_and_a_missing_one_disables_the_provider(tmp_path: Path) -> None:
    secret = tmp_path / "openai.key"
    secret.write_text("sk-from-file\n")
    text = GOOD.replace('"${OPENAI_API_KEY}"', f'"${{file:{secret}}}"')
    config = config_from_text(text, "routes.yaml", {})
    assert config.providers["openai"].api_key == "sk-from-file"
    secret.unlink()
    config = config_from_text(text, "routes.yaml", {})
    assert config.providers["openai"].disabled_reason == f"file {secret} cannot be read"
