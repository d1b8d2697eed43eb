"""Generic functions that fill JMESPath's gaps, each named for what it does, none for a vendor.

`rule(name, value)`, `enum(table, key)`, `map(&expr, array)` and the lazy `if_else(cond, a, b)`
are compiled specially (see compiler.py).

Every function receives the per-request `EvalContext` first; expressions call them without it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import secrets
import struct
import time
from collections.abc import Mapping
from typing import Any

from gateway import json_codec
from gateway.rules.builtins import FunctionSpec
from gateway.rules.context import EvalContext


def _request(ctx: EvalContext) -> Any:
    """`request()`: the client's request body (OpenAI shape), whatever node a rule is looking at."""
    return ctx.request


def _client(ctx: EvalContext) -> Any:
    """`client()`: the client's request as it sent it, in its own protocol (`request()` is canonical)."""
    return ctx.client_request if ctx.client_request is not None else ctx.request


def _state(ctx: EvalContext) -> Any:
    """`state()`: the per-request stream state (ids, counters, accumulated usage)."""
    return ctx.state


def _now(ctx: EvalContext) -> int:
    """`now()`: the request's timestamp in Unix seconds, the same for every chunk of a stream."""
    return ctx.created


def _rfc3339(_ctx: EvalContext, seconds: Any) -> Any:
    """`rfc3339(t)`: Unix seconds as an RFC 3339 UTC time (`2026-12-05T09:00:00Z`); null for a
    non-number."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _upstream_header(ctx: EvalContext, name: Any) -> Any:
    """`upstream_header(name)`: a header of the upstream's reply (any case), null when absent or
    before the upstream has replied (e.g. a request id the body does not carry)."""
    if not isinstance(name, str):
        return None
    headers = ctx.upstream_headers
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value


def _split(_ctx: EvalContext, text: Any, separator: Any) -> Any:
    """`split(s, sep)`: the parts of `s` between occurrences of `sep` (null for non-strings)."""
    if not isinstance(text, str) or not isinstance(separator, str) or not separator:
        return None
    return text.split(separator)


def _from_json(_ctx: EvalContext, text: Any) -> Any:
    """`from_json(s)`: the value JSON text encodes; null when it is not a string or not valid JSON."""
    if not isinstance(text, str):
        return None
    try:
        return json_codec.loads(text)
    except json_codec.JSONDecodeError:
        return None


def _to_json(_ctx: EvalContext, value: Any) -> str:
    """`to_json(v)`: compact JSON text of any value (for JSON carried inside a string)."""
    return json_codec.dumps_str(value)


def _parse_data_url(_ctx: EvalContext, url: Any) -> Any:
    """`parse_data_url(s)`: `{mime_type, data}` of a base64 `data:` URL; null for anything else."""
    if not isinstance(url, str) or not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep:
        return None
    mime_type, _, params = header.partition(";")
    if "base64" not in params.split(";"):
        return None
    return {"mime_type": mime_type or "application/octet-stream", "data": data}


def _concat(_ctx: EvalContext, *parts: Any) -> list[Any]:
    """`concat(a, b, ...)`: arrays joined end to end; null arguments skipped, other values appended."""
    joined: list[Any] = []
    for part in parts:
        if part is None:
            continue
        if isinstance(part, list):
            joined.extend(part)
        else:
            joined.append(part)
    return joined


def _add(_ctx: EvalContext, *numbers: Any) -> int | float:
    """`add(a, b, ...)`: the sum, counting null as 0 (usage fields are often absent)."""
    total: int | float = 0
    for number in numbers:
        if isinstance(number, bool):
            raise TypeError("add() takes numbers, got a boolean")
        if number is not None:
            total += number
    return total


def _subtract(_ctx: EvalContext, minuend: Any, subtrahend: Any) -> Any:
    """`subtract(a, b)`: a - b, counting null as 0 (e.g. a token budget kept below a maximum)."""
    for number in (minuend, subtrahend):
        if isinstance(number, bool) or not isinstance(number, int | float | None):
            raise TypeError(f"subtract() takes numbers, got {number!r}")
    return (minuend or 0) - (subtrahend or 0)


def _numbered(_ctx: EvalContext, items: Any, key: Any) -> Any:
    """`numbered(items, 'index')`: every object of `items` with `key` set to its position (0, 1, ...);
    other items as they are. Null for anything that is not an array."""
    if not isinstance(items, list) or not isinstance(key, str):
        return None
    return [{**item, key: i} if isinstance(item, dict) else item for i, item in enumerate(items)]


def _get(_ctx: EvalContext, obj: Any, key: Any, default: Any = None) -> Any:
    """`get(obj, key[, default])`: look up a key computed at run time (JMESPath keys are static)."""
    if isinstance(obj, dict):
        return obj.get(key if isinstance(key, str) else json_codec.dumps_str(key), default)
    if isinstance(obj, list) and isinstance(key, int) and not isinstance(key, bool):
        return obj[key] if -len(obj) <= key < len(obj) else default
    return default


def _put(_ctx: EvalContext, obj: Any, key: Any, value: Any) -> dict[str, Any]:
    """`put(obj, key, value)`: a copy of `obj` (null: empty) with `key` set, for keyed stream state."""
    updated = dict(obj) if isinstance(obj, dict) else {}
    updated[key if isinstance(key, str) else json_codec.dumps_str(key)] = value
    return updated


class RuleFailure(Exception):
    """Raised by `fail(message)`: the input cannot be translated; the client gets a 400 with it."""


def _fail(_ctx: EvalContext, message: Any) -> Any:
    """`fail(message)`: stop translating; the client gets 400 invalid_request_error with `message`."""
    raise RuleFailure(message if isinstance(message, str) else json_codec.dumps_str(message))


def _drop_nulls(_ctx: EvalContext, obj: Any) -> Any:
    """`drop_nulls(obj)`: the object without its null members (arrays: without null items)."""
    if isinstance(obj, dict):
        return {k: v for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [v for v in obj if v is not None]
    return obj


def _merge_consecutive(_ctx: EvalContext, items: Any, key: Any, field: Any) -> Any:
    """`merge_consecutive(items, key, field)`: adjacent objects with equal `key` become one object
    whose `field` arrays are concatenated (e.g. consecutive same-role messages into one turn).

    Linear: a run's array is copied once, when its second item arrives, and then extended in place
    (rebuilding it on every merge made 100k same-role messages take seconds). Inputs are not mutated."""
    if not isinstance(items, list):
        return items
    merged: list[Any] = []
    run: list[Any] | None = None  # the field array of merged[-1] when it is our own copy
    for item in items:
        previous = merged[-1] if merged else None
        if (
            isinstance(item, dict)
            and isinstance(previous, dict)
            and previous.get(key) == item.get(key)
            and isinstance(previous.get(field), list)
            and isinstance(item.get(field), list)
        ):
            if run is None:
                run = list(previous[field])
                merged[-1] = {**previous, field: run}
            run.extend(item[field])
        else:
            merged.append(item)
            run = None
    return merged


def _counter(ctx: EvalContext, name: Any) -> int:
    """`counter(name)`: 0, 1, 2, ... on successive calls within one request (per name)."""
    key = str(name)
    value = ctx.counters.get(key, -1) + 1
    ctx.counters[key] = value
    return value


def _random_id(_ctx: EvalContext, prefix: Any) -> str:
    """`random_id(prefix)`: prefix followed by 24 random hex digits (ids the upstream does not give)."""
    return f"{prefix if isinstance(prefix, str) else ''}{binascii.hexlify(secrets.token_bytes(12)).decode()}"


def _floats_to_base64(_ctx: EvalContext, values: Any) -> Any:
    """`floats_to_base64(v)`: a vector as OpenAI's `encoding_format: base64` (little-endian float32)."""
    if not isinstance(values, list):
        return None
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def _omit(_ctx: EvalContext, obj: Any, *keys: Any) -> Any:
    """`omit(obj, 'k', ...)`: a copy of the object without those keys (anything else as it is)."""
    if not isinstance(obj, dict):
        return obj
    return {k: v for k, v in obj.items() if k not in keys}


