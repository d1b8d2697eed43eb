"""allOf, as the mock's value maker (schema_instance) merges it: two schemas become one whose value
meets both (types met, bounds tightened, properties and enums combined, each side's
additionalProperties and items holding for what only the other declares)."""

from __future__ import annotations

import math
from typing import Any

from gateway.upstream.schema_keywords import SchemaUnmet, as_list, is_number, json_key
from gateway.upstream.schema_number import is_multiple

_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_SUBSCHEMAS = ("items", "additionalProperties", "contains", "additionalItems")


def merge_into(flat: dict[str, Any], part: dict[str, Any], waiting: list[Any], where: str) -> int:
    """Merge `part` into `flat`, as allOf asks: both schemas' constraints hold. Returns the work done
    beyond one step a keyword (properties and enum values copied)."""
    work = 0
    if "additionalProperties" in part or "additionalProperties" in flat:
        part, work = _bounded_by_the_other_side(flat, part)
    if "prefixItems" in part or "prefixItems" in flat:
        part = _prefix_bounded_by_the_other_side(flat, part)
    for key, value in part.items():
        if key in ("anyOf", "oneOf"):
            if "anyOf" in flat:
                waiting.append(value)
            else:
                flat["anyOf"] = value
        elif key not in flat:
            flat[key] = value
        elif key == "properties" and isinstance(value, dict) and isinstance(flat[key], dict):
            combined = dict(flat[key])
            work += len(combined) + len(value)
            for name, schema in value.items():
                combined[name] = {"allOf": [combined[name], schema]} if name in combined else schema
            flat[key] = combined
        elif key == "required" and isinstance(value, list) and isinstance(flat[key], list):
            flat[key] = list(dict.fromkeys([*flat[key], *value]))
        elif key == "type":
            flat[key] = _type_meet(as_list(flat[key]), as_list(value))
        elif key == "enum" and isinstance(value, list) and isinstance(flat[key], list):
            work += len(flat[key]) + len(value)
            allowed = {json_key(v) for v in value}
            flat[key] = [v for v in flat[key] if json_key(v) in allowed]
        elif key == "const":
            if json_key(flat[key]) != json_key(value):
                raise SchemaUnmet(where, "allOf asks for two different const values")
        elif key in _LOWER_BOUNDS and is_number(value) and is_number(flat[key]):
            flat[key] = max(flat[key], value)
        elif key in _UPPER_BOUNDS and is_number(value) and is_number(flat[key]):
            flat[key] = min(flat[key], value)
        elif key in _SUBSCHEMAS:
            old = flat[key]
            flat[key] = False if value is False or old is False else {"allOf": [old, value]}
        elif key == "multipleOf" and is_number(value) and is_number(flat[key]):
            flat[key] = _common_multiple(flat[key], value)
        elif key == "uniqueItems":
            flat[key] = flat[key] is True or value is True
    return work + len(part)


def properties_of(schema: dict[str, Any]) -> dict[str, Any]:
    declared = schema.get("properties")
    return declared if isinstance(declared, dict) else {}


def _bounded_by_the_other_side(flat: dict[str, Any], part: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Each side's `additionalProperties` holds for the properties only the other side declares: in
    allOf, `{properties: {a}, additionalProperties: false}` forbids the `b` another member declares."""
    mine, theirs = properties_of(flat), properties_of(part)
    if "additionalProperties" in part and any(name not in theirs for name in mine):
        extra = part["additionalProperties"]
        flat["properties"] = {n: s if n in theirs else {"allOf": [s, extra]} for n, s in mine.items()}
    if "additionalProperties" in flat and any(name not in mine for name in theirs):
        extra = flat["additionalProperties"]
        properties = {n: s if n in mine else {"allOf": [s, extra]} for n, s in theirs.items()}
        part = {**part, "properties": properties}
    return part, len(mine) + len(theirs)


def _prefix_bounded_by_the_other_side(flat: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Each side's `items` holds for the positions only the other side's `prefixItems` covers."""
    mine, theirs = flat.get("prefixItems"), part.get("prefixItems")
    mine, theirs = (mine if isinstance(mine, list) else []), (theirs if isinstance(theirs, list) else [])
    if "items" in part and len(mine) > len(theirs):
        extra = part["items"]
        flat["prefixItems"] = [s if i < len(theirs) else {"allOf": [s, extra]} for i, s in enumerate(mine)]
    if "items" in flat and len(theirs) > len(mine):
        extra = flat["items"]
        prefix = [s if i < len(mine) else {"allOf": [s, extra]} for i, s in enumerate(theirs)]
        part = {**part, "prefixItems": prefix}
    return part


def _common_multiple(first: int | float, second: int | float) -> int | float:
    """A step both multipleOf allow: their least common multiple for integers, the larger where it
    is a multiple of the smaller; otherwise the first (best effort)."""
    if isinstance(first, int) and isinstance(second, int) and first > 0 and second > 0:
        return math.lcm(first, second)
    small, large = sorted((first, second))
    return large if small > 0 and is_multiple(large, small) else first


def _type_meet(first: list[Any], second: list[Any]) -> list[str]:
    """The types both lists allow (an integer is a number)."""
    met: list[str] = []
    for kind in first:
        if kind in second or (kind == "integer" and "number" in second):
            met.append(kind)
        elif kind == "number" and "integer" in second:
            met.append("integer")
    return list(dict.fromkeys(met))
