"""Whether tracing is on, read from the standard OpenTelemetry environment variables.

On when the `otel` extra is installed, OTEL_SDK_DISABLED is not `true`, and traces are configured:
OTEL_TRACES_EXPORTER names an exporter other than `none`, or an OTLP endpoint is set
(OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). The SDK's own default
(exporter `otlp` to localhost:4318 whatever the environment says) is not followed: a gateway
installed with the extra but not pointed anywhere must not make a span, nor try to send one.
Everything else (endpoint, headers, timeouts, service name, resource attributes, batch sizes) is
the SDK's and the exporter's own reading of OTEL_*.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from gateway.tracing.tracing import Tracing

log = structlog.get_logger("gateway.tracing")

EXPORTERS = frozenset(("otlp", "console"))  # OTEL_TRACES_EXPORTER values the gateway ships
# the GenAI conventions' switch for message content (prompts, completions): off unless `true`
CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


@dataclass(frozen=True, slots=True)
class TracingSettings:
    exporters: tuple[str, ...]  # each of EXPORTERS, in the order given
    capture_content: bool = False


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def tracing_settings(env: Mapping[str, str]) -> TracingSettings | None:
    """The settings when the environment asks for traces; None when it does not (or disables them)."""
    if _true(env.get("OTEL_SDK_DISABLED")):
        return None
    named = [name.strip().lower() for name in env.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()]
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not named:
        if not endpoint:
            return None
        named = ["otlp"]
    exporters = tuple(dict.fromkeys(name for name in named if name in EXPORTERS))
    unknown = [name for name in named if name not in EXPORTERS and name != "none"]
    if unknown:
        log.warning("tracing_exporter_unknown", exporters=unknown, shipped=sorted(EXPORTERS))
    if not exporters:
        return None
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if "otlp" in exporters and protocol and protocol != "http/protobuf":
        log.warning("tracing_protocol_unsupported", protocol=protocol, used="http/protobuf")
    return TracingSettings(exporters, capture_content=_true(env.get(CAPTURE_CONTENT)))


def otel_installed() -> bool:
    """The `otel` extra: the SDK (the API alone comes with other packages) and the OTLP/HTTP exporter."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")
    )


def tracing_from_environment(env: Mapping[str, str] | None = None) -> Tracing | None:
    """The process's tracing, or None (off). Traces asked for without the extra installed: a warning
    once, and no tracing (never a failed start)."""
    settings = tracing_settings(os.environ if env is None else env)
    if settings is None:
        return None
    if not otel_installed():
        log.warning("tracing_unavailable", reason="install the otel extra: pip install 'llm-gateway[otel]'")
        return None
    from gateway.tracing.tracing import exporting_tracing

    log.info("tracing", exporters=list(settings.exporters), capture_content=settings.capture_content)
    return exporting_tracing(settings)
