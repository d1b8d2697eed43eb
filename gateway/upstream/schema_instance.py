"""A value valid against a JSON Schema, made deterministically: what the built-in mock answers to
structured output (`response_format: json_schema`) and writes as tool-call arguments.

The value is written along the schema: `$ref` (inside the schema: `#`, `#/$defs/...`, any JSON
pointer) and `allOf` are merged into one schema first (schema_merge); `anyOf`/`oneOf` take the first
branch that can be made; `const` and `enum` give a value of theirs that meets the other keywords; a
type list tries each type (null last); objects get every declared property (a strict schema lists them
all as required), arrays two items unless minItems/maxItems say otherwise, strings a short free text
("You said: ...", schema_text) or an example of their `format` or `pattern` (regex_example), numbers a
value within their bounds and `multipleOf` (schema_number). The same schema, seed and text give the
same value. A `oneOf` whose first branch also matches another, a pattern that leans on a look-around,
and a `format` together with a `pattern` may give a value that is not valid: a demo's value, not a
solver's.

A schema is client input, so the work is bounded whatever it says: at most MAX_DEPTH levels of arrays
and objects (from SOFT_DEPTH on, only what is required: a recursive model ends where it may), at most
MAX_ITEMS items in an array, MAX_STRING_LENGTH characters in a string, MAX_VALUE_CHARS characters of
JSON in all, MAX_STEPS steps of work and MAX_MERGED schemas merged into one. What the caps do not
allow raises SchemaUnmet naming the place in the value and the keyword, which the mock answers as a
400: an honest "no", never a value that breaks the schema to fit a cap.
"""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import unquote

from gateway import json_codec
from gateway.upstream.regex_example import NoTextFits, text_matching
from gateway.upstream.schema_keywords import (
    SchemaTooLarge,
    SchemaUnmet,
    as_list,
    count_within,
    has_kind,
    is_number,
    json_key,
    kinds_of,
    list_or_empty,
    maximum_count,
    minimum_count,
)
from gateway.upstream.schema_merge import merge_into, properties_of
from gateway.upstream.schema_number import NumberPicker
from gateway.upstream.schema_text import fit_length, format_example, short_text

MAX_DEPTH = 32  # levels of arrays and objects in one value
SOFT_DEPTH = 4  # from this level on, objects get only their required properties, arrays their minItems
MAX_ITEMS = 64  # items in one array (and properties added to reach minProperties)
MAX_STRING_LENGTH = 65_536  # characters in one string
MAX_VALUE_CHARS = 1_048_576  # characters of JSON in one value, about
MAX_STEPS = 100_000  # units of work for one value (a sub-schema visited, merged or copied): ~100 ms
MAX_MERGED = 256  # schemas ($ref targets and allOf members) merged into the schema of one value
DEFAULT_ITEMS = 2  # items in an array that does not ask for a number


def schema_instance(schema: Any, *, seed: str, text: str) -> Any:
    """A value valid against `schema`; `seed` picks among the valid ones, `text` fills free strings."""
    return _Maker(schema, seed, text).make(schema, "$", 0)


