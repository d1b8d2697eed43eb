"""Decode a request body and check it against the JSON Schema of its operation, with OpenAI-style errors.

Every request passes through here, so a valid body has to be cheap. jsonschema walks a schema through
generic machinery (about 0.7 ms for a small chat request), so each schema is also compiled once into a
plain Python predicate that only answers "valid or not" (a few microseconds). jsonschema runs only when
that predicate says no: it lists the errors, and the most relevant one becomes the 400 the client sees,
worded like OpenAI's (`message`, `param` such as "messages[0].role", `code`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple
from urllib.parse import unquote

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from gateway import json_codec
from gateway.errors import GatewayError
from gateway.schema_files import load_schema

SCHEMA_FILES = {
    "chat": "chat_completion_request.schema.json",
    "completions": "completion_request.schema.json",
    "embeddings": "embedding_request.schema.json",
}

_NOT_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The API expects a JSON payload, but what was sent was not valid JSON.)"
)


def decode_json_body(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying what is wrong with it."""
    try:
        body = json_codec.loads(raw)
    except json_codec.JSONDecodeError as exc:
        if not raw.strip():
            message = (
                "We could not parse the JSON body of your request: the body is empty. "
                "Send a JSON object, with the header 'Content-Type: application/json'."
            )
            raise _invalid(message, None, None) from None
        raise _invalid(f"{_NOT_JSON} Parser error: {exc}.", None, None) from None
    if type(body) is not dict:
        message = f"Invalid type for the request body: expected a JSON object, but got {_a(body)} instead."
        raise _invalid(message, None, "invalid_type")
    return body


class RequestValidator:
    """Checks request bodies against the schemas in SCHEMA_FILES; build it once and share it."""

    def __init__(self) -> None:
        self._operations: dict[str, tuple[_Check, Draft202012Validator]] = {}
        for operation, name in SCHEMA_FILES.items():
            schema = load_schema(name)
            Draft202012Validator.check_schema(schema)
            validator = Draft202012Validator(schema)
            self._operations[operation] = (_compile_predicate(schema) or validator.is_valid, validator)

    def validate(self, operation: str, body: dict[str, Any]) -> None:
        """Return if `body` is valid for `operation` ("chat", "completions", "embeddings"); else a 400."""
        is_valid, validator = self._operations[operation]
        try:
            if is_valid(body):
                return
        except _NotPlainJSON:
            pass  # a value orjson never produces: jsonschema decides
        error = _error_for(validator, body)
        if error is not None:
            raise error


# --- The fast path: a schema compiled into nested closures ---------------------------------------------

_Check = Callable[[Any], bool]


class _NotPlainJSON(Exception):
    """Raised by a compiled check that meets a Python type orjson never produces."""


class _Unsupported(Exception):
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


def _compile_predicate(schema: dict[str, Any]) -> _Check | None:
    try:
        return _PredicateCompiler(schema).compile(schema)
    except _Unsupported:
        return None


def _accept(value: Any) -> bool:
    return True


def _reject(value: Any) -> bool:
    return False


def _mismatch(value: Any) -> bool:
    """A failed type test: False for plain JSON, and let jsonschema judge anything else."""
    if type(value) in _PLAIN_TYPES:
        return False
    raise _NotPlainJSON


def _not_applicable(value: Any) -> bool:
    """A keyword for another JSON type passes, as in JSON Schema."""
    if type(value) in _PLAIN_TYPES:
        return True
    raise _NotPlainJSON


