"""Where the vendored JSON Schemas live, installed or in a checkout, and loading them once."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from gateway import json_codec

_PACKAGE_DIR = Path(__file__).resolve().parent


@functools.cache
def schema_dir() -> Path:
    """`gateway/schemas` in an installed wheel, the repository's `schemas/` in a checkout."""
    for candidate in (_PACKAGE_DIR / "schemas", _PACKAGE_DIR.parent / "schemas"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("no schemas/ directory next to the gateway package")


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """Parse `schemas/<name>` (a JSON file); cached, so callers share one parsed copy."""
    schema: dict[str, Any] = json_codec.loads((schema_dir() / name).read_bytes())
    return schema
