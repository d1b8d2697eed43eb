"""When tracing is on: the standard OTEL_* variables decide, and nothing is traced unless they say so
(the SDK's own default would export to localhost:4318 whenever the extra is installed)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import structlog

from gateway.tracing import settings as tracing_settings_module
from gateway.tracing.settings import TracingSettings, tracing_from_environment, tracing_settings

ENDPOINT = "http://collector:4318"

CASES: list[tuple[dict[str, str], TracingSettings | None]] = [
    ({}, None),
    ({"OTEL_SERVICE_NAME": "gw"}, None),  # named, but sent nowhere
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, TracingSettings(("otlp",))),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{ENDPOINT}/v1/traces"}, TracingSettings(("otlp",))),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, TracingSettings(("otlp",))),  # the SDK's default endpoint
    ({"OTEL_TRACES_EXPORTER": "console,otlp"}, TracingSettings(("console", "otlp"))),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, None),  # metrics/logs only
    ({"OTEL_TRACES_EXPORTER": "zipkin"}, None),  # not shipped: a warning, no tracing
    ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, None),
    ({"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, TracingSettings(("otlp",))),
    (
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT,
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true",
        },
        TracingSettings(("otlp",), capture_content=True),
    ),
    (
        {"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "1"},
        TracingSettings(("otlp",)),  # `true` only, as the conventions say
    ),
]


@pytest.mark.parametrize(("env", "expected"), CASES)
def test_the_environment_decides(env: dict[str, str], expected: TracingSettings | None) -> None:
    assert tracing_settings(env) == expected


def test_an_unknown_exporter_is_said() -> None:
    with structlog.testing.capture_logs() as logs:
        assert tracing_settings({"OTEL_TRACES_EXPORTER": "zipkin,otlp"}) == TracingSettings(("otlp",))
    assert [(e["event"], e["exporters"]) for e in logs] == [("tracing_exporter_unknown", ["zipkin"])]


def test_grpc_is_said_and_http_used() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    with structlog.testing.capture_logs() as logs:
        assert tracing_settings(env) == TracingSettings(("otlp",))
    assert [(e["event"], e["used"]) for e in logs] == [("tracing_protocol_unsupported", "http/protobuf")]


def test_traces_asked_for_without_the_extra_are_a_warning_not_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tracing_settings_module, "otel_installed", lambda: False)
    with structlog.testing.capture_logs() as logs:
        assert tracing_from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}) is None
    assert [e["event"] for e in logs] == ["tracing_unavailable"]


def test_off_imports_nothing_of_opentelemetry() -> None:
    """The app made with tracing off has loaded neither the SDK nor the gateway's tracing hooks."""
    code = (
        "import sys; from gateway.app import create_app; from tests.tracing.rig_free import app_without_env; "
        "app_without_env(create_app); "
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'gateway.tracing.'))))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split("\n")[-2] == "['gateway.tracing.settings']"
