"""The parameter matrix: every request parameter has a probe, no shipped dialect loses one without a
word, the README's copy is the generated one, and the engine tells each fate apart."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.engine.dialect import OPERATIONS, Dialect, compile_dialect
from gateway.engine.parameter_fates import (
    Probe,
    compiled_dialects,
    failures,
    fate_of,
    load_probes,
    markdown,
    parameter_matrix,
    schema_parameters,
    unprobed,
)

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"<!-- parameter-matrix:start -->\n(.*?)<!-- parameter-matrix:end -->", re.S)
CHAT_BASE = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture(scope="module")
def shipped() -> dict[str, Dialect]:
    return compiled_dialects()


@pytest.fixture(scope="module")
def matrix(shipped: dict[str, Dialect]) -> Any:
    return parameter_matrix(shipped)


def _fate(matrix: Any, op: str, dialect: str, label: str) -> str:
    fates = [fate.fate for probe, fate in matrix[op][dialect] if probe.label == label and fate is not None]
    assert len(fates) == 1, f"{label!r}: no single probe in {op}"
    return fates[0]


# ---- the matrix over the shipped dialects --------------------------------------------------------------
def test_every_schema_parameter_has_a_probe() -> None:
    assert unprobed(load_probes()) == []


def test_no_shipped_dialect_loses_a_parameter_without_a_word(matrix: Any) -> None:
    assert failures(matrix) == []


def test_the_readme_shows_the_generated_matrix(matrix: Any) -> None:
    found = BLOCK.search(README.read_text(encoding="utf-8"))
    assert found is not None, "README.md has no parameter-matrix block"
    assert found.group(1) == markdown(matrix), "README.md's matrix is stale: paste `gateway params` into it"


@pytest.mark.parametrize(
    ("op", "dialect", "label", "fate"),
    [
        # the example: Anthropic gives one answer, and said nothing about n, logprobs, seed
        ("chat", "anthropic", "`n`", "rejected"),
        ("chat", "anthropic", "`logprobs`", "rejected"),
        ("chat", "anthropic", "`top_logprobs`", "rejected"),
        ("chat", "anthropic", "`seed`", "rejected"),
        ("chat", "anthropic", "`presence_penalty`", "rejected"),
        ("chat", "anthropic", "`response_format` json_object", "rejected"),
        ("chat", "anthropic", "`response_format` json_schema", "mapped"),
        ("chat", "anthropic", "`stop` whitespace only", "rejected"),
        ("chat", "anthropic", "`stop`", "mapped"),
        ("chat", "anthropic", "`store`", "ignored"),
        ("chat", "anthropic", "`safety_identifier`", "mapped"),
        ("completions", "anthropic", "`n`", "rejected"),  # the chat operation's limits, through the bridge
        ("completions", "anthropic", "`echo`", "rejected"),  # the bridge's own
        ("chat", "openai", "`max_tokens` (o3)", "mapped"),
        ("chat", "openai", "`temperature` (o3)", "rejected"),
        ("chat", "openai", "`stop` (o3)", "rejected"),
        ("chat", "azure-openai", "`logprobs` (o3)", "rejected"),
        ("chat", "groq", "`temperature` (o3)", "passed"),  # no OpenAI reasoning models there
        ("chat", "gemini", "`stream`", "mapped"),  # the stream path, the body unchanged
        ("chat", "deepseek", "`user`", "ignored"),
        ("chat", "mistral", "`seed`", "mapped"),
        ("embeddings", "gemini", "`encoding_format`", "emulated"),
        ("embeddings", "cohere", "`user`", "ignored"),
    ],
)
def test_known_cells(matrix: Any, op: str, dialect: str, label: str, fate: str) -> None:
    assert _fate(matrix, op, dialect, label) == fate


def test_openai_passes_everything_it_is_given(matrix: Any) -> None:
    """OpenAI's own dialect sends every parameter as it came (to a non-reasoning model); `stream`
    also asks for the stream's usage, and `stream_options` is the stream relay's."""
    for op in OPERATIONS:
        for probe, fate in matrix[op]["openai"]:
            assert fate is not None
            if probe.model is not None:
                continue
            expected = {"stream": {"passed", "mapped"}, "stream_options": {"emulated"}}.get(
                probe.param, {"passed"}
            )
            assert fate.fate in expected, (op, probe.label, fate)


def test_declared_ignored_and_emulated_parameters_are_schema_parameters_never_sent(
    shipped: dict[str, Dialect], matrix: Any
) -> None:
    """A declaration names a real parameter (not a typo), and says what the matrix finds: a
    parameter declared ignored or emulated is not in what the upstream gets. (Completions served
    through chat keep the chat operation's declarations.)"""
    for name, dialect in shipped.items():
        for op, operation in dialect.operations.items():
            if op not in OPERATIONS:  # count_tokens: a chat request counted, not a request of its own
                continue
            declared = dict(operation.ignored) | dict(operation.emulated)
            params = set(schema_parameters(op)) | (
                set(schema_parameters("chat")) if op == "completions" else set()
            )
            assert set(declared) <= params, (name, op, set(declared) - params)
            for probe, fate in matrix[op][name]:
                if probe.param in declared and fate is not None:
                    assert fate.fate in ("ignored", "emulated", "rejected"), (name, op, probe.label, fate)


# ---- the engine, on a small dialect ---------------------------------------------------------------------
TOY: dict[str, Any] = {
    "operations": {
        "chat": {
            "path": "/chat",
            "stream_path": "/chat/stream",
            "unsupported": {
                "n": "n > `1`",
                "seed": {"when": "seed != null && model == 'strict'", "why": "strict models"},
            },
            "ignored": {"user": "no such field"},
            "emulated": {"logprobs": "made up by the gateway"},
            "models": {"^big-": {"unsupported": {"stop": "stop != null"}}},
            "request": {
                "template": {
                    "model": "model",
                    "messages": "messages",
                    "temperature": "temperature",
                    "max_length": "max_tokens",
                    "penalty": "presence_penalty && fail('no penalties here')",
                }
            },
        }
    }
}


@pytest.fixture(scope="module")
def toy() -> Dialect:
    return compile_dialect("toy", TOY, "toy")


@pytest.mark.parametrize(
    ("probe", "fate", "detail"),
    [
        (Probe("temperature", 0.5), "passed", "temperature"),
        (Probe("max_tokens", 10), "mapped", "body: max_length"),
        (Probe("stream", True), "mapped", "path /chat/stream"),
        (Probe("n", 2), "rejected", "unsupported: n"),
        (Probe("n", 1), "LOST", "the upstream request is the same with it and without it"),
        (Probe("seed", 7), "LOST", "the upstream request is the same with it and without it"),
        (Probe("seed", 7, model="strict"), "rejected", "unsupported: seed"),  # the upstream model decides
        (Probe("stop", ["x"], model="big-1"), "rejected", "unsupported: stop"),  # an overlay's limits
        (Probe("stop", ["x"]), "LOST", "the upstream request is the same with it and without it"),
        (Probe("user", "u-1"), "ignored", "no such field"),
        (Probe("logprobs", True), "emulated", "made up by the gateway"),
        (Probe("store", True, emulated="kept by the gateway"), "emulated", "kept by the gateway"),
        (Probe("presence_penalty", 1), "rejected", "refused: no penalties here"),
    ],
    ids=lambda value: value.label if isinstance(value, Probe) else None,
)
def test_fates(toy: Dialect, probe: Probe, fate: str, detail: str) -> None:
    found = fate_of(toy.operations["chat"], CHAT_BASE, probe)
    assert (found.fate, found.detail) == (fate, detail)


def test_a_lost_parameter_is_reported_and_shown(toy: Dialect, tmp_path: Path) -> None:
    probes_file = tmp_path / "probes.yaml"
    probes_file.write_text(
        yaml.safe_dump(
            {
                "base": {"chat": CHAT_BASE},
                "inputs": {"chat": ["model", "messages"]},
                "probes": {"chat": {"seed": {"value": 7}, "temperature": [{"value": 0.5}]}},
            }
        )
    )
    matrix = parameter_matrix({"toy": toy}, load_probes(probes_file))
    assert failures(matrix) == [
        "toy chat `seed`: LOST (the upstream request is the same with it and without it)"
    ]
    table = markdown(matrix)
    assert "| `seed` | **LOST** |" in table and "| `temperature` | passed |" in table
    assert "/v1/embeddings" not in table  # no probes there


def test_unprobed_names_missing_and_unknown_probes(tmp_path: Path) -> None:
    probes_file = tmp_path / "probes.yaml"
    probes_file.write_text(
        yaml.safe_dump(
            {
                "base": {"embeddings": {"model": "m", "input": "x"}},
                "inputs": {"embeddings": ["model", "input"]},
                "probes": {"embeddings": {"dimensions": {"value": 8}, "colour": {"value": "red"}}},
            }
        )
    )
    assert unprobed(load_probes(probes_file), ["embeddings"]) == [
        "embeddings: encoding_format has no probe",
        "embeddings: user has no probe",
        "embeddings: colour is not a parameter of the schema",
    ]