@functools.lru_cache(maxsize=256)
def _pattern(source: str) -> re.Pattern[str]:
    return re.compile(source)


def _matches(_ctx: EvalContext, text: Any, pattern: Any) -> bool:
    """`matches(s, pattern)`: whether the regular expression is found in the string (anchor it with
    ^...$ for a whole match); false for non-strings."""
    if not isinstance(text, str) or not isinstance(pattern, str):
        return False
    return _pattern(pattern).search(text) is not None


_ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _hash_id(_ctx: EvalContext, text: Any, length: Any) -> Any:
    """`hash_id(s, n)`: a deterministic id of n characters from [0-9A-Za-z] derived from the string
    (the same input always gives the same id: e.g. ids rewritten consistently across a conversation)."""
    if not isinstance(text, str) or isinstance(length, bool) or not isinstance(length, int):
        return None
    if not 1 <= length <= 40:
        raise ValueError("hash_id() makes ids of 1 to 40 characters")
    number = int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")
    digits = []
    for _ in range(length):
        number, digit = divmod(number, len(_ALPHANUMERIC))
        digits.append(_ALPHANUMERIC[digit])
    return "".join(digits)


def _lower(_ctx: EvalContext, text: Any) -> Any:
    """`lower(s)`: the string in lower case (null for non-strings)."""
    return text.lower() if isinstance(text, str) else None


