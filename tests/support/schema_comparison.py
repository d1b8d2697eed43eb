"""Where one JSON Schema rejects what another accepts, keyword by keyword: the gateway's request schemas
against the official OpenAI spec's (tests/proxy/test_schemas_follow_spec.py).

Whether one schema accepts everything another does is hard to decide in general; these are written
alike (objects of typed properties, unions told apart by a `role` or `type` value), so they are walked
side by side:

- each schema is unfolded into branches: allOf and $ref merged into one set of constraints, anyOf and
  oneOf split into alternatives;
- each spec branch, for each JSON type it admits, is matched with our least strict branch for that
  type; our if/then/else is decided on a witness, a value of that type carrying the spec branch's
  discriminator (e.g. {"role": "assistant"} for the spec's assistant message);
- the two are compared keyword by keyword, and properties, items, additionalProperties and
  propertyNames recursively.

A finding names the path (`messages[](role=assistant).content`, `logit_bias.*` for any other key), the
keyword, and both sides. oneOf is read as anyOf (that its branches exclude each other is not compared),
`format` and annotations are ignored, and any other keyword is refused (UnknownKeyword) rather than
passed over in silence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import unquote

from jsonschema import Draft202012Validator

TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
_IGNORED = frozenset(
    {"$schema", "$id", "$comment", "$defs", "definitions", "title", "description", "default", "examples"}
    | {"example", "deprecated", "readOnly", "writeOnly", "format", "discriminator", "then", "else"}
)
_ASSERTIONS = frozenset(
    {"type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
    | {"minLength", "maxLength", "pattern", "items", "minItems", "maxItems", "properties", "required"}
    | {"additionalProperties", "propertyNames", "minProperties", "maxProperties"}
    | {"allOf", "anyOf", "oneOf", "$ref", "if"}
)
_NO_WITNESS = object()


class UnknownKeyword(Exception):
    """A keyword the comparison does not know: comparing without it could miss a constraint."""


class Finding(NamedTuple):
    """Our schema rejects values the spec accepts: at `path`, because of `keyword`."""

    path: str
    keyword: str
    ours: Any
    spec: Any

    def __str__(self) -> str:
        return f"{self.path or '(body)'}: {self.keyword}: ours {self.ours!r}, the spec's {self.spec!r}"


Bound = tuple[float, bool]  # (limit, exclusive)


@dataclass(frozen=True)
class Branch:
    """The constraints one alternative puts on a value; sub-schemas are kept as lists of schemas that
    all apply (unfolded when the comparison gets there), so recursive schemas stay finite."""

    types: frozenset[str] | None = None  # None: any; "number" always comes with "integer"
    enum: tuple[Any, ...] | None = None
    low: Bound | None = None
    high: Bound | None = None
    min_length: int = 0
    max_length: int | None = None
    patterns: frozenset[str] = frozenset()
    items: tuple[Any, ...] = ()
    min_items: int = 0
    max_items: int | None = None
    properties: tuple[tuple[str, Any], ...] = ()  # (name, schema), a name may repeat
    additional: tuple[tuple[frozenset[str], Any], ...] = ()  # (names it does not apply to, schema)
    property_names: tuple[Any, ...] = ()
    required: frozenset[str] = frozenset()
    min_properties: int = 0
    max_properties: int | None = None

    def admits(self, json_type: str) -> bool:
        return self.types is None or json_type in self.types

    def schemas_of(self, name: str) -> list[Any]:
        """Every schema that applies to the property `name`."""
        own = [schema for known, schema in self.properties if known == name]
        return own + [schema for names, schema in self.additional if name not in names]

    def schemas_of_other_keys(self) -> list[Any]:
        return [schema for _, schema in self.additional]

    def meet(self, other: Branch) -> Branch | None:
        """Both branches' constraints at once; None when no value can meet them (no common type)."""
        types = self.types if other.types is None else other.types if self.types is None else None
        if self.types is not None and other.types is not None:
            types = self.types & other.types
        if types is not None and not types:
            return None
        enum = self.enum if other.enum is None else other.enum
        if self.enum is not None and other.enum is not None:
            enum = tuple(value for value in self.enum if value in other.enum)
        return Branch(
            types=types,
            enum=enum,
            low=_tighter(self.low, other.low, lowest=False),
            high=_tighter(self.high, other.high, lowest=True),
            min_length=max(self.min_length, other.min_length),
            max_length=_smaller(self.max_length, other.max_length),
            patterns=self.patterns | other.patterns,
            items=self.items + other.items,
            min_items=max(self.min_items, other.min_items),
            max_items=_smaller(self.max_items, other.max_items),
            properties=self.properties + other.properties,
            additional=self.additional + other.additional,
            property_names=self.property_names + other.property_names,
            required=self.required | other.required,
            min_properties=max(self.min_properties, other.min_properties),
            max_properties=_smaller(self.max_properties, other.max_properties),
        )