class _PredicateCompiler:
    """Turns a JSON Schema (the keywords in _KEYWORDS, local $refs) into one `value -> bool` function."""

    def __init__(self, root: dict[str, Any]) -> None:
        self._root = root
        self._refs: dict[str, _Check] = {}

    def compile(self, schema: Any) -> _Check:
        if schema is True:
            return _accept
        if schema is False:
            return _reject
        if not isinstance(schema, dict):
            raise _Unsupported(f"not a schema: {schema!r}")
        unknown = schema.keys() - _KEYWORDS - _ANNOTATIONS
        if unknown or ("$id" in schema and schema is not self._root):
            raise _Unsupported(f"keywords {sorted(unknown)}")
        checks: list[_Check] = []
        if "type" in schema:
            checks.append(_type_check(schema["type"]))
        if "enum" in schema:
            checks.append(_enum_check(schema["enum"]))
        if "const" in schema:
            checks.append(_enum_check([schema["const"]]))
        for by_type in (self._object_check(schema), self._array_check(schema)):
            if by_type is not None:
                checks.append(by_type)
        for by_type in (_string_check(schema), _number_check(schema)):
            if by_type is not None:
                checks.append(by_type)
        checks.extend(self.compile(sub) for sub in schema.get("allOf", ()))
        if "anyOf" in schema:
            checks.append(_any_of([self.compile(sub) for sub in schema["anyOf"]]))
        if "oneOf" in schema:
            checks.append(_one_of([self.compile(sub) for sub in schema["oneOf"]]))
        if "not" in schema:
            checks.append(_negation(self.compile(schema["not"])))
        if "if" in schema:
            when = self.compile(schema["if"])
            then, otherwise = self.compile(schema.get("then", True)), self.compile(schema.get("else", True))
            checks.append(lambda value: then(value) if when(value) else otherwise(value))
        if "$ref" in schema:
            checks.append(self._ref(schema["$ref"]))
        return _all_of(checks)

    def _ref(self, ref: Any) -> _Check:
        if ref in self._refs:
            return self._refs[ref]
        if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
            raise _Unsupported(f"$ref {ref!r}")
        target: Any = self._root
        for token in ref[2:].split("/") if ref != "#" else ():
            token = unquote(token).replace("~1", "/").replace("~0", "~")
            try:
                target = target[int(token)] if isinstance(target, list) else target[token]
            except (KeyError, IndexError, ValueError, TypeError):
                raise _Unsupported(f"$ref {ref!r}") from None
        cell: list[_Check] = []
        self._refs[ref] = lambda value: cell[0](value)  # what a recursive reference sees meanwhile
        cell.append(self.compile(target))
        self._refs[ref] = cell[0]
        return cell[0]

    def _object_check(self, schema: dict[str, Any]) -> _Check | None:
        if not any(keyword in schema for keyword in _OBJECT_KEYWORDS):
            return None
        known = {name: self.compile(sub) for name, sub in schema.get("properties", {}).items()}
        required = tuple(schema.get("required", ()))
        extra = schema.get("additionalProperties", True)
        additional = None if extra is True else self.compile(extra)
        key_check = self.compile(schema.get("propertyNames", True))
        fewest, most = schema.get("minProperties", 0), schema.get("maxProperties")

        def check(value: Any) -> bool:
            if type(value) is not dict:
                return _not_applicable(value)
            if len(value) < fewest or (most is not None and len(value) > most):
                return False
            for name in required:
                if name not in value:
                    return False
            for key, item in value.items():
                sub = known.get(key, additional)
                if (sub is not None and not sub(item)) or not key_check(key):
                    return False
            return True

        return check

    def _array_check(self, schema: dict[str, Any]) -> _Check | None:
        if not any(keyword in schema for keyword in ("items", "minItems", "maxItems")):
            return None
        items = self.compile(schema.get("items", True))
        fewest, most = schema.get("minItems", 0), schema.get("maxItems")

        def check(value: Any) -> bool:
            if type(value) is not list:
                return _not_applicable(value)
            if len(value) < fewest or (most is not None and len(value) > most):
                return False
            for item in value:  # noqa: SIM110 - a loop costs half of all() over a generator
                if not items(item):
                    return False
            return True

        return check


