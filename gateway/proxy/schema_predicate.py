"""Compile a JSON Schema into a plain Python predicate that only answers "valid or not".

jsonschema walks a schema through generic machinery (about 0.7 ms for a small chat request); the
compiled predicate answers the same question in about 10 µs, so valid bodies stay cheap.

Unions told apart by a tag (a message's `role`, a part's `type`) are written as if/then pairs, one per
tag value; checking each `if` in turn would cost every message five object checks, so a group of them
on one tag is compiled into one dictionary lookup (_tag_dispatch).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote

Check = Callable[[Any], bool]


class NotPlainJSON(Exception):
    """Raised by a compiled check that meets a Python type orjson never produces."""


class UnsupportedSchema(Exception):
    """The schema uses something the compiler does not know; that schema is left to jsonschema alone."""


_PLAIN_TYPES = frozenset({dict, list, str, int, float, bool, type(None)})
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
    "number": (int, float),
    "integer": (int,),
}
_ANNOTATIONS = frozenset(
    {"$schema", "$comment", "$defs", "title", "description", "default", "examples", "deprecated"}
    | {"readOnly", "writeOnly", "format", "then", "else"}  # then/else are read by "if"; format is not checked
)
_OBJECT_KEYWORDS = (
    "properties",
    "required",
    "additionalProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
)
_KEYWORDS = frozenset(
    {"$id", "$ref", "type", "enum", "const", "allOf", "anyOf", "oneOf", "not", "if"}
    | {"items", "minItems", "maxItems", "minLength", "maxLength", "pattern"}
    | {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
    | set(_OBJECT_KEYWORDS)
)


def _accept(value: Any) -> bool:
    return True


def _reject(value: Any) -> bool:
    return False


def _mismatch(value: Any) -> bool:
    """A failed type test: False for plain JSON, and let jsonschema judge anything else."""
    if type(value) in _PLAIN_TYPES:
        return False
    raise NotPlainJSON


def _not_applicable(value: Any) -> bool:
    """A keyword for another JSON type passes, as in JSON Schema."""
    if type(value) in _PLAIN_TYPES:
        return True
    raise NotPlainJSON


class PredicateCompiler:
    """Turns a JSON Schema (the keywords in _KEYWORDS, local $refs) into one `value -> bool` function."""

    def __init__(self, root: dict[str, Any]) -> None:
        self._root = root
        self._refs: dict[str, Check] = {}
        self.compiled: dict[int, Check] = {}  # id(subschema) -> its check; the schema keeps them alive

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return _accept
        if schema is False:
            return _reject
        if not isinstance(schema, dict):
            raise UnsupportedSchema(f"not a schema: {schema!r}")
        if id(schema) not in self.compiled:
            self.compiled[id(schema)] = self._compile(schema)
        return self.compiled[id(schema)]

    def _compile(self, schema: dict[str, Any]) -> Check:
        unknown = schema.keys() - _KEYWORDS - _ANNOTATIONS
        if unknown:
            raise UnsupportedSchema(f"keywords {sorted(unknown)}")
        if "$id" in schema and schema is not self._root:
            raise UnsupportedSchema("$id below the root")  # $refs below it would resolve elsewhere
        checks: list[Check] = []
        # one type, and a check of that type's keywords: the latter refuses the other types itself, so
        # the schema costs one call, not three (the type's, the keywords', and all_of's)
        only = _single_type(schema)
        typed = [
            self._object_check(schema, strict=only == "object"),
            self._array_check(schema, strict=only == "array"),
            _string_check(schema, strict=only == "string"),
            _number_check(schema, strict=only in ("number", "integer"), integral=only == "integer"),
        ]
        strings = [schema["const"]] if "const" in schema else schema.get("enum")
        slot = _TYPE_SLOTS.get(only) if only is not None else None
        type_covered = slot is not None and typed[slot] is not None
        if only == "string" and isinstance(strings, list) and all(type(option) is str for option in strings):
            type_covered = True  # the enum check refuses what is not one of these strings
        if "type" in schema and not type_covered:
            checks.append(_type_check(schema["type"]))
        if "enum" in schema:
            checks.append(_enum_check(schema["enum"]))
        if "const" in schema:
            checks.append(_enum_check([schema["const"]]))
        checks.extend(check for check in typed if check is not None)
        conditionals = [sub for sub in schema.get("allOf", ()) if _is_tag_branch(sub)]
        if len(conditionals) > 1 and len(conditionals) == len(schema["allOf"]):
            checks.append(self._tag_dispatch(conditionals))
        else:
            checks.extend(self.compile(sub) for sub in schema.get("allOf", ()))
        if "anyOf" in schema:
            checks.append(_any_of([self.compile(sub) for sub in schema["anyOf"]]))
        if "oneOf" in schema:
            checks.append(_one_of([self.compile(sub) for sub in schema["oneOf"]]))
        if "not" in schema:
            checks.append(_negation(self.compile(schema["not"])))
        if "if" in schema and _tag_condition(schema) is not None:
            checks.append(self._tag_dispatch([schema]))
        elif "if" in schema:
            when = self.compile(schema["if"])
            then, otherwise = self.compile(schema.get("then", True)), self.compile(schema.get("else", True))
            checks.append(lambda value: then(value) if when(value) else otherwise(value))
        if "$ref" in schema:
            checks.append(self._ref(schema["$ref"]))
        return _all_of(checks)

    def _tag_dispatch(self, conditionals: list[dict[str, Any]]) -> Check:
        """if/then pairs that each test one tag (see _tag_condition) as one lookup of the tag's value;
        what is not an object, or has a tag that is not plain JSON, takes the pairs one by one."""
        pairs = _all_of([self._if_then(conditional) for conditional in conditionals])
        conditions = [_tag_condition(conditional) for conditional in conditionals]
        keys = {condition[0] for condition in conditions if condition is not None}
        if len(keys) != 1 or None in conditions:  # not one tag for all: one by one
            return pairs
        key = keys.pop()
        by_value: dict[str, list[Check]] = {}
        for conditional, condition in zip(conditionals, conditions, strict=True):
            for value in condition[1] if condition is not None else ():
                by_value.setdefault(value, []).append(self.compile(conditional["then"]))
        table = {value: _all_of(thens) for value, thens in by_value.items()}

        def check(value: Any) -> bool:
            if type(value) is not dict:
                return pairs(value)
            tag = value.get(key, _accept)  # _accept: any object that is not a JSON value
            if type(tag) is str:
                then = table.get(tag)
                return then is None or then(value)
            if tag is _accept or type(tag) in _PLAIN_TYPES:
                return True  # no tag, or not a string: no `if` holds
            raise NotPlainJSON

        return check

    def _if_then(self, schema: dict[str, Any]) -> Check:
        """An if/then pair (no else) the generic way."""
        when, then = self.compile(schema["if"]), self.compile(schema["then"])
        return lambda value: then(value) if when(value) else True

    def _ref(self, ref: Any) -> Check:
        if ref in self._refs:
            return self._refs[ref]
        if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
            raise UnsupportedSchema(f"$ref {ref!r}")
        target: Any = self._root
        for token in ref[2:].split("/") if ref != "#" else ():
            token = unquote(token).replace("~1", "/").replace("~0", "~")
            try:
                target = target[int(token)] if isinstance(target, list) else target[token]
            except (KeyError, IndexError, ValueError, TypeError):
                raise UnsupportedSchema(f"$ref {ref!r}") from None
        cell: list[Check] = []
        self._refs[ref] = lambda value: cell[0](value)  # what a recursive reference sees meanwhile
        cell.append(self.compile(target))
        self._refs[ref] = cell[0]
        return cell[0]

    def _object_check(self, schema: dict[str, Any], strict: bool = False) -> Check | None:
        """The object keywords; another JSON type passes (`strict`: fails, the schema's type being object)."""
        if not any(keyword in schema for keyword in _OBJECT_KEYWORDS):
            return None
        other_type = _mismatch if strict else _not_applicable
        known = {name: self.compile(sub) for name, sub in schema.get("properties", {}).items()}
        known_items = tuple(known.items())
        required = tuple(schema.get("required", ()))
        extra = schema.get("additionalProperties", True)
        additional = None if extra is True else self.compile(extra)
        key_check = None if "propertyNames" not in schema else self.compile(schema["propertyNames"])
        fewest, most = schema.get("minProperties", 0), schema.get("maxProperties")

        def check(value: Any) -> bool:
            if type(value) is not dict:
                return other_type(value)
            if len(value) < fewest or (most is not None and len(value) > most):
                return False
            for name in required:
                if name not in value:
                    return False
            if additional is None and key_check is None and len(known_items) <= len(value):
                for name, sub in known_items:  # fewer schema properties than keys: walk the schema's
                    if name in value and not sub(value[name]):
                        return False
            else:
                for key, item in value.items():
                    check_item = known.get(key, additional)
                    if check_item is not None and not check_item(item):
                        return False
                    if key_check is not None and not key_check(key):
                        return False
            return True

        return check

    def _array_check(self, schema: dict[str, Any], strict: bool = False) -> Check | None:
        if not any(keyword in schema for keyword in ("items", "minItems", "maxItems")):
            return None
        items = self.compile(schema.get("items", True))
        fewest, most = schema.get("minItems", 0), schema.get("maxItems")
        other_type = _mismatch if strict else _not_applicable

        def check(value: Any) -> bool:
            if type(value) is not list:
                return other_type(value)
            if len(value) < fewest or (most is not None and len(value) > most):
                return False
            for item in value:  # noqa: SIM110 - a loop costs half of all() over a generator
                if not items(item):
                    return False
            return True

        return check


def _is_tag_branch(schema: Any) -> bool:
    """An allOf item that is only an if/then on a tag (see _tag_condition)."""
    return isinstance(schema, dict) and schema.keys() == {"if", "then"} and _tag_condition(schema) is not None


def _tag_condition(schema: Any) -> tuple[str, frozenset[str]] | None:
    """The tag and its values, for `{"if": {"required": [tag], "properties": {tag: {"const": value}}},
    "then": ...}` (or an enum of strings): the shape of a tagged union's branch. None for any other
    condition, and where there is an else."""
    if not isinstance(schema, dict) or not {"if", "then"} <= schema.keys() or "else" in schema:
        return None
    condition = schema["if"]
    if not isinstance(condition, dict) or condition.keys() != {"required", "properties"}:
        return None
    required, properties = condition["required"], condition["properties"]
    if not isinstance(required, list) or len(required) != 1 or not isinstance(properties, dict):
        return None
    if list(properties) != required or not isinstance(properties[required[0]], dict):
        return None
    values = _tag_values(properties[required[0]])
    return None if values is None else (required[0], values)


def _tag_values(schema: dict[str, Any]) -> frozenset[str] | None:
    """The strings a tag's schema allows, if it is only a const or an enum of strings."""
    if schema.keys() == {"const"}:
        options = [schema["const"]]
    elif schema.keys() == {"enum"} and isinstance(schema["enum"], list):
        options = schema["enum"]
    else:
        return None
    return frozenset(options) if all(type(option) is str for option in options) else None


_TYPE_SLOTS = {"object": 0, "array": 1, "string": 2, "number": 3, "integer": 3}  # in _compile's `typed`


def _single_type(schema: dict[str, Any]) -> str | None:
    """The one type a schema's `type` names (None: none, or several)."""
    names = schema.get("type")
    if isinstance(names, list) and len(names) == 1:
        names = names[0]
    return names if isinstance(names, str) else None


def _type_check(names: Any) -> Check:
    names = [names] if isinstance(names, str) else list(names)
    if not all(name in _PYTHON_TYPES for name in names):
        raise UnsupportedSchema(f"type {names!r}")
    exact = frozenset(python_type for name in names for python_type in _PYTHON_TYPES[name])
    integral_floats = "integer" in names and "number" not in names  # 2.0 is an integer in JSON Schema

    def check(value: Any) -> bool:
        value_type = type(value)
        if value_type in exact:
            return True
        if value_type is float and integral_floats:
            return bool(value.is_integer())
        return _mismatch(value)

    return check


def _enum_check(options: Sequence[Any]) -> Check:
    if not all(option is None or type(option) is str for option in options):
        raise UnsupportedSchema("enum values other than strings and null")
    strings = frozenset(options) - {None}
    null_allowed = None in options

    def check(value: Any) -> bool:
        if type(value) is str:
            return value in strings
        if value is None:
            return null_allowed
        return _mismatch(value)

    return check


def _string_check(schema: dict[str, Any], strict: bool = False) -> Check | None:
    if not any(keyword in schema for keyword in ("minLength", "maxLength", "pattern")):
        return None
    shortest, longest = schema.get("minLength", 0), schema.get("maxLength")
    search = re.compile(schema["pattern"]).search if "pattern" in schema else None
    other_type = _mismatch if strict else _not_applicable

    def check(value: Any) -> bool:
        if type(value) is not str:
            return other_type(value)
        if len(value) < shortest or (longest is not None and len(value) > longest):
            return False
        return search is None or search(value) is not None

    return check


def _number_check(schema: dict[str, Any], strict: bool = False, integral: bool = False) -> Check | None:
    """The bounds; another JSON type passes (`strict`: fails, and with `integral` so does a float with
    a fraction: the schema's type being number or integer)."""
    bounds = [schema.get(name) for name in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")]
    if all(bound is None for bound in bounds):
        return None
    low, high, above, below = bounds
    other_type = _mismatch if strict else _not_applicable

    def check(value: Any) -> bool:
        if type(value) is not int and type(value) is not float:
            return other_type(value)
        if integral and type(value) is float and not value.is_integer():
            return False
        return (
            (low is None or value >= low)
            and (high is None or value <= high)
            and (above is None or value > above)
            and (below is None or value < below)
        )

    return check


def _all_of(checks: list[Check]) -> Check:
    return _accept if not checks else _first_deciding(checks, decides=False)


def _any_of(checks: list[Check]) -> Check:
    return _first_deciding(checks, decides=True)


def _first_deciding(checks: list[Check], decides: bool) -> Check:
    """allOf (`decides` False: the first check that fails decides) or anyOf (True: the first that
    passes), without a generator: a loop costs half of all() / any() over one."""
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        if decides:
            return lambda value: first(value) or second(value)
        return lambda value: first(value) and second(value)
    every = tuple(checks)

    def check(value: Any) -> bool:
        for one in every:
            if one(value) == decides:
                return decides
        return not decides

    return check


def _one_of(checks: list[Check]) -> Check:
    return lambda value: sum(1 for check in checks if check(value)) == 1


def _negation(check: Check) -> Check:
    return lambda value: not check(value)
