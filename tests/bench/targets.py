"""The benchmark targets and how to start each one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Api:
    """What a target is asked: the client API's path and the request body (its model set per target)."""

    name: str
    path: str
    body_file: Path


CHAT = Api("chat", "/v1/chat/completions", HERE / "chat_request.json")
# the same conversation as chat_request.json, as an Anthropic Messages request (system, user, max_tokens)
MESSAGES = Api("messages", "/v1/messages", HERE / "messages_request.json")
# the same conversation as an OpenAI Responses API request (instructions, one user input item,
# max_output_tokens; store false, as Codex sends it: the figures are the relay's and the translation's,
# not a response store's)
RESPONSES = Api("responses", "/v1/responses", HERE / "responses_request.json")


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # "direct" | "passthrough" | "gateway"
    model: str  # the "model" sent in the request body
    about: str
    workers: int = 0  # > 0: start the gateway with --workers N (the passthrough with --procs N)
    load_only: bool = False  # only the load phase (and its CPU time); no serial, stream or memory phase
    delay_model: str | None = None  # model for the delayed-chunk stream phase (None: no such phase)
    api: Api = CHAT
    # "added" figures are this target's minus the baseline's (a direct target, same API: the mock does the
    # same work for both); ratios divide by the floor's (the bare passthrough asked the same thing)
    baseline: str = "direct"
    floor: str = "passthrough"


TARGETS = {
    t.name: t
    for t in (
        Target("direct", "direct", "gpt-4o", "client -> mock upstream (baseline)", delay_model="gpt-4o"),
        Target(
            "direct-messages",
            "direct",
            "claude-sonnet-4-5",
            "client -> mock /v1/messages (baseline of the *-messages targets)",
            api=MESSAGES,
        ),
        Target(
            "direct-responses",
            "direct",
            "gpt-4o",
            "client -> mock /v1/responses (baseline of the *-responses targets)",
            delay_model="gpt-4o",
            api=RESPONSES,
        ),
        Target(
            "passthrough", "passthrough", "gpt-4o", "bare aiohttp + orjson proxy (tests/bench/passthrough.py)"
        ),
        Target(
            "passthrough-messages",
            "passthrough",
            "claude-sonnet-4-5",
            "the bare passthrough, Messages request -> mock /v1/messages (floor of the *-messages targets)",
            api=MESSAGES,
            baseline="direct-messages",
        ),
        Target(
            "passthrough-responses",
            "passthrough",
            "gpt-4o",
            "the bare passthrough, Responses request -> mock /v1/responses (floor of *-responses targets)",
            api=RESPONSES,
            baseline="direct-responses",
        ),
        Target(
            "gateway-openai",
            "gateway",
            "bench-openai",
            "gateway -> mock /v1/chat/completions (OpenAI)",
            delay_model="bench-openai-delay",
        ),
        Target(
            "gateway-anthropic",
            "gateway",
            "bench-anthropic",
            "gateway -> mock /v1/messages (OpenAI <-> Anthropic)",
            delay_model="bench-anthropic-delay",
        ),
        Target(
            "gateway-messages-native",
            "gateway",
            "bench-anthropic",
            "gateway /v1/messages -> mock /v1/messages (anthropic dialect: relayed, only model rewritten)",
            delay_model="bench-anthropic-delay",
            api=MESSAGES,
            baseline="direct-messages",
            floor="passthrough-messages",
        ),
        Target(
            "gateway-messages-openai",
            "gateway",
            "bench-openai",
            "gateway /v1/messages -> mock /v1/chat/completions (Messages <-> OpenAI chat)",
            delay_model="bench-openai-delay",
            api=MESSAGES,
            baseline="direct-messages",
            floor="passthrough-messages",
        ),
        Target(
            "gateway-responses-native",
            "gateway",
            "bench-openai",
            "gateway /v1/responses -> mock /v1/responses (openai dialect: relayed, only model rewritten)",
            delay_model="bench-openai-delay",
            api=RESPONSES,
            baseline="direct-responses",
            floor="passthrough-responses",
        ),
        Target(
            "gateway-responses-openai",
            "gateway",
            "bench-chat",
            "gateway /v1/responses -> mock /v1/chat/completions (an OpenAI-compatible dialect without a "
            "Responses API: Responses <-> OpenAI chat)",
            delay_model="bench-chat-delay",
            api=RESPONSES,
            baseline="direct-responses",
            floor="passthrough-responses",
        ),
        Target(
            "gateway-w1",
            "gateway",
            "bench-openai",
            "gateway-openai with --workers 1: load phase only, CPU time per request",
            workers=1,
            load_only=True,
        ),
        Target(
            "gateway-w2",
            "gateway",
            "bench-openai",
            "gateway-openai with --workers 2 (supervisor + 2 workers): load phase only, CPU time per request",
            workers=2,
            load_only=True,
        ),
        Target(
            "passthrough-p1",
            "passthrough",
            "gpt-4o",
            "passthrough with --procs 1: load phase only (control for gateway-w1 / -w2)",
            workers=1,
            load_only=True,
        ),
        Target(
            "passthrough-p2",
            "passthrough",
            "gpt-4o",
            "passthrough with --procs 2 (2 processes, SO_REUSEPORT): load phase only (control)",
            workers=2,
            load_only=True,
        ),
    )
}


