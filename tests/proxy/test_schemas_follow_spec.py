"""Our request schemas reject nothing the official OpenAI spec accepts (issue 12, "no stricter than the
spec").

Generated from both files: every constraint of schemas/*_request.schema.json is compared with the
spec's (../shared/spec/openai-openapi.yaml) for the same operation (tests/support/schema_comparison), so
a tightened minimum, an added pattern, a new required field or a closed object fails here. Where we are
stricter on purpose it is listed in DELIBERATE with the reason, and an entry that no longer differs
fails too, so the list stays true. Where the spec is absent, the comparison is skipped, and says so.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.proxy.request_validation import SCHEMA_FILES
from gateway.schema_files import load_schema
from tests.support import openai_spec
from tests.support.schema_comparison import Comparison, Finding, SchemaSide, UnknownKeyword

SPEC_REQUESTS = {
    "chat": "CreateChatCompletionRequest",
    "completions": "CreateCompletionRequest",
    "embeddings": "CreateEmbeddingRequest",
}

# (operation, path, keyword) -> why we are stricter there than the spec
_SEED = "the spec's bound is int64's (2**63) printed through a double, 9223372036854776000; we state "
_SEED += "the bound it means (the 192 integers between are no upstream's 64-bit seed)"
_REASONING = "not OpenAI's: the gateway's own reasoning fields (README, Reasoning); typed so that what "
_REASONING += "is replayed to an upstream is what the gateway handed out"
_DETAILS = "messages[](role=assistant).reasoning_details"
DELIBERATE: dict[tuple[str, str, str], str] = {
    ("chat", "seed", "minimum"): _SEED,
    ("chat", "seed", "maximum"): _SEED,
    ("chat", "messages[](role=assistant).reasoning_content", "type"): _REASONING,
    ("chat", _DETAILS, "type"): _REASONING,
    ("chat", f"{_DETAILS}[]", "type"): _REASONING,
    ("chat", f"{_DETAILS}[]", "required"): _REASONING,
    ("chat", f"{_DETAILS}[].type", "type"): _REASONING,
}


def _stricter_than_spec(operation: str) -> list[Finding]:
    spec = openai_spec._spec()
    ours = load_schema(SCHEMA_FILES[operation])
    comparison = Comparison(SchemaSide(ours), SchemaSide({"components": spec["components"]}))
    return comparison.stricter([ours], [{"$ref": f"#/components/schemas/{SPEC_REQUESTS[operation]}"}])


@pytest.mark.parametrize("operation", sorted(SPEC_REQUESTS))
def test_our_request_schema_is_no_stricter_than_the_spec(operation: str) -> None:
    openai_spec.require_spec()
    findings = _stricter_than_spec(operation)
    unexplained = [str(f) for f in findings if (operation, f.path, f.keyword) not in DELIBERATE]
    assert not unexplained, "our schema refuses what the spec accepts:\n  " + "\n  ".join(unexplained)
    found = {(operation, f.path, f.keyword) for f in findings}
    stale = [key for key in DELIBERATE if key[0] == operation and key not in found]
    assert not stale, f"listed in DELIBERATE but no longer stricter: {stale}"


def test_every_openai_operation_is_compared() -> None:
    """Every operation of the OpenAI protocol (the other protocols' schemas have no OpenAPI spec here)."""
    assert set(SPEC_REQUESTS) == {key for key in SCHEMA_FILES if "." not in key}


# --- The comparison itself: it finds each kind of tightening, and nothing where there is none -------

INT = {"type": "integer"}
ROLES = {
    "oneOf": [
        {
            "type": "object",
            "required": ["role"],
            "properties": {"role": {"enum": ["a"]}, "x": {"type": "string"}},
        },
        {"type": "object", "required": ["role"], "properties": {"role": {"enum": ["b"]}}},
    ]
}


def _by_role(then: dict[str, Any], role: str = "a") -> dict[str, Any]:
    """Our way of writing ROLES: one object, a role enum, an if/then per role."""
    return {
        "type": "object",
        "required": ["role"],
        "properties": {"role": {"enum": ["a", "b"]}},
        "if": {"required": ["role"], "properties": {"role": {"const": role}}},
        "then": then,
    }


# (name, ours, spec, [(path, keyword)] found)
COMPARISONS: list[tuple[str, Any, Any, list[tuple[str, str]]]] = [
    ("same", {"type": "integer", "minimum": 0}, {"type": "integer", "minimum": 0}, []),
    (
        "higher minimum",
        {"type": "integer", "minimum": 1},
        {"type": "integer", "minimum": 0},
        [("", "minimum")],
    ),
    ("a minimum the spec lacks", {"type": "integer", "minimum": 1}, INT, [("", "minimum")]),
    (
        "exclusive at the same limit",
        {"exclusiveMinimum": 0},
        {"type": "number", "minimum": 0},
        [("", "minimum")],
    ),
    ("lower maximum", {"maximum": 1}, {"type": "number", "maximum": 2}, [("", "maximum")]),
    ("looser bounds", {"type": "number"}, {"type": "number", "minimum": 0, "maximum": 1}, []),
    ("no null", INT, {"anyOf": [INT, {"type": "null"}]}, [("", "type")]),
    ("null in a type list", {"type": ["integer", "null"]}, {"anyOf": [INT, {"type": "null"}]}, []),
    ("integer for number", INT, {"type": "number"}, [("", "type")]),
    ("number for integer", {"type": "number"}, INT, []),
    ("fewer enum values", {"enum": ["a"]}, {"type": "string", "enum": ["a", "b"]}, [("", "enum")]),
    ("an enum the spec lacks", {"enum": ["a"]}, {"type": "string"}, [("", "enum")]),
    ("enum with null", {"enum": ["a", None]}, {"anyOf": [{"enum": ["a"]}, {"type": "null"}]}, []),
    ("a pattern", {"type": "string", "pattern": "^a"}, {"type": "string"}, [("", "pattern")]),
    ("shorter maxLength", {"maxLength": 3}, {"type": "string", "maxLength": 4}, [("", "maxLength")]),
    ("longer minLength", {"minLength": 1}, {"type": "string"}, [("", "minLength")]),
    ("fewer maxItems", {"maxItems": 3}, {"type": "array", "maxItems": 4}, [("", "maxItems")]),
    ("more minItems", {"minItems": 1}, {"type": "array"}, [("", "minItems")]),
    (
        "items",
        {"items": {"type": "string", "maxLength": 3}},
        {"type": "array", "items": {"type": "string"}},
        [("[]", "maxLength")],
    ),
    ("a required field", {"required": ["a", "b"]}, {"type": "object", "required": ["a"]}, [("", "required")]),
    (
        "a closed object",
        {"properties": {"a": {}}, "additionalProperties": False},
        {"type": "object", "properties": {"a": {}}},
        [("*", "type")],
    ),
    (
        "a typed property the spec leaves open",
        {"properties": {"x": INT}},
        {"type": "object"},
        [("x", "type")],
    ),
    (
        "a property's bound, through $ref",
        {"properties": {"x": {"$ref": "#/$defs/positive"}}, "$defs": {"positive": {"minimum": 1}}},
        {"type": "object", "properties": {"x": INT}},
        [("x", "minimum")],
    ),
    (
        "other keys' values",
        {"additionalProperties": {"maxLength": 5}},
        {"type": "object", "additionalProperties": {"type": "string"}},
        [("*", "maxLength")],
    ),
    (
        "key names and sizes",
        {"propertyNames": {"maxLength": 64}, "maxProperties": 16},
        {"type": "object"},
        [("", "maxProperties"), ("(key)", "maxLength")],
    ),
    (
        "a property the spec forbids",
        {"properties": {"x": INT}},
        {"type": "object", "properties": {"x": False}},
        [],
    ),
    ("per role, the same", _by_role({"properties": {"x": {"type": "string"}}}), ROLES, []),
    (
        "per role, a bound on one role's field",
        _by_role({"properties": {"x": {"type": "string", "maxLength": 2}}}),
        ROLES,
        [("(role=a).x", "maxLength")],
    ),
    (
        "per role, a field required of another role",
        _by_role({"required": ["x"]}, "b"),
        ROLES,
        [("(role=b)", "required")],
    ),
    (
        "a union on either side",
        {"anyOf": [{"type": "string"}, {"type": "array", "items": INT}]},
        {"oneOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": INT}]},
        [],
    ),
]


@pytest.mark.parametrize(
    ("ours", "spec", "expected"), [c[1:] for c in COMPARISONS], ids=[c[0] for c in COMPARISONS]
)
def test_the_comparison_finds_each_tightening(ours: Any, spec: Any, expected: list[tuple[str, str]]) -> None:
    findings = Comparison(SchemaSide(ours), SchemaSide(spec)).stricter([ours], [spec])
    assert sorted((f.path, f.keyword) for f in findings) == sorted(expected), [str(f) for f in findings]


def test_the_comparison_refuses_keywords_it_does_not_know() -> None:
    ours = {"type": "integer", "multipleOf": 2}
    with pytest.raises(UnknownKeyword, match="multipleOf"):
        Comparison(SchemaSide(ours), SchemaSide(INT)).stricter([ours], [INT])
