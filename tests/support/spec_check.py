"""Check client-facing JSON against the official OpenAI spec in ../shared/spec (see openai_spec)."""

from __future__ import annotations

from typing import Any

from tests.support.openai_spec import errors_for


def spec_errors(schema: str, instance: Any) -> list[str]:
    """Errors of `instance` against the named component schema; where the spec is absent, none, and
    the check is counted as skipped (reported at the end of the run), never passed in silence."""
    return errors_for(schema, instance)
