"""A value valid against a JSON Schema (the mock's structured output and tool arguments): each value is
checked with jsonschema (and pydantic, for models), and whatever a client's schema says, the work is
bounded in time and size."""

from __future__ import annotations

import datetime
import enum
import random
import time
from typing import Any, Literal

import jsonschema
import openai
import pydantic
import pytest

from gateway import json_codec
from gateway.upstream.schema_instance import (
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_MERGED,
    MAX_STRING_LENGTH,
    MAX_VALUE_CHARS,
    schema_instance,
)
from gateway.upstream.schema_keywords import SchemaTooLarge, SchemaUnmet

TEXT = "You said: please fill in the form for me"


def _make(schema: Any, seed: str = "seed") -> Any:
    return schema_instance(schema, seed=seed, text=TEXT)


def _assert_valid(schema: Any, value: Any) -> None:
    validator = jsonschema.validators.validator_for(schema)
    validator(schema, format_checker=validator.FORMAT_CHECKER).validate(value)


# ---- valid values: one schema per case, checked with jsonschema ------------------------------------------
VALID = {
    "string": {"type": "string"},
    "empty schema": {},
    "true": True,
    "type list": {"type": ["string", "null"]},
    "null first in the list": {"type": ["null", "integer"]},
    "nullable (OpenAPI)": {"type": "string", "nullable": True},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "null": {"type": "null"},
    "object": {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": False,
    },
    "required but undeclared": {
        "type": "object",
        "required": ["x"],
        "additionalProperties": {"type": "integer", "minimum": 3},
    },
    "minProperties": {"type": "object", "minProperties": 3, "additionalProperties": {"type": "boolean"}},
    "maxProperties": {
        "type": "object",
        "properties": {"a": {}, "b": {}, "c": {}},
        "required": ["b"],
        "maxProperties": 1,
    },
    "untyped object": {"properties": {"x": {"type": "number"}}, "required": ["x"]},
    "array of enum": {"type": "array", "items": {"enum": ["x", "y"]}, "minItems": 3, "maxItems": 3},
    "maxItems 0": {"type": "array", "items": {"type": "string"}, "maxItems": 0},
    "prefixItems": {
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "string"}],
        "items": False,
    },
    "tuple (draft 7)": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "array",
        "items": [{"type": "boolean"}, {"type": "null"}],
        "additionalItems": False,
    },
    "uniqueItems": {"type": "array", "items": {"enum": [1, 2, 3]}, "minItems": 3, "uniqueItems": True},
    "contains": {"type": "array", "items": {"type": "integer"}, "contains": {"const": 42}},
    "enum": {"enum": ["red", "green", 3, None]},
    "enum filtered by type": {"type": "string", "enum": ["red", 3, None]},
    "const": {"const": {"deep": [1, 2]}},
    "date-time": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "time": {"type": "string", "format": "time"},
    "email": {"type": "string", "format": "email"},
    "uri": {"type": "string", "format": "uri"},
    "uuid": {"type": "string", "format": "uuid"},
    "ipv4": {"type": "string", "format": "ipv4"},
    "ipv6": {"type": "string", "format": "ipv6"},
    "hostname": {"type": "string", "format": "hostname"},
    "duration": {"type": "string", "format": "duration"},
    "unknown format": {"type": "string", "format": "my-own"},
    "minLength": {"type": "string", "minLength": 100},
    "maxLength": {"type": "string", "maxLength": 3},
    "exact length": {"type": "string", "minLength": 5, "maxLength": 5},
    "pattern": {"type": "string", "pattern": r"^[A-Z]{3}-\d{4}$"},
    "pattern alternation": {"type": "string", "pattern": r"^(foo|bar)+baz$"},
    "pattern negated set": {"type": "string", "pattern": r"^[^abc\d]{2}$"},
    "pattern backreference": {"type": "string", "pattern": r"^(ab|cd)-\1$"},
    "pattern and minLength": {"type": "string", "pattern": r"^x+$", "minLength": 12},
    "bounds": {"type": "number", "minimum": -3.5, "maximum": -3.25},
    "exclusive bounds": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "integer exclusive": {"type": "integer", "exclusiveMinimum": 4, "exclusiveMaximum": 6},
    "draft 4 exclusiveMinimum": {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "integer",
        "minimum": 9,
        "exclusiveMinimum": True,
        "maximum": 10,
    },
    "multipleOf 0.01": {"type": "number", "multipleOf": 0.01, "minimum": 0.005, "maximum": 0.03},
    "multipleOf 0.1": {"type": "number", "multipleOf": 0.1},
    "integer multipleOf 7": {"type": "integer", "multipleOf": 7, "minimum": 100, "maximum": 110},
    "integer multipleOf 0.5": {"type": "integer", "multipleOf": 0.5},
    "huge minimum": {"type": "number", "minimum": 1e300},
    "$defs": {"$defs": {"name": {"type": "string", "minLength": 2}}, "$ref": "#/$defs/name"},
    "definitions": {
        "definitions": {"n": {"type": "integer"}},
        "type": "object",
        "properties": {"n": {"$ref": "#/definitions/n"}},
        "required": ["n"],
    },
    "escaped pointer": {"$defs": {"a/b~c": {"const": 1}}, "$ref": "#/$defs/a~1b~0c"},
    "recursive root": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "child": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}},
        "required": ["name", "child"],
    },
    "anyOf: first impossible": {
        "anyOf": [{"type": "integer", "minimum": 5, "maximum": 1}, {"type": "boolean"}]
    },
    "oneOf": {"oneOf": [{"type": "string", "maxLength": 4}, {"type": "integer"}]},
    "siblings of anyOf": {
        "type": "object",
        "anyOf": [{"required": ["a"]}],
        "properties": {"a": {"const": 1}},
    },
    "allOf merge": {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]},
            {
                "properties": {"a": {"type": "integer", "minimum": 10}, "b": {"type": "string"}},
                "required": ["b"],
            },
            {"properties": {"a": {"maximum": 12}}},
        ]
    },
    "allOf of two anyOf": {
        "allOf": [
            {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            {"anyOf": [{"type": "string", "minLength": 3}, {"type": "boolean"}]},
        ]
    },
    "allOf enums meet": {"allOf": [{"enum": ["a", "b", "c"]}, {"enum": ["c", "b"]}, {"enum": ["c"]}]},
    "ref with siblings": {"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s", "maxLength": 4},
    "enum meeting the other keywords": {"enum": ["a", "abcdef", 7], "type": "string", "minLength": 3},
    "const meeting the other keywords": {
        "allOf": [{"const": {"a": 1}}, {"type": "object", "required": ["a"]}]
    },
    "additionalProperties across allOf": {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
            {"properties": {"b": {"type": "integer"}}},
        ]
    },
    "multipleOf across allOf": {
        "allOf": [{"type": "integer", "multipleOf": 2}, {"multipleOf": 7}, {"minimum": 100, "maximum": 150}]
    },
    "items across allOf": {
        "allOf": [{"type": "array", "prefixItems": [{}], "minItems": 1}, {"items": {"type": "integer"}}]
    },
    "pattern padded to minLength": {"type": "string", "pattern": r"^\d{2}", "minLength": 10},
}