def delay_prefix(delay_ms: float) -> str:
    """The mock's path prefix for streams whose events are delay_ms apart."""
    return f"/delay/{delay_ms:g}"


def gateway_config(upstream_port: int, delay_ms: float) -> str:
    """The gateway's routes.yaml: one provider and one model per upstream dialect of the mock, and the same
    again (models *-delay) against the mock's delayed-stream endpoints. `openai-chat-only` is the openai
    dialect without its Responses API (`native: null`): an OpenAI-compatible server that has only Chat
    Completions, so a Responses request to it is translated, and only by the client protocol's rules
    (a vendor's chat-only dialect would add its own request and chunk rules to the figures)."""
    up = f"http://127.0.0.1:{upstream_port}"
    slow = up + delay_prefix(delay_ms)
    return f"""# generated by tests/bench/run_bench.py
listen: {{host: 127.0.0.1, port: 0}}
dialects:
  openai-chat-only: {{extends: openai, description: "OpenAI chat without the Responses API", native: null}}
providers:
  bench-openai:    {{dialect: openai,    base_url: "{up}/v1", api_key: bench}}
  bench-anthropic: {{dialect: anthropic, base_url: "{up}",    api_key: bench}}
  bench-chat:      {{dialect: openai-chat-only, base_url: "{up}/v1", api_key: bench}}
  bench-openai-delay:    {{dialect: openai,    base_url: "{slow}/v1", api_key: bench}}
  bench-anthropic-delay: {{dialect: anthropic, base_url: "{slow}",    api_key: bench}}
  bench-chat-delay:      {{dialect: openai-chat-only, base_url: "{slow}/v1", api_key: bench}}
models:
  bench-openai:    [{{provider: bench-openai,    model: gpt-4o}}]
  bench-anthropic: [{{provider: bench-anthropic, model: claude-sonnet-4-5}}]
  bench-chat:      [{{provider: bench-chat,      model: gpt-4o}}]
  bench-openai-delay:    [{{provider: bench-openai-delay,    model: gpt-4o}}]
  bench-anthropic-delay: [{{provider: bench-anthropic-delay, model: claude-sonnet-4-5}}]
  bench-chat-delay:      [{{provider: bench-chat-delay,      model: gpt-4o}}]
"""


def litellm_gateway_config() -> str:
    """routes.yaml for the gateway as a target of the shared LiteLLM harness (../shared/bench/run.py):
    model gpt-4o -> $UPSTREAM_URL, the OpenAI-style base URL that harness sets for each (re)start."""
    return """# generated by tests/bench/run_bench.py --litellm
listen: {host: 127.0.0.1, port: 0}
providers:
  bench: {dialect: openai, base_url: "${UPSTREAM_URL}", api_key: bench}
models:
  gpt-4o: [{provider: bench, model: gpt-4o}]
"""


def mock_argv(python: str, port: int, chunks: int) -> list[str]:
    return [python, str(HERE / "mock_upstream.py"), "--port", str(port), "--chunks", str(chunks)]


def target_argv(target: Target, python: str, port: int, upstream_port: int, gateway_yaml: Path) -> list[str]:
    if target.kind == "passthrough":
        return [
            python,
            str(HERE / "passthrough.py"),
            "--port",
            str(port),
            "--upstream",
            f"http://127.0.0.1:{upstream_port}/v1",
            *(["--procs", str(target.workers)] if target.workers else []),
        ]
    if target.kind == "gateway":
        argv = [
            python,
            "-m",
            "gateway",
            "--config",
            str(gateway_yaml),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        return argv + (["--workers", str(target.workers)] if target.workers else [])
    raise ValueError(f"{target.name} is not started by the harness")