def _smaller(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _tighter(a: Bound | None, b: Bound | None, *, lowest: bool) -> Bound | None:
    """Of two lower bounds the higher (lowest=False), of two upper bounds the lower; exclusive wins a tie."""
    if a is None or b is None:
        return b if a is None else a
    if a[0] != b[0]:
        return (min if lowest else max)(a, b, key=lambda bound: bound[0])
    return (a[0], a[1] or b[1])


def _own_constraints(schema: dict[str, Any]) -> Branch:
    """The constraints a schema object states itself (not through allOf, anyOf, $ref or if)."""
    types: frozenset[str] | None = None
    if "type" in schema:
        names = [schema["type"]] if isinstance(schema["type"], str) else list(schema["type"])
        types = frozenset(names) | ({"integer"} if "number" in names else set())
    enum = tuple(schema["enum"]) if "enum" in schema else None
    if "const" in schema:
        enum = tuple(value for value in (enum or (schema["const"],)) if value == schema["const"])
    low = _tighter(_bound(schema, "minimum", False), _bound(schema, "exclusiveMinimum", True), lowest=False)
    high = _tighter(_bound(schema, "maximum", False), _bound(schema, "exclusiveMaximum", True), lowest=True)
    properties = tuple(schema.get("properties", {}).items())
    additional: tuple[tuple[frozenset[str], Any], ...] = ()
    if "additionalProperties" in schema:
        additional = ((frozenset(schema.get("properties", {})), schema["additionalProperties"]),)
    return Branch(
        types=types,
        enum=enum,
        low=low,
        high=high,
        min_length=schema.get("minLength", 0),
        max_length=schema.get("maxLength"),
        patterns=frozenset([schema["pattern"]]) if "pattern" in schema else frozenset(),
        items=(schema["items"],) if "items" in schema else (),
        min_items=schema.get("minItems", 0),
        max_items=schema.get("maxItems"),
        properties=properties,
        additional=additional,
        property_names=(schema["propertyNames"],) if "propertyNames" in schema else (),
        required=frozenset(schema.get("required", ())),
        min_properties=schema.get("minProperties", 0),
        max_properties=schema.get("maxProperties"),
    )


def _bound(schema: dict[str, Any], keyword: str, exclusive: bool) -> Bound | None:
    return (schema[keyword], exclusive) if keyword in schema else None


class SchemaSide:
    """One side of the comparison: a root document, against which its `$ref`s resolve."""

    def __init__(self, root: dict[str, Any]) -> None:
        self._root = root
        self._validator = Draft202012Validator(root)

    def branches(self, schemas: Sequence[Any], witness: Any = _NO_WITNESS) -> list[Branch]:
        """The alternatives a value meeting every schema of `schemas` falls in."""
        result = [Branch()]
        for schema in schemas:
            result = _meet_each(result, self._unfold(schema, witness))
        return result

    def _unfold(self, schema: Any, witness: Any) -> list[Branch]:
        if schema is True:
            return [Branch()]
        if schema is False:
            return []
        if not isinstance(schema, dict):
            raise UnknownKeyword(f"not a schema: {schema!r}")
        unknown = {key for key in schema if key not in _ASSERTIONS | _IGNORED and not key.startswith("x-")}
        if unknown:
            raise UnknownKeyword(f"{sorted(unknown)} in {schema!r:.200}")
        result = [_own_constraints(schema)]
        for part in schema.get("allOf", ()):
            result = _meet_each(result, self._unfold(part, witness))
        if "$ref" in schema:
            result = _meet_each(result, self._unfold(self._resolve(schema["$ref"]), witness))
        for union in ("anyOf", "oneOf"):
            if union in schema:
                alternatives = [branch for part in schema[union] for branch in self._unfold(part, witness)]
                result = _meet_each(result, alternatives)
        if "if" in schema:
            if witness is _NO_WITNESS:
                raise UnknownKeyword(f"'if' where no witness decides it: {schema!r:.200}")
            taken = "then" if self._validator.evolve(schema=schema["if"]).is_valid(witness) else "else"
            result = _meet_each(result, self._unfold(schema.get(taken, True), witness))
        return result

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise UnknownKeyword(f"$ref {ref!r} outside the document")
        target: Any = self._root
        for token in ref[2:].split("/"):
            target = target[unquote(token).replace("~1", "/").replace("~0", "~")]
        return target


def _meet_each(these: list[Branch], those: list[Branch]) -> list[Branch]:
    return [met for this in these for that in those if (met := this.meet(that)) is not None]


class Comparison:
    """Finds where `ours` rejects what `spec` accepts (see the module's docstring). A recursive schema
    would recurse without end (a RecursionError): neither side has one."""

    def __init__(self, ours: SchemaSide, spec: SchemaSide) -> None:
        self.ours = ours
        self.spec = spec

    def stricter(self, ours: Sequence[Any], spec: Sequence[Any], path: str = "") -> list[Finding]:
        """Everything our `ours` schemas (all apply) reject that the `spec` schemas accept, at `path`."""
        findings: list[Finding] = []
        for spec_branch in self.spec.branches(spec):
            for json_type in [name for name in TYPES if spec_branch.admits(name)]:
                findings += self._stricter_for(ours, spec_branch, json_type, path)
        return _one_finding_per_keyword(findings)

    def _stricter_for(self, ours: Sequence[Any], spec: Branch, json_type: str, path: str) -> list[Finding]:
        witness, label = self._witness(spec, json_type)
        candidates = [branch for branch in self.ours.branches(ours, witness) if branch.admits(json_type)]
        if not candidates:
            types = sorted(
                {name for branch in self.ours.branches(ours, witness) for name in branch.types or ()}
            )
            return [Finding(path, "type", types, [json_type])]
        return min(
            (self._differences(branch, spec, json_type, path + label) for branch in candidates), key=len
        )

    def _witness(self, spec: Branch, json_type: str) -> tuple[Any, str]:
        """A value of `json_type` as the spec branch fixes it (its required single-valued properties),
        and how the path names that branch, e.g. "(role=assistant)"."""
        if json_type == "object":
            fixed = {}
            for name in sorted(spec.required):
                enums = [branch.enum for branch in self.spec.branches(spec.schemas_of(name))]
                if len({repr(enum) for enum in enums}) == 1 and enums[0] is not None and len(enums[0]) == 1:
                    fixed[name] = enums[0][0]
            return fixed, "".join(f"({name}={value})" for name, value in fixed.items())
        if json_type == "string":
            return next((value for value in spec.enum or () if isinstance(value, str)), ""), ""
        return _SAMPLES[json_type], ""

    def _differences(self, ours: Branch, spec: Branch, json_type: str, path: str) -> list[Finding]:
        found: list[Finding] = []
        if ours.enum is not None:
            allowed = _ALL_OF_TYPE.get(json_type)
            if spec.enum is not None:
                allowed = [value for value in spec.enum if _json_type_of(value) == json_type]
            if allowed is None:
                found.append(Finding(path, "enum", list(ours.enum), f"any {json_type}"))
            elif any(value not in ours.enum for value in allowed):
                found.append(Finding(path, "enum", list(ours.enum), allowed))
        if json_type in ("integer", "number"):
            found += _bound_findings(path, ours, spec)
        elif json_type == "string":
            if ours.min_length > spec.min_length:
                found.append(Finding(path, "minLength", ours.min_length, spec.min_length))
            if ours.max_length is not None and (spec.max_length is None or ours.max_length < spec.max_length):
                found.append(Finding(path, "maxLength", ours.max_length, spec.max_length))
            if ours.patterns - spec.patterns:
                found.append(Finding(path, "pattern", sorted(ours.patterns), sorted(spec.patterns)))
        elif json_type == "array":
            if ours.min_items > spec.min_items:
                found.append(Finding(path, "minItems", ours.min_items, spec.min_items))
            if ours.max_items is not None and (spec.max_items is None or ours.max_items < spec.max_items):
                found.append(Finding(path, "maxItems", ours.max_items, spec.max_items))
            if ours.items:
                found += self.stricter(ours.items, spec.items, f"{path}[]")
        elif json_type == "object":
            found += self._object_differences(ours, spec, path)
        return found

    def _object_differences(self, ours: Branch, spec: Branch, path: str) -> list[Finding]:
        found: list[Finding] = []
        if ours.required - spec.required:
            found.append(
                Finding(path, "required", sorted(ours.required - spec.required), sorted(spec.required))
            )
        if ours.min_properties > spec.min_properties:
            found.append(Finding(path, "minProperties", ours.min_properties, spec.min_properties))
        if ours.max_properties is not None and (
            spec.max_properties is None or ours.max_properties < spec.max_properties
        ):
            found.append(Finding(path, "maxProperties", ours.max_properties, spec.max_properties))
        if ours.property_names:
            found += self.stricter(ours.property_names, spec.property_names, f"{path}(key)")
        prefix = f"{path}." if path else ""
        names = dict.fromkeys(name for name, _ in ours.properties + spec.properties)
        for name in names:
            spec_schemas = spec.schemas_of(name)
            if False in spec_schemas:  # the spec forbids it: anything we say about it is looser
                continue
            found += self.stricter(ours.schemas_of(name), spec_schemas, prefix + name)
        if ours.schemas_of_other_keys():
            found += self.stricter(ours.schemas_of_other_keys(), spec.schemas_of_other_keys(), prefix + "*")
        return found


_ALL_OF_TYPE: dict[str, list[Any]] = {"null": [None], "boolean": [True, False]}
_SAMPLES: dict[str, Any] = {"array": [], "boolean": True, "null": None, "integer": 0, "number": 0.5}


def _bound_findings(path: str, ours: Branch, spec: Branch) -> list[Finding]:
    found = []
    if ours.low is not None and (spec.low is None or _bound_key(ours.low, -1) > _bound_key(spec.low, -1)):
        found.append(Finding(path, "minimum", _show_bound(ours.low), _show_bound(spec.low)))
    if ours.high is not None and (spec.high is None or _bound_key(ours.high, 1) < _bound_key(spec.high, 1)):
        found.append(Finding(path, "maximum", _show_bound(ours.high), _show_bound(spec.high)))
    return found


def _bound_key(bound: Bound, direction: int) -> tuple[float, int]:
    """Orders bounds by how far they let values go: an exclusive bound stops just short of its limit."""
    limit, exclusive = bound
    return (limit, -direction if exclusive else 0)


def _show_bound(bound: Bound | None) -> Any:
    if bound is None:
        return None
    return f"exclusive {bound[0]}" if bound[1] else bound[0]


def _json_type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {str: "string", float: "number", list: "array", dict: "object"}[type(value)]


def _one_finding_per_keyword(findings: list[Finding]) -> list[Finding]:
    """One finding per path and keyword: the types we refuse where the spec takes several gather in one,
    and the same bound found for integers and for numbers (or in two spec branches) is said once."""
    merged: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        key = (finding.path, finding.keyword)
        if key not in merged:
            merged[key] = finding
        elif finding.keyword == "type":
            merged[key] = finding._replace(spec=merged[key].spec + finding.spec)
    return list(merged.values())