@pytest.mark.parametrize("schema", list(VALID.values()), ids=list(VALID))
def test_the_value_is_valid(schema: Any) -> None:
    value = _make(schema)
    _assert_valid(schema, value)
    json_codec.dumps(value)  # plain JSON


def test_same_seed_same_value_other_seed_other_value() -> None:
    schema = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(8)}}
    assert _make(schema, "one") == _make(schema, "one")
    assert _make(schema, "one") != _make(schema, "two")


def test_free_strings_are_the_text_shortened() -> None:
    assert _make({"type": "string"}) == TEXT
    long = "You said: " + "word " * 100
    value = schema_instance({"type": "string"}, seed="s", text=long)
    assert long.startswith(value) and 30 <= len(value) <= 60


def test_objects_get_every_property_and_arrays_two_items() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}}, "b": {}}}
    value = _make(schema)
    assert list(value) == ["a", "b"] and len(value["a"]) == 2


# ---- pydantic models, as the openai SDK sends them ------------------------------------------------------
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(pydantic.BaseModel):
    street: str
    city: str
    postcode: str | None = None


class Node(pydantic.BaseModel):
    value: int
    children: list[Node] = []


class Tree(pydantic.BaseModel):
    label: str
    left: Tree | None = None
    right: Tree | None = None