def _upper(_ctx: EvalContext, text: Any) -> Any:
    """`upper(s)`: the string in upper case (null for non-strings)."""
    return text.upper() if isinstance(text, str) else None


def _from_items(_ctx: EvalContext, pairs: Any) -> Any:
    """`from_items(pairs)`: an object from `[key, value]` pairs, later pairs winning (e.g. a lookup
    table from ids to names); pairs that are not two items with a string key are skipped."""
    if not isinstance(pairs, list):
        return None
    table: dict[str, Any] = {}
    for pair in pairs:
        if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str):
            table[pair[0]] = pair[1]
    return table


def _merge_each(_ctx: EvalContext, items: Any, extra: Any) -> Any:
    """`merge_each(items, obj)`: every object of `items` merged with `obj` (obj's keys win); other
    items as they are. Carries outer values (a model name, an index) into each item of a list."""
    if not isinstance(items, list):
        return None
    if not isinstance(extra, dict):
        return list(items)
    return [{**item, **extra} if isinstance(item, dict) else item for item in items]


GENERIC_FUNCTIONS: Mapping[str, FunctionSpec] = {
    "request": FunctionSpec(_request, 0, 0),
    "client": FunctionSpec(_client, 0, 0),
    "state": FunctionSpec(_state, 0, 0, pure=False),
    "now": FunctionSpec(_now, 0, 0),
    "rfc3339": FunctionSpec(_rfc3339, 1, 1),
    "upstream_header": FunctionSpec(_upstream_header, 1, 1, pure=False),
    "split": FunctionSpec(_split, 2, 2),
    "from_json": FunctionSpec(_from_json, 1, 1),
    "to_json": FunctionSpec(_to_json, 1, 1),
    "parse_data_url": FunctionSpec(_parse_data_url, 1, 1),
    "concat": FunctionSpec(_concat, 1, None),
    "add": FunctionSpec(_add, 1, None),
    "subtract": FunctionSpec(_subtract, 2, 2),
    "numbered": FunctionSpec(_numbered, 2, 2),
    "get": FunctionSpec(_get, 2, 3),
    "put": FunctionSpec(_put, 3, 3),
    "fail": FunctionSpec(_fail, 1, 1),
    "drop_nulls": FunctionSpec(_drop_nulls, 1, 1),
    "merge_consecutive": FunctionSpec(_merge_consecutive, 3, 3),
    "counter": FunctionSpec(_counter, 1, 1, pure=False),
    "random_id": FunctionSpec(_random_id, 1, 1, pure=False),
    "floats_to_base64": FunctionSpec(_floats_to_base64, 1, 1),
    "omit": FunctionSpec(_omit, 1, None),
    "matches": FunctionSpec(_matches, 2, 2),
    "hash_id": FunctionSpec(_hash_id, 2, 2),
    "lower": FunctionSpec(_lower, 1, 1),
    "upper": FunctionSpec(_upper, 1, 1),
    "from_items": FunctionSpec(_from_items, 1, 1),
    "merge_each": FunctionSpec(_merge_each, 2, 2),
}
