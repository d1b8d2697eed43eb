"""Check client-facing JSON against the official OpenAI spec in ../shared/spec (when present)."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

SPEC_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "spec"
SPEC_AVAILABLE = (SPEC_DIR / "validate.py").is_file()


@functools.cache
def _validate_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("openai_spec_validate", SPEC_DIR / "validate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def _loaded_spec() -> dict[str, Any]:
    spec: dict[str, Any] = _validate_module().load_spec()
    return spec


def spec_errors(schema: str, instance: Any) -> list[str]:
    """Errors of `instance` against the named component schema; [] when the spec is not available."""
    if not SPEC_AVAILABLE:
        return []
    errors: list[str] = _validate_module().errors_for(_loaded_spec(), schema, instance)
    return errors