class Order(pydantic.BaseModel):
    customer: str
    colour: Colour
    size: Literal["S", "M", "L"]
    quantity: int = pydantic.Field(ge=1, le=10)
    price: float = pydantic.Field(gt=0, multiple_of=0.01)
    placed_at: datetime.datetime
    deliver_on: datetime.date
    address: Address
    extra_addresses: list[Address] = []
    note: str | None = None
    code: str = pydantic.Field(pattern=r"^[A-Z]{2}\d{4}$")
    tags: list[str] = pydantic.Field(min_length=1, max_length=3)


MODELS = [Order, Address, Node, Tree]


@pytest.mark.parametrize("strict", [False, True], ids=["model_json_schema", "strict (as the SDK sends)"])
@pytest.mark.parametrize("model", MODELS, ids=[m.__name__ for m in MODELS])
def test_pydantic_models(model: type[pydantic.BaseModel], strict: bool) -> None:
    schema = (
        openai.pydantic_function_tool(model)["function"]["parameters"]
        if strict
        else model.model_json_schema()
    )
    value = _make(schema)
    _assert_valid(schema, value)
    model.model_validate(value)


def test_a_recursive_model_ends_where_it_may() -> None:
    """Past SOFT_DEPTH only required fields: Optional[Tree] becomes null, children an empty list."""
    tree = Tree.model_validate(_make(openai.pydantic_function_tool(Tree)["function"]["parameters"]))
    depth = 0
    while tree.left is not None:
        tree, depth = tree.left, depth + 1
    assert 1 <= depth <= 4
    node = Node.model_validate(_make(Node.model_json_schema()))
    assert len(node.children) == 2 and node.children[0].children


# ---- what cannot be made within the caps (or at all) is SchemaUnmet, naming the place --------------------
UNMET = {
    "false": (False, "$", "the schema is false"),
    "minItems over the cap": (
        {
            "type": "object",
            "properties": {"xs": {"type": "array", "minItems": MAX_ITEMS + 1}},
            "required": ["xs"],
        },
        "$.xs",
        f"minItems {MAX_ITEMS + 1} is more than the {MAX_ITEMS} items",
    ),
    "minLength over the cap": (
        {"type": "string", "minLength": MAX_STRING_LENGTH + 1},
        "$",
        f"minLength {MAX_STRING_LENGTH + 1}",
    ),
    "minItems over maxItems": (
        {"type": "array", "minItems": 3, "maxItems": 2},
        "$",
        "minItems 3 is more than maxItems 2",
    ),
    "minimum over maximum": ({"type": "integer", "minimum": 5, "maximum": 3}, "$", "no integer >= 5, <= 3"),
    "no multiple in range": (
        {"type": "integer", "multipleOf": 10, "minimum": 1, "maximum": 9},
        "$",
        "a multiple of 10",
    ),
    "integer beyond 2**53": ({"type": "integer", "minimum": 1e20}, "$", "within +-"),
    "unknown type": ({"type": "text"}, "$", "no value has the type 'text'"),
    "empty enum": ({"enum": []}, "$", "no value of the enum"),
    "enum of other types": ({"type": "integer", "enum": ["a"]}, "$", "no value of the enum"),
    "two consts": ({"allOf": [{"const": 1}, {"const": 2}]}, "$", "two different const"),
    "types that meet nowhere": (
        {"allOf": [{"type": "string"}, {"type": "integer"}]},
        "$",
        "allOf asks for types no value has",
    ),
    "external $ref": ({"$ref": "https://example.com/s.json"}, "$", "only references inside the schema"),
    "dangling $ref": (
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}, "required": ["a"]},
        "$.a",
        "points at nothing",
    ),
    "required, undeclared, no additional": (
        {"type": "object", "required": ["x"], "additionalProperties": False},
        "$",
        "'x' is required but not a property",
    ),
    "endless required recursion": (
        {"type": "object", "properties": {"next": {"$ref": "#"}}, "required": ["next"]},
        "$" + ".next" * (MAX_DEPTH + 1),
        f"nests more than {MAX_DEPTH} levels",
    ),
    "minProperties over maxProperties": (
        {"type": "object", "minProperties": 3, "maxProperties": 1},
        "$",
        "minProperties 3 is more than maxProperties 1",
    ),
    "const against the other keywords": (
        {"allOf": [{"const": "a"}, {"type": "string", "minLength": 5}]},
        "$",
        "no value of the const meets",
    ),
    "required, forbidden by another allOf member": (
        {
            "allOf": [
                {"type": "object", "properties": {"a": {}}, "additionalProperties": False},
                {"properties": {"b": {}}, "required": ["b"]},
            ]
        },
        "$.b",
        "the schema is false",
    ),
    "pattern longer than maxLength": (
        {"type": "string", "pattern": r"^[a-z]{10}$", "maxLength": 5},
        "$",
        "its shortest text is longer than 5",
    ),
    "format longer than maxLength": (
        {"type": "string", "format": "email", "maxLength": 5},
        "$",
        "the mock's email ('user@example.com') has not 0 to 5 characters",
    ),
    "every branch fails": (
        {"anyOf": [{"type": "integer", "minimum": 2, "maximum": 1}, False]},
        "$",
        "no integer >= 2, <= 1",
    ),
}


