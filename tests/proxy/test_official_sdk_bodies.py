"""The bodies the official openai-python SDK sends in its own tests pass our validation (issue 12, "no
stricter than the spec"): tests/fixtures/openai_sdk_requests.yaml, posted to the gateway serving the
built-in mock under the models they name.

Both the validator alone and the whole app are asked: the validator must not refuse a body, and the app
must answer it (the mock answers them all; a body the mock could not demo would be its 400, after
validation, and would have to be marked here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.proxy.request_validation import RequestValidator
from gateway.reload import RegistryHolder
from tests.support.spec_check import spec_errors

CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "fixtures" / "openai_sdk_requests.yaml").read_text("utf-8")
)
PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions", "embeddings": "/v1/embeddings"}
REPLIES = {"chat": "CreateChatCompletionResponse", "completions": "CreateCompletionResponse"}
REPLIES["embeddings"] = "CreateEmbeddingResponse"
MODELS = sorted({case["body"]["model"] for case in CASES})
ROUTES = yaml.safe_dump(
    {
        "providers": {"mock": {"dialect": "mock", "transport": "mock"}},
        "models": {model: [{"provider": "mock", "model": "mock-1"}] for model in MODELS},
    }
)
IDS = [f"{case['operation']}:{case['name']}" for case in CASES]


def test_the_fixture_holds_the_sdks_edge_values() -> None:
    """The values this test is about (the reason the fixture exists) are still in it."""
    chat = next(
        case["body"] for case in CASES if case["name"] == "test_method_create_with_all_params_overload_1"
    )
    assert (chat["max_tokens"], chat["max_completion_tokens"], chat["top_logprobs"]) == (0, 0, 0)
    assert {case["operation"] for case in CASES} == set(PATHS)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_validator_accepts_the_sdks_bodies(case: dict[str, Any]) -> None:
    RequestValidator().validate(case["operation"], case["body"])


@pytest.fixture
async def client(aiohttp_client: Any) -> TestClient[Any, Any]:
    registry = build_registry(config_from_text(ROUTES, "routes.yaml", {}))
    result: TestClient[Any, Any] = await aiohttp_client(create_app(RegistryHolder("routes.yaml", registry)))
    return result


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_the_gateway_answers_the_sdks_bodies(
    client: TestClient[Any, Any], case: dict[str, Any]
) -> None:
    response = await client.post(PATHS[case["operation"]], json=case["body"])
    text = await response.text()
    assert response.status == 200, text
    # the spec has no schema for a stream's reply, nor for a base64 embedding (its `embedding` is an array)
    if case["body"].get("stream") is not True and case["body"].get("encoding_format") != "base64":
        assert spec_errors(REPLIES[case["operation"]], await response.json()) == []