class _Maker:
    __slots__ = ("_chars", "_refs", "_rng", "_root", "_steps", "_text")

    def __init__(self, root: Any, seed: str, text: str) -> None:
        self._root = root
        self._rng = random.Random(seed)
        self._text = short_text(text) or "text"
        self._steps = 0
        self._chars = 0
        self._refs: dict[str, Any] = {}

    # ---- budgets ------------------------------------------------------------------------------------
    def _spend(self, steps: int, where: str) -> None:
        self._steps += steps
        if self._steps > MAX_STEPS:
            reason = f"the schema needs more than the {MAX_STEPS} steps of work the mock spends on one value"
            raise SchemaTooLarge(where, reason)

    def _charge(self, chars: int, where: str) -> None:
        self._chars += chars
        if self._chars > MAX_VALUE_CHARS:
            reason = f"the value would be longer than the {MAX_VALUE_CHARS} characters the mock writes"
            raise SchemaTooLarge(where, reason)

    # ---- any schema -----------------------------------------------------------------------------------
    def make(self, schema: Any, where: str, depth: int) -> Any:
        self._spend(1, where)
        flat = self._flatten(schema, where)
        alternatives = flat.pop("anyOf", None)
        if alternatives is not None:
            return self._first_branch(flat, alternatives, where, depth)
        if "const" in flat or "enum" in flat:
            return self._listed(flat, where)
        kinds = kinds_of(flat, null_first=depth >= SOFT_DEPTH)
        if not kinds:
            declared = flat.get("type")
            reason = (
                f"no value has the type {declared!r}" if declared else "allOf asks for types no value has"
            )
            raise SchemaUnmet(where, reason)
        first_failure: SchemaUnmet | None = None
        for kind in kinds:
            try:
                return self._typed(kind, flat, where, depth)
            except SchemaTooLarge:
                raise
            except SchemaUnmet as failure:
                first_failure = first_failure or failure
        assert first_failure is not None
        raise first_failure

    def _first_branch(self, rest: dict[str, Any], alternatives: Any, where: str, depth: int) -> Any:
        if not isinstance(alternatives, list) or not alternatives:
            raise SchemaUnmet(where, "anyOf/oneOf lists no schema")
        ordered = alternatives if depth < SOFT_DEPTH else sorted(alternatives, key=_cost)
        first_failure: SchemaUnmet | None = None
        for branch in ordered:
            try:
                return self.make({"allOf": [rest, branch]}, where, depth)
            except SchemaTooLarge:
                raise
            except SchemaUnmet as failure:
                first_failure = first_failure or failure
        assert first_failure is not None
        raise first_failure

    def _flatten(self, schema: Any, where: str) -> dict[str, Any]:
        """One schema without `$ref` and `allOf`: their schemas merged in (a new dict, the client's
        untouched). A second `anyOf`/`oneOf` waits in `allOf` for the first to be decided."""
        flat: dict[str, Any] = {}
        waiting: list[Any] = []
        pending = [schema]  # a stack: the next part is the last
        merged = 0
        while pending:
            part = pending.pop()
            merged += 1
            if merged > MAX_MERGED:
                raise SchemaUnmet(where, f"more than {MAX_MERGED} schemas ($ref, allOf) make up this value")
            if part is False:
                raise SchemaUnmet(where, "the schema is false: no value is valid")
            if not isinstance(part, dict):
                continue  # true, or not a schema at all
            if "$ref" in part or "allOf" in part:
                parts: list[Any] = [{k: v for k, v in part.items() if k not in ("$ref", "allOf")}]
                if "$ref" in part:
                    parts.append(self._target(part["$ref"], where))
                if isinstance(part.get("allOf"), list):
                    parts += part["allOf"]
                pending += reversed(parts)
                continue
            self._spend(1 + merge_into(flat, part, waiting, where), where)
        if waiting:
            flat["allOf"] = [{"anyOf": group} for group in waiting]
        return flat

    def _target(self, ref: Any, where: str) -> Any:
        if isinstance(ref, str) and ref in self._refs:
            return self._refs[ref]
        if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
            reason = f"$ref {ref!r}: the mock follows only references inside the schema (#/...)"
            raise SchemaUnmet(where, reason)
        node = self._root
        for token in ref[2:].split("/") if ref != "#" else ():
            key = unquote(token).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise SchemaUnmet(where, f"$ref {ref!r} points at nothing in the schema")
        self._refs[ref] = node
        return node

    def _listed(self, flat: dict[str, Any], where: str) -> Any:
        """The `const`, or one of the `enum` values, that meets the schema's other keywords."""
        if "const" in flat:
            keyword, values = "const", [flat.pop("const")]
        else:
            keyword, values = "enum", flat.pop("enum")
        if not isinstance(values, list):
            raise SchemaUnmet(where, "enum is not a list")
        choices = [v for v in values if self._conforms(v, flat, where)]
        if not choices:
            others = "the other keywords" if flat else "anything"
            raise SchemaUnmet(where, f"no value of the {keyword} meets {others} of the schema")
        value = self._rng.choice(choices)
        self._charge(len(json_codec.dumps(value)), where)
        return value

    # ---- whether a given value (a const, an enum's) is valid --------------------------------------------
    def _conforms_to(self, value: Any, schema: Any, where: str) -> bool:
        try:
            flat = self._flatten(schema, where)
        except SchemaTooLarge:
            raise
        except SchemaUnmet:
            return False
        return self._conforms(value, flat, where)

    def _conforms(self, value: Any, flat: dict[str, Any], where: str) -> bool:
        """Whether `value` is valid against a flattened schema: types, const and enum, bounds, lengths,
        and the items and properties inside it. `pattern` and `format` are not checked (a client's
        pattern is never run)."""
        self._spend(1, where)
        if "type" in flat and not any(has_kind(value, k) for k in as_list(flat["type"])):
            return False
        if "const" in flat and json_key(flat["const"]) != json_key(value):
            return False
        if isinstance(flat.get("enum"), list):
            self._spend(len(flat["enum"]), where)
            if json_key(value) not in {json_key(v) for v in flat["enum"]}:
                return False
        alternatives = flat.get("anyOf")
        if isinstance(alternatives, list) and not any(
            self._conforms_to(value, b, where) for b in alternatives
        ):
            return False
        if any(not self._conforms_to(value, group, where) for group in list_or_empty(flat.get("allOf"))):
            return False
        if is_number(value):
            return NumberPicker(flat, False, self._rng, where).fits(value)
        if isinstance(value, str):
            return count_within(len(value), flat, "minLength", "maxLength")
        if isinstance(value, list):
            return self._array_conforms(value, flat, where)
        if isinstance(value, dict):
            return self._object_conforms(value, flat, where)
        return True

    def _array_conforms(self, value: list[Any], flat: dict[str, Any], where: str) -> bool:
        if not count_within(len(value), flat, "minItems", "maxItems"):
            return False
        if flat.get("uniqueItems") is True and len({json_key(v) for v in value}) < len(value):
            return False
        prefix, items = flat.get("prefixItems"), flat.get("items", True)
        if isinstance(items, list):
            prefix, items = items, flat.get("additionalItems", True)
        prefix = list_or_empty(prefix)
        for index, item in enumerate(value):
            if not self._conforms_to(item, prefix[index] if index < len(prefix) else items, where):
                return False
        contains = flat.get("contains")
        return contains is None or any(self._conforms_to(item, contains, where) for item in value)

    def _object_conforms(self, value: dict[str, Any], flat: dict[str, Any], where: str) -> bool:
        if not count_within(len(value), flat, "minProperties", "maxProperties"):
            return False
        if any(isinstance(name, str) and name not in value for name in list_or_empty(flat.get("required"))):
            return False
        properties = properties_of(flat)
        extra = flat.get("additionalProperties", True)
        return all(self._conforms_to(v, properties.get(k, extra), where) for k, v in value.items())

    def _typed(self, kind: str, flat: dict[str, Any], where: str, depth: int) -> Any:
        if kind == "object":
            return self._object(flat, where, depth)
        if kind == "array":
            return self._array(flat, where, depth)
        if kind == "string":
            return self._string(flat, where)
        if kind in ("integer", "number"):
            self._charge(8, where)
            return NumberPicker(flat, kind == "integer", self._rng, where).pick()
        self._charge(5, where)
        return self._rng.random() < 0.5 if kind == "boolean" else None

    # ---- objects and arrays -------------------------------------------------------------------------
    def _child(self, schema: Any, where: str, depth: int) -> Any:
        if depth + 1 > MAX_DEPTH:
            raise SchemaUnmet(where, f"the value nests more than {MAX_DEPTH} levels of arrays and objects")
        return self.make(schema, where, depth + 1)

    def _object(self, flat: dict[str, Any], where: str, depth: int) -> dict[str, Any]:
        declared = flat.get("properties")
        properties: dict[str, Any] = declared if isinstance(declared, dict) else {}
        listed = flat.get("required")
        required = dict.fromkeys(r for r in listed if isinstance(r, str)) if isinstance(listed, list) else {}
        extra = flat.get("additionalProperties", True)
        minimal = depth >= SOFT_DEPTH
        names = [n for n in properties if not minimal or n in required]
        names += [n for n in required if n not in properties]
        value: dict[str, Any] = {}
        for name in names:
            if name not in properties and extra is False:
                reason = f"'{name}' is required but not a property, and additionalProperties is false"
                raise SchemaUnmet(where, reason)
            schema = properties.get(name, extra)
            self._charge(len(name) + 4, where)
            if name in required:
                value[name] = self._child(schema, f"{where}.{name}", depth)
                continue
            try:
                value[name] = self._child(schema, f"{where}.{name}", depth)
            except SchemaTooLarge:
                raise
            except SchemaUnmet:
                continue  # an optional property the caps do not allow: left out
        self._fit_property_count(flat, value, required, where, depth)
        return value

    def _fit_property_count(
        self, flat: dict[str, Any], value: dict[str, Any], required: dict[str, None], where: str, depth: int
    ) -> None:
        """Properties added (property_1, ...) up to minProperties, optional ones dropped down to
        maxProperties."""
        extra = flat.get("additionalProperties", True)
        least, most = minimum_count(flat, "minProperties"), maximum_count(flat, "maxProperties")
        if most is not None and most < least:
            raise SchemaUnmet(where, f"minProperties {least} is more than maxProperties {most}")
        if least > len(value):
            if extra is False:
                raise SchemaUnmet(where, f"minProperties {least}, but additionalProperties is false")
            if least - len(value) > MAX_ITEMS:
                raise SchemaUnmet(where, f"minProperties {least} is more than the mock adds ({MAX_ITEMS})")
            number = 0
            while len(value) < least:
                number += 1
                if f"property_{number}" not in value:
                    name = f"property_{number}"
                    value[name] = self._child(extra, f"{where}.{name}", depth)
        if most is not None:
            for name in [n for n in reversed(value) if n not in required][: max(0, len(value) - most)]:
                del value[name]
            if len(value) > most:
                raise SchemaUnmet(where, f"maxProperties {most} is less than the {len(value)} required")

    def _array(self, flat: dict[str, Any], where: str, depth: int) -> list[Any]:
        least, most = minimum_count(flat, "minItems"), maximum_count(flat, "maxItems")
        if least > MAX_ITEMS:
            raise SchemaUnmet(where, f"minItems {least} is more than the {MAX_ITEMS} items the mock makes")
        if most is not None and most < least:
            raise SchemaUnmet(where, f"minItems {least} is more than maxItems {most}")
        cap = MAX_ITEMS if most is None else min(most, MAX_ITEMS)
        prefix, items = flat.get("prefixItems"), flat.get("items", True)
        if isinstance(items, list):  # the tuple form of drafts 4 to 7
            prefix, items = items, flat.get("additionalItems", True)
        prefix = prefix if isinstance(prefix, list) else []
        contains = flat.get("contains") if flat.get("minContains", 1) != 0 else None
        wanted = least if depth >= SOFT_DEPTH else max(least, min(cap, max(DEFAULT_ITEMS, len(prefix))))
        if contains is not None:  # the item after the prefix holds it: that one is required too
            if len(prefix) + 1 > cap:
                raise SchemaUnmet(where, f"contains needs item {len(prefix)}, but maxItems is {most}")
            least = max(least, len(prefix) + 1)
            wanted = max(wanted, least)
        unique = flat.get("uniqueItems") is True
        seen: set[Any] = set()
        value: list[Any] = []
        for index in range(wanted):
            schema = prefix[index] if index < len(prefix) else items
            if index == len(prefix) and contains is not None:
                schema = {"allOf": [items, contains]}
            try:
                item = self._item(schema, f"{where}[{index}]", depth, seen if unique else None)
            except SchemaTooLarge:
                raise
            except SchemaUnmet:
                if index < least:
                    raise
                break  # an item beyond minItems the caps do not allow: the array ends here
            value.append(item)
            self._charge(1, where)
        return value

    def _item(self, schema: Any, where: str, depth: int, seen: set[Any] | None) -> Any:
        if seen is None:
            return self._child(schema, where, depth)
        for _ in range(8):  # a different draw of the generator each time
            item = self._child(schema, where, depth)
            key = json_key(item)
            if key not in seen:
                seen.add(key)
                return item
        raise SchemaUnmet(where, "uniqueItems: the mock could not make an item unlike the others")

    # ---- strings ------------------------------------------------------------------------------------
    def _string(self, flat: dict[str, Any], where: str) -> str:
        least, most = minimum_count(flat, "minLength"), maximum_count(flat, "maxLength")
        if least > MAX_STRING_LENGTH:
            reason = f"minLength {least} is more than the {MAX_STRING_LENGTH} characters the mock writes"
            raise SchemaUnmet(where, reason)
        if most is not None and most < least:
            raise SchemaUnmet(where, f"minLength {least} is more than maxLength {most}")
        cap = MAX_STRING_LENGTH if most is None else min(most, MAX_STRING_LENGTH)
        text = None
        pattern = flat.get("pattern")
        if isinstance(pattern, str):
            try:
                text = text_matching(pattern, self._rng, least, cap)
            except NoTextFits as unfit:
                raise SchemaUnmet(where, f"pattern {pattern!r}: {unfit}") from None
        form = flat.get("format")
        if text is None and isinstance(form, str):
            text = format_example(form, self._rng)
            if text is not None and not least <= len(text) <= cap:
                raise SchemaUnmet(where, f"the mock's {form} ({text!r}) has not {least} to {cap} characters")
        if text is None:
            text = fit_length(self._text, least, cap)
        self._charge(len(text) + 2, where)
        return text


def _cost(branch: Any) -> int:
    """How far a branch may lead (0: null, 1: another scalar, 2: anything else): past SOFT_DEPTH the
    cheapest branch goes first, so `Optional[Node]` ends a recursive model with null."""
    if not isinstance(branch, dict) or "$ref" in branch or "allOf" in branch:
        return 2
    kinds = as_list(branch.get("type")) if "type" in branch else []
    if "null" in kinds:
        return 0
    if kinds and not {"object", "array"} & set(kinds):
        return 1
    return 2
