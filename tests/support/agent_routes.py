"""The three routes the agent-client tests (Codex, the AI SDK) drive through the gateway: to an
upstream that speaks the Responses API (relayed), to a chat-only one and to an Anthropic one (both
translated), each a scripted fake named by its fixture."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.support.fake_upstreams import ANTHROPIC_MODEL, OPENAI_MODEL, FakeUpstream
from tests.support.routes import ANTHROPIC_KEY, CLIENT_KEY, OPENAI_KEY


@dataclass(frozen=True)
class Route:
    """A gateway alias, the provider behind it and what that provider's fake must be sent."""

    alias: str
    fake: str  # fixture name
    dialect: str
    path: str
    upstream_model: str
    base_path: str  # after the fake's URL in the provider's base_url
    api_key: str


ROUTES = {
    "responses-native": Route(
        "gw-responses", "scripted_responses", "openai", "/v1/responses", OPENAI_MODEL, "/v1", OPENAI_KEY
    ),
    "chat-only": Route(
        "gw-chat", "scripted_chat", "deepseek", "/v1/chat/completions", OPENAI_MODEL, "/v1", OPENAI_KEY
    ),
    "anthropic": Route(
        "gw-anthropic", "scripted_anthropic", "anthropic", "/v1/messages", ANTHROPIC_MODEL, "", ANTHROPIC_KEY
    ),
}


def routes_config(key_name: str, fakes: Mapping[str, FakeUpstream]) -> dict[str, Any]:
    """routes.yaml for ROUTES (`fakes`: fixture name -> the running fake), with one gateway key."""
    return {
        "log": {"level": "warning", "format": "json"},
        "auth": {"keys": [{"name": key_name, "key": CLIENT_KEY}]},
        "providers": {
            name: {
                "dialect": route.dialect,
                "base_url": f"{fakes[route.fake].url}{route.base_path}",
                "api_key": route.api_key,
            }
            for name, route in ROUTES.items()
        },
        "models": {
            route.alias: [{"provider": name, "model": route.upstream_model}] for name, route in ROUTES.items()
        },
    }
