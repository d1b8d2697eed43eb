"""The one JSON codec of the gateway: orjson, bytes in and bytes out."""

from __future__ import annotations

from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError
JSONEncodeError = orjson.JSONEncodeError  # a TypeError: e.g. nested deeper than orjson writes (254)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    return orjson.loads(data)


def dumps(obj: Any) -> bytes:
    """Compact JSON as bytes (what goes on the wire)."""
    return orjson.dumps(obj)


def dumps_str(obj: Any) -> str:
    """Compact JSON as text (for JSON embedded in JSON strings, e.g. tool-call arguments)."""
    return orjson.dumps(obj).decode()