def _type_check(names: Any) -> _Check:
    names = [names] if isinstance(names, str) else list(names)
    if not all(name in _PYTHON_TYPES for name in names):
        raise _Unsupported(f"type {names!r}")
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


def _enum_check(options: Sequence[Any]) -> _Check:
    if not all(option is None or type(option) is str for option in options):
        raise _Unsupported("enum values other than strings and null")
    strings = frozenset(options) - {None}
    null_allowed = None in options

    def check(value: Any) -> bool:
        if type(value) is str:
            return value in strings
        if value is None:
            return null_allowed
        return _mismatch(value)

    return check


def _string_check(schema: dict[str, Any]) -> _Check | None:
    if not any(keyword in schema for keyword in ("minLength", "maxLength", "pattern")):
        return None
    shortest, longest = schema.get("minLength", 0), schema.get("maxLength")
    search = re.compile(schema["pattern"]).search if "pattern" in schema else None

    def check(value: Any) -> bool:
        if type(value) is not str:
            return _not_applicable(value)
        if len(value) < shortest or (longest is not None and len(value) > longest):
            return False
        return search is None or search(value) is not None

    return check


def _number_check(schema: dict[str, Any]) -> _Check | None:
    bounds = [schema.get(name) for name in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")]
    if all(bound is None for bound in bounds):
        return None
    low, high, above, below = bounds

    def check(value: Any) -> bool:
        if type(value) is not int and type(value) is not float:
            return _not_applicable(value)
        return (
            (low is None or value >= low)
            and (high is None or value <= high)
            and (above is None or value > above)
            and (below is None or value < below)
        )

    return check


def _all_of(checks: list[_Check]) -> _Check:
    if not checks:
        return _accept
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda value: first(value) and second(value)
    every = tuple(checks)

    def check_all(value: Any) -> bool:
        for check in every:  # noqa: SIM110 - a loop costs half of all() over a generator
            if not check(value):
                return False
        return True

    return check_all


def _any_of(checks: list[_Check]) -> _Check:
    return lambda value: any(check(value) for check in checks)


def _one_of(checks: list[_Check]) -> _Check:
    return lambda value: sum(1 for check in checks if check(value)) == 1


def _negation(check: _Check) -> _Check:
    return lambda value: not check(value)


# --- The slow path: the most relevant jsonschema error, worded like OpenAI's ----------------------------


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


def _error_for(validator: Draft202012Validator, body: Any) -> GatewayError | None:
    try:
        errors = list(validator.iter_errors(body))
    except RecursionError:
        return _invalid("Invalid request body: a value is nested too deeply.", None, "invalid_value")
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
        return _invalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    param = _param(problem.path)
    where = f"'{param}'" if param else "the request body"
    if keyword == "additionalProperties" and isinstance(value, dict) and isinstance(problem.schema, dict):
        known = problem.schema.get("properties", {})
        unknown = next((key for key in value if key not in known), None)
        if unknown is not None:
            param = _param((*problem.path, unknown))
            return _invalid(f"Unrecognized request argument supplied: {param}", param, "unknown_parameter")
    if problem.in_key:
        return _invalid(f"Invalid key {_show(value)} in {where}: {_clause(problem)}.", param, "invalid_value")
    if keyword == "type":
        names = [expected] if isinstance(expected, str) else expected
        words = [_TYPE_WORDS[name] for name in names if name != "null"] or ["null"]
        message = f"Invalid type for {where}: expected {_one_of_words(words)}, but got {_a(value)} instead."
        return _invalid(message, param, "invalid_type")
    return _invalid(f"Invalid value for {where}: {_clause(problem)}.", param, "invalid_value")


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


def _a(value: Any) -> str:
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
        return _a(value)
    return text if len(text) <= 60 else f"{text[:60]}..."


def _invalid(message: str, param: str | None, code: str | None) -> GatewayError:
    return GatewayError(400, message, type_="invalid_request_error", param=param, code=code)
