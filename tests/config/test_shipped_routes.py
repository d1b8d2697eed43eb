"""The shipped routes.yaml serves with no keys, and every commented example in it is valid."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry

ROUTES = Path(__file__).resolve().parents[2] / "routes.yaml"
EXAMPLE_LINE = re.compile(r"^(\s+)# (\s*(?:[\w.-]+:|- ).*)$")


def test_shipped_routes_serve_the_mock_with_no_keys() -> None:
    registry = build_registry(config_from_text(ROUTES.read_text(), str(ROUTES), {}))
    assert list(registry.routes) == ["mock"]
    assert "ANTHROPIC_API_KEY is not set" in registry.unavailable["claude-sonnet"]


def test_every_commented_example_is_valid_when_uncommented() -> None:
    lines = [EXAMPLE_LINE.sub(r"\1\2", line) for line in ROUTES.read_text().splitlines()]
    text = "\n".join(lines)
    assert text.count("dialect:") >= 14  # the examples really were uncommented
    env = {name: "set" for name in re.findall(r"\$\{(\w+)\}", text)}
    registry = build_registry(config_from_text(text, "routes.yaml (examples)", env))
    assert {"gemini-flash", "claude-bedrock", "gpt-4o-azure", "llama"} <= set(registry.routes)
    assert not registry.unavailable
