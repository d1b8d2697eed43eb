"""The dialects' own token counting: where the reference documents a counting API (Anthropic's
count_tokens, Gemini's countTokens, Bedrock's CountTokens), the canonical request becomes the body
that API takes, built by the same rules the chat operation uses, and its answer becomes
`{input_tokens}`. The cases are data (count_tokens_cases.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.engine.dialect import Dialect
from gateway.engine.parameter_fates import compiled_dialects
from gateway.rules.context import EvalContext

CASES: list[dict[str, Any]] = yaml.safe_load(Path(__file__).with_name("count_tokens_cases.yaml").read_text())
COUNTING = {"anthropic", "gemini", "bedrock"}


@pytest.fixture(scope="module")
def shipped() -> dict[str, Dialect]:
    return compiled_dialects()


@pytest.mark.parametrize("case", CASES, ids=[f"{c['dialect']}: {c['description']}" for c in CASES])
def test_count_tokens_case(case: dict[str, Any], shipped: dict[str, Dialect]) -> None:
    operation = shipped[case["dialect"]].operations["count_tokens"].for_model(case["request"]["model"])
    assert operation.path == case["upstream_path"]
    assert operation.stream_path is None and operation.stream is None
    request = case["request"]
    body = operation.request.apply(dict(request), EvalContext(request=request))
    assert body == case["upstream_request"]
    answer = operation.response.apply(case["upstream_response"], EvalContext(request=request))
    assert answer == case["response"]


def test_only_documented_counting_apis_are_declared(shipped: dict[str, Dialect]) -> None:
    """Every other dialect is answered with the local estimate (gateway/tokens/)."""
    assert {name for name, dialect in shipped.items() if "count_tokens" in dialect.operations} == COUNTING
