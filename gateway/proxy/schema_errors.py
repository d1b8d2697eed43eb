"""Find why a body fails its schema, and word the most relevant error as an OpenAI-style 400.

jsonschema's `properties`, `items`, `additionalProperties` and `propertyNames` keywords are swapped for
versions that skip the values the compiled predicates pass and stop at the first bad array item, so a
long conversation with one bad message costs no more than that message. The chosen error becomes a
GatewayError worded like OpenAI's (`message`, `param` such as "messages[0].role", `code`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import create

from gateway import json_codec
from gateway.errors import GatewayError
from gateway.proxy.schema_predicate import Check, NotPlainJSON

_Keyword = Callable[[Any, Any, Any, Any], Iterator[ValidationError]]


def error_finder_class(compiled: dict[int, Check]) -> type[Validator]:
    """Draft 2020-12 whose applicators descend only into values that fail their compiled check.

    An array stops at its first bad item: one is enough for a message, and a body of 100,000 bad
    token IDs would otherwise build 100,000 errors. Values whose subschema has no compiled check
    are always descended into, so the errors found are the same, only fewer.
    """
    standard: dict[str, _Keyword] = Draft202012Validator.VALIDATORS

    def fails(subschema: Any, value: Any) -> bool:
        check = compiled.get(id(subschema))
        try:
            return check is None or not check(value)
        except NotPlainJSON:
            return True

    def properties(validator: Any, known: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
        if type(instance) is not dict:
            yield from standard["properties"](validator, known, instance, schema)
            return
        for name, subschema in known.items():
            if name in instance and fails(subschema, instance[name]):
                yield from validator.descend(instance[name], subschema, path=name, schema_path=name)

    def items(validator: Any, each: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
        if type(instance) is not list or "prefixItems" in schema or each is False:
            yield from standard["items"](validator, each, instance, schema)
            return
        for index, item in enumerate(instance):
            if fails(each, item):
                yield from validator.descend(item, each, path=index)
                return

    def additional(validator: Any, extra: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
        if type(instance) is not dict or type(extra) is not dict or "patternProperties" in schema:
            yield from standard["additionalProperties"](validator, extra, instance, schema)
            return
        known = schema.get("properties", {})
        for name, value in instance.items():
            if name not in known and fails(extra, value):
                yield from validator.descend(value, extra, path=name)
                return

    def names(validator: Any, key_schema: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
        if type(instance) is not dict:
            yield from standard["propertyNames"](validator, key_schema, instance, schema)
            return
        for name in instance:
            if fails(key_schema, name):
                yield from validator.descend(name, key_schema)
                return

    overrides = {"properties": properties, "items": items, "additionalProperties": additional}
    # create()'s defaults (type checker, format checker, $id lookup) are draft 2020-12's.
    return create(Draft202012Validator.META_SCHEMA, {**standard, **overrides, "propertyNames": names})


# --- Choosing the most relevant error, and wording it like OpenAI -------------------------------------


class _Problem(NamedTuple):
    keyword: str
    expected: Any  # the keyword's value in the schema
    value: Any  # the offending value (the whole object, for "required")
    path: tuple[str | int, ...]
    schema: Any  # the schema holding the keyword
    message: str  # jsonschema's own wording, the last resort
    in_key: bool  # the value is a property name (propertyNames)

    @classmethod
    def of(cls, error: ValidationError, expected: Any = None) -> _Problem:
        in_key = "propertyNames" in error.absolute_schema_path
        expected = error.validator_value if expected is None else expected
        return cls(
            str(error.validator),
            expected,
            error.instance,
            tuple(error.absolute_path),
            error.schema,
            error.message,
            in_key,
        )


_KEYWORD_RANK = {"required": 0, "type": 1, "enum": 2, "const": 2, "anyOf": 4, "oneOf": 4}


def error_for(validator: Validator, body: Any) -> GatewayError | None:
    try:
        errors = list(validator.iter_errors(body))
    except RecursionError:
        return invalid_request("Invalid request body: a value is nested too deeply.", None, "invalid_value")
    if not errors:
        return None
    return _gateway_error(_problem(min(errors, key=_rank)))


def _rank(error: ValidationError) -> tuple[int, int]:
    """Shallow errors first; at one depth, a missing field, then a wrong type, then a wrong value."""
    depth = len(error.absolute_path) + (error.validator == "required")
    return depth, _KEYWORD_RANK.get(str(error.validator), 3)


def _problem(error: ValidationError) -> _Problem:
    """Inside anyOf/oneOf, follow the branch that got furthest into the value before failing."""
    while error.context:
        firsts: dict[str | int, ValidationError] = {}  # each branch's first error, in document order
        for sub in error.context:
            branch = sub.relative_schema_path[0]
            if branch not in firsts or _position(sub) < _position(firsts[branch]):
                firsts[branch] = sub
        best = max(firsts.values(), key=lambda sub: (_position(sub), sub.validator != "type"))
        if best.validator == "type":  # every branch wants another type here: name them all
            wanted: list[str] = []
            for sub in firsts.values():
                if sub.validator == "type" and sub.absolute_path == best.absolute_path:
                    names: Any = sub.validator_value
                    wanted += [names] if isinstance(names, str) else names
            return _Problem.of(best, expected=list(dict.fromkeys(wanted)))
        error = best
    return _Problem.of(error)


def _position(error: ValidationError) -> tuple[tuple[int, int | str], ...]:
    """A sort key for where an error is in the document (array indexes and keys never compare directly)."""
    return tuple((0, step) if isinstance(step, int) else (1, step) for step in error.absolute_path)


def _gateway_error(problem: _Problem) -> GatewayError:
    keyword, expected, value = problem.keyword, problem.expected, problem.value
    if keyword == "required":
        missing = next((name for name in expected if name not in value), expected[0])
        param = _param((*problem.path, missing))
        return invalid_request(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    param = _param(problem.path)
    where = f"'{param}'" if param else "the request body"
    if keyword == "additionalProperties" and isinstance(value, dict) and isinstance(problem.schema, dict):
        known = problem.schema.get("properties", {})
        unknown = next((key for key in value if key not in known), None)
        if unknown is not None:
            param = _param((*problem.path, unknown))
            return invalid_request(
                f"Unrecognized request argument supplied: {param}", param, "unknown_parameter"
            )
    if problem.in_key:
        return invalid_request(
            f"Invalid key {_show(value)} in {where}: {_clause(problem)}.", param, "invalid_value"
        )
    if keyword == "type":
        names = [expected] if isinstance(expected, str) else expected
        words = [_TYPE_WORDS[name] for name in names if name != "null"] or ["null"]
        got = a_json_type(value)
        message = f"Invalid type for {where}: expected {_one_of_words(words)}, but got {got} instead."
        return invalid_request(message, param, "invalid_type")
    return invalid_request(f"Invalid value for {where}: {_clause(problem)}.", param, "invalid_value")


def _clause(problem: _Problem) -> str:
    """What is wrong with the value, e.g. "must be at most 2, got 3"."""
    keyword, expected, value = problem.keyword, problem.expected, problem.value
    if keyword == "enum":
        return f"{_show(value)} is not one of {', '.join(_show(option) for option in expected)}"
    if keyword == "const":
        return f"must be {_show(expected)}, got {_show(value)}"
    if keyword == "pattern":
        return f"{_show(value)} does not match the pattern '{expected}'"
    if keyword in _BOUNDS:
        return f"must be {_BOUNDS[keyword]} {_show(expected)}, got {_show(value)}"
    if keyword in _SIZES:
        limit = _SIZES[keyword].format(n=expected, s="" if expected == 1 else "s")
        return f"must {limit}, got {len(value)}"
    message = problem.message if len(problem.message) <= 200 else problem.message[:200] + "..."
    return message.rstrip(".")


_BOUNDS = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "greater than",
    "exclusiveMaximum": "less than",
}
_SIZES = {
    "minItems": "contain at least {n} item{s}",
    "maxItems": "contain at most {n} item{s}",
    "minLength": "be at least {n} character{s} long",
    "maxLength": "be at most {n} character{s} long",
    "minProperties": "have at least {n} key{s}",
    "maxProperties": "have at most {n} key{s}",
}
_TYPE_WORDS = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "boolean": "a boolean",
    "number": "a number",
    "integer": "an integer",
    "null": "null",
}
_WORD_FOR_TYPE: dict[type, str] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def _param(path: Sequence[str | int]) -> str | None:
    """OpenAI's way of naming a field: messages[0].content[1].image_url.url"""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else f".{step}" if text else str(step)
    return text or None


def a_json_type(value: Any) -> str:
    return _WORD_FOR_TYPE.get(type(value), "an unsupported value")


def _one_of_words(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _show(value: Any) -> str:
    """A short rendering of a JSON value for a message."""
    if isinstance(value, str):
        return f"'{value}'" if len(value) <= 40 else f"'{value[:40]}...'"
    if value is None or isinstance(value, bool):
        return json_codec.dumps_str(value)
    if isinstance(value, int | float):
        return repr(value)
    try:
        text = json_codec.dumps_str(value)
    except TypeError:  # orjson's encode error: too deep, or not JSON at all
        return a_json_type(value)
    return text if len(text) <= 60 else f"{text[:60]}..."


def invalid_request(message: str, param: str | None, code: str | None) -> GatewayError:
    return GatewayError(400, message, type_="invalid_request_error", param=param, code=code)
