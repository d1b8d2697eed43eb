"""Configuration problems, each naming where in the YAML it is and what was expected."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

# Values under keys like these are never echoed in a message.
_SECRET_WORDS = ("key", "secret", "token", "password", "authorization")


def format_path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


class ConfigError(Exception):
    """One or more problems; `str()` lists every one on its own line."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def _is_secret(path: Sequence[Any]) -> bool:
    return any(isinstance(p, str) and any(w in p.lower() for w in _SECRET_WORDS) for p in path)


def _describe(error: ValidationError) -> str:
    """What was expected, in words; never the offending value when it sits under a secret-looking key."""
    keyword = error.validator
    expected: Any = error.validator_value
    schema: Any = error.schema
    path = list(error.absolute_path)
    if keyword == "required":
        missing = [
            name for name in expected if not isinstance(error.instance, dict) or name not in error.instance
        ]
        return f"missing required key {missing[0]!r}" if missing else error.message
    if keyword == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted((schema.get("properties") or {}).keys())
        extra = sorted(set(error.instance) - set(allowed))
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"unknown key {', '.join(repr(e) for e in extra)}{hint}"
    if keyword == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        got = type(error.instance).__name__
        return f"expected {' or '.join(str(k) for k in kinds)}, got {_yaml_kind(got)}"
    if keyword == "enum":
        return f"expected one of {', '.join(repr(v) for v in expected)}"
    if _is_secret(path):
        return f"invalid value ({keyword} {expected!r} not met)"
    return error.message


def _yaml_kind(python_type: str) -> str:
    return {
        "dict": "a mapping",
        "list": "a list",
        "str": "a string",
        "int": "an integer",
        "float": "a number",
        "bool": "a boolean",
        "NoneType": "null",
    }.get(python_type, python_type)


def _most_relevant(errors: Iterable[ValidationError]) -> ValidationError:
    """Of the errors of a oneOf/anyOf's branches: the branch that got furthest, type mismatches last."""
    return min(errors, key=lambda e: (-len(e.absolute_path), e.validator == "type", str(e.message)))


def schema_problems(validator: Draft202012Validator, instance: Any, prefix: Sequence[Any] = ()) -> list[str]:
    """Every schema violation as `path: what was expected`, sorted by path."""
    problems = []
    for error in validator.iter_errors(instance):
        while error.validator in ("oneOf", "anyOf") and error.context:
            error = _most_relevant(error.context)
        path = [*prefix, *error.absolute_path]
        problems.append(f"{format_path(path)}: {_describe(error)}")
    return sorted(set(problems))
