"""An app built the way the CLI builds it, from the mock-only test configuration, with no OTEL_* set:
for the check that tracing off loads nothing of OpenTelemetry (no SDK import needed here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from gateway.config.loader import config_from_text
from gateway.engine.registry import build_registry
from gateway.reload import RegistryHolder
from tests.support.routes import routes


def app_without_env(create_app: Callable[[RegistryHolder], Any]) -> Any:
    config = yaml.safe_dump(routes("http://127.0.0.1:9", "http://127.0.0.1:9"))
    return create_app(
        RegistryHolder("routes.yaml", build_registry(config_from_text(config, "routes.yaml", {})))
    )
