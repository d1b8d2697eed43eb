"""JSON Schema keywords read the way the mock's value maker (schema_instance) reads them: counts,
types, JSON equality; and the exceptions for a schema no value within the mock's caps meets."""

from __future__ import annotations

from typing import Any, TypeGuard

from gateway import json_codec

_OBJECT_WORDS = ("properties", "required", "additionalProperties", "minProperties", "maxProperties")
_ARRAY_WORDS = ("items", "prefixItems", "minItems", "maxItems", "contains", "uniqueItems")
_STRING_WORDS = ("minLength", "maxLength", "pattern", "format")
_NUMBER_WORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_KINDS = ("object", "array", "string", "integer", "number", "boolean", "null")


class SchemaUnmet(Exception):
    """No value of the schema within the mock's caps. `where` is the place in the value ($.a[0].b)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"at {where}: {reason}")
        self.where = where
        self.reason = reason


class SchemaTooLarge(SchemaUnmet):
    """A budget of the whole value ran out: no other `anyOf` branch is tried."""


def is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def maximum_count(flat: dict[str, Any], keyword: str) -> int | None:
    """A non-negative integer keyword (maxItems: 2, or 2.0), or None."""
    value = flat.get(keyword)
    if is_number(value) and value >= 0 and float(value).is_integer():
        return int(value)
    return None


def minimum_count(flat: dict[str, Any], keyword: str) -> int:
    """A non-negative integer keyword (minItems: 2, or 2.0), or 0."""
    return maximum_count(flat, keyword) or 0


def count_within(length: int, flat: dict[str, Any], least: str, most: str) -> bool:
    upper = maximum_count(flat, most)
    return minimum_count(flat, least) <= length and (upper is None or length <= upper)


def kinds_of(flat: dict[str, Any], *, null_first: bool) -> list[str]:
    declared = flat.get("type")
    kinds = [_inferred_kind(flat)] if declared is None else [k for k in as_list(declared) if k in _KINDS]
    if "null" in kinds and len(kinds) > 1:
        kinds.remove("null")
        kinds.insert(0 if null_first else len(kinds), "null")
    return kinds


def _inferred_kind(flat: dict[str, Any]) -> str:
    for kind, words in (
        ("object", _OBJECT_WORDS),
        ("array", _ARRAY_WORDS),
        ("string", _STRING_WORDS),
        ("number", _NUMBER_WORDS),
    ):
        if any(word in flat for word in words):
            return kind
    return "string"


def as_list(declared: Any) -> list[Any]:
    return list(declared) if isinstance(declared, list) else [declared]


def list_or_empty(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def has_kind(value: Any, kind: str) -> bool:
    if kind == "integer":
        return is_number(value) and float(value).is_integer()
    if kind == "number":
        return is_number(value)
    return {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "string": isinstance(value, str),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }.get(kind, False)


def json_key(value: Any) -> Any:
    """A hashable stand-in for a JSON value, equal for equal JSON values (1 and 1.0; not 1 and true)."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if is_number(value):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    return ("json", json_codec.dumps(value))
