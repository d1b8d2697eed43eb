"""Decode a request body and check it against the JSON Schema of its operation, with OpenAI-style errors.

Every request passes through here, so a valid body has to be cheap: each schema is compiled once into a
plain Python predicate (schema_predicate), and jsonschema runs only when that predicate says no, to find
the errors and word the 400 the client sees (schema_errors).

Nesting is bounded before anything else looks at the body: orjson reads 1024 levels but writes only
254, and a body that cannot be written again would fail half-way through the exchange (a 500).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator

from gateway import json_codec
from gateway.engine.protocol import operations as client_operations
from gateway.proxy.schema_errors import a_json_type, error_finder_class, error_for, invalid_request
from gateway.proxy.schema_predicate import Check, NotPlainJSON, PredicateCompiler, UnsupportedSchema
from gateway.schema_files import load_schema

# every client operation's request schema, from the one table of operations (gateway/protocols/)
SCHEMA_FILES = {operation.key: operation.schema for operation in client_operations() if operation.schema}

_NOT_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The API expects a JSON payload, but what was sent was not valid JSON.)"
)


DEFAULT_MAX_DEPTH = 100  # limits.max_json_depth


def decode_json_body(raw: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying what is wrong with it."""
    try:
        body = json_codec.loads(raw)
    except json_codec.JSONDecodeError as exc:
        if not raw.strip():
            message = (
                "We could not parse the JSON body of your request: the body is empty. "
                "Send a JSON object, with the header 'Content-Type: application/json'."
            )
            raise invalid_request(message, None, None) from None
        raise invalid_request(f"{_NOT_JSON} Parser error: {exc}.", None, None) from None
    if type(body) is not dict:
        got = a_json_type(body)
        message = f"Invalid type for the request body: expected a JSON object, but got {got} instead."
        raise invalid_request(message, None, "invalid_type")
    # each level opens with `[` or `{`: a body with no more of them than the limit cannot be too deep
    # (two byte counts, ~0.4 us for a 400-byte chat request); only the others are walked (~4 ms for
    # 40,000 messages, which take ~20 ms to decode)
    if raw.count(b"{") + raw.count(b"[") > max_depth and nested_deeper_than(body, max_depth):
        message = (
            f"The request body is nested too deeply: at most {max_depth} levels of arrays and objects "
            "are accepted (limits.max_json_depth)."
        )
        raise invalid_request(message, None, "json_too_deep")
    return body


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels (the value itself is level 1): one
    level at a time, without recursion, looking only at containers."""
    level = [value]
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        inner: list[Any] = []
        keep = inner.append
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) is dict or type(child) is list:
                    keep(child)
        level = inner
    return False


@functools.cache
def _compiled_operations() -> Mapping[str, tuple[Check, Validator]]:
    """Each operation's predicate and error finder, built once per process: checking and compiling the
    schemas takes ~50 ms, and every app builds a RequestValidator (each worker, each test). Both only
    read the schema they were built from (which load_schema parses once), so every validator shares
    them."""
    operations: dict[str, tuple[Check, Validator]] = {}
    for operation, name in SCHEMA_FILES.items():
        schema = load_schema(name)
        Draft202012Validator.check_schema(schema)
        compiler = PredicateCompiler(schema)
        try:
            is_valid: Check | None = compiler.compile(schema)
        except UnsupportedSchema:  # still correct, only slower: jsonschema does all the work
            compiler.compiled.clear()
            is_valid = None
        error_finder = error_finder_class(compiler.compiled)(schema)
        operations[operation] = (is_valid or error_finder.is_valid, error_finder)
    return MappingProxyType(operations)


class RequestValidator:
    """Checks request bodies against the schemas in SCHEMA_FILES; cheap to build (the compiled schemas
    are the process's, see _compiled_operations)."""

    def __init__(self) -> None:
        self._operations = dict(_compiled_operations())  # a dict of its own: the hot path's lookup

    def validate(self, operation: str, body: dict[str, Any]) -> None:
        """Return if `body` is valid for `operation` ("chat", "completions", "embeddings"); else a 400."""
        is_valid, error_finder = self._operations[operation]
        try:
            if is_valid(body):
                return
        except NotPlainJSON:
            pass  # a value orjson never produces: jsonschema decides
        error = error_for(error_finder, body)
        if error is not None:
            raise error
