"""Every shipped dialect names its provider family for traces (`gen_ai_provider`), in the GenAI
conventions' spelling where they have one: data, looked up by nobody's Python."""

from __future__ import annotations

import pytest

from gateway.engine.dialect_sources import resolve_dialects

# gen_ai.provider.name's well-known values (OpenTelemetry semantic conventions, GenAI registry)
WELL_KNOWN = {
    "anthropic",
    "aws.bedrock",
    "azure.ai.inference",
    "azure.ai.openai",
    "cohere",
    "deepseek",
    "gcp.gemini",
    "gcp.gen_ai",
    "gcp.vertex_ai",
    "groq",
    "ibm.watsonx.ai",
    "mistral_ai",
    "openai",
    "perplexity",
    "x_ai",
}
OWN_NAMES = {"mock", "ollama", "vllm"}  # no well-known value: the conventions ask for a custom one

DIALECTS = resolve_dialects({})


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_each_shipped_dialect_names_its_family(name: str) -> None:
    provider = DIALECTS[name][1].get("gen_ai_provider")
    assert provider in WELL_KNOWN | OWN_NAMES, f"{name}: gen_ai_provider {provider!r}"


def test_a_dialect_extending_another_keeps_its_family_unless_it_says_otherwise() -> None:
    assert DIALECTS["azure-openai-v1"][1]["gen_ai_provider"] == "azure.ai.openai"
    assert DIALECTS["mock"][1]["gen_ai_provider"] == "mock"