@pytest.mark.parametrize(("schema", "where", "words"), list(UNMET.values()), ids=list(UNMET))
def test_unmet_names_the_place_and_the_keyword(schema: Any, where: str, words: str) -> None:
    with pytest.raises(SchemaUnmet) as caught:
        _make(schema)
    assert caught.value.where == where
    assert words in caught.value.reason


# ---- bounded whatever the schema: time and size ---------------------------------------------------------
def _nested(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


def _wide_recursion(width: int) -> dict[str, Any]:
    properties = {f"p{i}": {"$ref": "#/$defs/n"} for i in range(width)}
    return {"$defs": {"n": {"type": "object", "properties": properties}}, "$ref": "#/$defs/n"}


def _allof_chain(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(levels):
        schema = {"allOf": [schema]}
    return schema


def _anyof_backtracking(levels: int) -> dict[str, Any]:
    """Each level's branches all fail only at the bottom: without a budget, 3**levels attempts."""
    defs = {f"l{i}": {"anyOf": [{"$ref": f"#/$defs/l{i + 1}"}] * 3} for i in range(levels)}
    defs[f"l{levels}"] = {"type": "integer", "minimum": 1, "maximum": 0}
    return {"$defs": defs, "$ref": "#/$defs/l0"}


def _items_everywhere(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(levels):
        schema = {"type": "array", "items": schema, "minItems": MAX_ITEMS}
    return schema


BOUNDED = {
    "10,000 levels of nesting": (_nested(10_000), SchemaUnmet),
    "wide recursion (50 optional refs a level)": (_wide_recursion(50), SchemaTooLarge),
    "allOf chain past MAX_MERGED": (_allof_chain(MAX_MERGED + 10), SchemaUnmet),
    "$ref loop": (
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
        SchemaUnmet,
    ),
    "anyOf backtracking": (_anyof_backtracking(30), SchemaTooLarge),
    "minItems 64 at every level": (_items_everywhere(10), SchemaTooLarge),
    "long strings past MAX_VALUE_CHARS": (
        {"type": "array", "items": {"type": "string", "minLength": 60_000}, "minItems": MAX_ITEMS},
        SchemaTooLarge,
    ),
    "a big enum value, repeated": (
        {"type": "array", "items": {"enum": ["x" * 100_000]}, "minItems": MAX_ITEMS},
        SchemaTooLarge,
    ),
    "catastrophic pattern": ({"type": "string", "pattern": r"^(a+)+$", "minLength": 40}, None),
    "huge pattern count": ({"type": "string", "pattern": r"^a{1000000}$"}, SchemaUnmet),
    "long pattern": ({"type": "string", "pattern": "(a|b)" * 10_000}, None),
}


@pytest.mark.parametrize(("schema", "raised"), list(BOUNDED.values()), ids=list(BOUNDED))
def test_bounded_whatever_the_schema(schema: Any, raised: type[Exception] | None) -> None:
    started = time.perf_counter()
    if raised is None:
        value = _make(schema)
        assert len(json_codec.dumps(value)) <= MAX_VALUE_CHARS
    else:
        with pytest.raises(raised):
            _make(schema)
    assert time.perf_counter() - started < 2.0


# ---- random schemas: every value the generator makes is valid ---------------------------------------------
def _random_schema(rng: random.Random, depth: int = 0) -> Any:
    """A schema of the keywords whose values the generator checks itself (not `format` or `pattern`,
    which are best effort, nor `oneOf`, whose first branch may match another)."""
    leaf = depth > 3 or rng.random() < 0.3
    kind = rng.choice(
        ["string", "integer", "number", "boolean", "null", "enum", "const"]
        if leaf
        else ["object", "array", "anyOf", "allOf", "type list"]
    )
    if kind == "string":
        return {"type": "string", **_some(rng, minLength=range(0, 20), maxLength=range(0, 20))}
    if kind in ("integer", "number"):
        bounds = [-5, 0, 1, 2.5, 100]
        numbers = _some(rng, minimum=bounds, maximum=bounds, exclusiveMinimum=bounds, exclusiveMaximum=bounds)
        return {"type": kind, **numbers, **_some(rng, multipleOf=[1, 2, 3, 0.5, 0.1, 0.25, 7])}
    if kind in ("boolean", "null"):
        return {"type": kind}
    if kind == "enum":
        return {"enum": rng.sample(["a", 1, None, True, 2.5, [1], {"k": 1}], rng.randint(1, 4))}
    if kind == "const":
        return {"const": rng.choice(["a", 1, None, [1, 2]])}
    if kind == "object":
        properties = {f"p{i}": _random_schema(rng, depth + 1) for i in range(rng.randint(0, 4))}
        required = rng.sample(list(properties), rng.randint(0, len(properties)))
        extra = _some(rng, additionalProperties=[False, True, {"type": "integer"}])
        return {
            "type": "object",
            "properties": properties,
            "required": required,
            **extra,
            **_some(rng, minProperties=range(0, 5), maxProperties=range(0, 3)),
        }
    if kind == "array":
        prefix = {"prefixItems": [_random_schema(rng, depth + 1)]} if rng.random() < 0.2 else {}
        contains = {"contains": _random_schema(rng, depth + 1)} if rng.random() < 0.1 else {}
        return {
            "type": "array",
            "items": _random_schema(rng, depth + 1),
            **prefix,
            **contains,
            **_some(rng, minItems=range(0, 5), maxItems=range(0, 5), uniqueItems=[True]),
        }
    if kind == "type list":
        return {"type": rng.sample(["string", "integer", "null", "boolean", "number", "array", "object"], 2)}
    return {kind: [_random_schema(rng, depth + 1) for _ in range(rng.randint(1, 3))]}


def _some(rng: random.Random, **choices: Any) -> dict[str, Any]:
    return {key: rng.choice(list(values)) for key, values in choices.items() if rng.random() < 0.3}


@pytest.mark.parametrize("seed", range(4))
def test_random_schemas_get_valid_values_or_unmet(seed: int) -> None:
    rng = random.Random(seed)
    made = 0
    for index in range(500):
        schema = _random_schema(rng)
        try:
            value = _make(schema, str(index))
        except SchemaUnmet:
            continue
        _assert_valid(schema, value)
        made += 1
    assert made > 350
