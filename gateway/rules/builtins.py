"""JMESPath's standard functions as the rule compiler calls them, and the spec of any function.

Every standard function is answered by jmespath's own type-checked implementation, so results and
errors are jmespath's. The ones rules call on every request (`type`, `join`, `length`, ...) first try
a native version that handles the plain case and steps aside (`_SLOW`) for anything else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from jmespath import functions as jmespath_functions

from gateway.rules.context import EvalContext

FunctionImpl = Callable[..., Any]


class FunctionSpec:
    """A callable exposed to expressions: `impl(ctx, *args)`, with an arity range checked at compile.

    `pure`: its result depends on nothing but its arguments and the request (not on stream state, a
    counter, chance or the upstream's reply), so a call over the request alone is made once per request.
    `fast`: a native version of a standard function, `fast(*args)`, that returns `SLOW` for anything but
    the plain case; generated code calls it directly and `impl` only when it steps aside.
    """

    __slots__ = ("fast", "impl", "max_args", "min_args", "pure")

    def __init__(
        self,
        impl: FunctionImpl,
        min_args: int,
        max_args: int | None,
        *,
        pure: bool = True,
        fast: Callable[..., Any] | None = None,
    ) -> None:
        self.impl = impl
        self.min_args = min_args
        self.max_args = max_args
        self.pure = pure
        self.fast = fast


_JSON_TYPE_NAMES: dict[type, str] = {
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
    list: "array",
    dict: "object",
}


# Native versions of the functions that rules call on every request. Each returns _SLOW when its
# arguments are not the plain case, and jmespath's type-checked implementation then answers (with
# its exact result or error), so the semantics are jmespath's either way.
_SLOW: Any = object()
SLOW: Any = _SLOW  # what a `FunctionSpec.fast` returns when the checked implementation must answer


def _fast_type(x: Any) -> Any:
    return "null" if x is None else _JSON_TYPE_NAMES.get(type(x), _SLOW)


def _fast_join(glue: Any, items: Any) -> Any:
    if type(glue) is not str or type(items) is not list:
        return _SLOW
    for item in items:  # a loop, not all(generator): this runs on every request
        if type(item) is not str:
            return _SLOW
    return glue.join(items)


def _fast_starts_with(subject: Any, prefix: Any) -> Any:
    return subject.startswith(prefix) if type(subject) is str and type(prefix) is str else _SLOW


def _fast_ends_with(subject: Any, suffix: Any) -> Any:
    return subject.endswith(suffix) if type(subject) is str and type(suffix) is str else _SLOW


def _fast_length(x: Any) -> Any:
    kind = type(x)
    return len(x) if kind is str or kind is list or kind is dict else _SLOW


def _fast_to_string(x: Any) -> Any:
    return x if type(x) is str else _SLOW


def _fast_not_null(*args: Any) -> Any:
    for arg in args:
        if arg is not None:
            return arg
    return None


def _fast_contains(subject: Any, search: Any) -> Any:
    if type(subject) is list or (type(subject) is str and type(search) is str):
        return search in subject  # what jmespath's contains() does
    return _SLOW


def _fast_merge(*objects: Any) -> Any:
    merged: dict[str, Any] = {}
    for obj in objects:
        if type(obj) is not dict:
            return _SLOW
        merged.update(obj)
    return merged


def _plain_array(x: Any) -> bool:
    """A non-empty array of numbers only or of strings only: what min/max/sort take."""
    if type(x) is not list or not x:
        return False
    if type(x[0]) is str:
        return all(type(item) is str for item in x)
    return all(type(item) is int or type(item) is float for item in x)


def _fast_min(x: Any) -> Any:
    return min(x) if _plain_array(x) else _SLOW


def _fast_max(x: Any) -> Any:
    return max(x) if _plain_array(x) else _SLOW


def _fast_floor(x: Any) -> Any:
    return math.floor(x) if type(x) is int or type(x) is float else _SLOW


def _fast_ceil(x: Any) -> Any:
    return math.ceil(x) if type(x) is int or type(x) is float else _SLOW


_FAST_BUILTINS: dict[str, Callable[..., Any]] = {
    "type": _fast_type,
    "join": _fast_join,
    "starts_with": _fast_starts_with,
    "ends_with": _fast_ends_with,
    "length": _fast_length,
    "to_string": _fast_to_string,
    "not_null": _fast_not_null,
    "contains": _fast_contains,
    "merge": _fast_merge,
    "min": _fast_min,
    "max": _fast_max,
    "floor": _fast_floor,
    "ceil": _fast_ceil,
}


def _checked(builtins: jmespath_functions.Functions, name: str) -> FunctionImpl:
    def impl(_ctx: EvalContext, *args: Any) -> Any:
        return builtins.call_function(name, list(args))

    return impl


def _fast_then_checked(
    builtins: jmespath_functions.Functions, name: str, fast: Callable[..., Any]
) -> FunctionImpl:
    def impl(_ctx: EvalContext, *args: Any) -> Any:
        result = fast(*args)
        return builtins.call_function(name, list(args)) if result is _SLOW else result

    return impl


def _builtin_specs() -> dict[str, FunctionSpec]:
    """JMESPath's standard functions, called through jmespath's own type-checked implementation
    (with a native fast path for the common ones)."""
    builtins = jmespath_functions.Functions()
    specs: dict[str, FunctionSpec] = {}
    for name, entry in builtins.FUNCTION_TABLE.items():
        signature = entry["signature"]
        variadic = bool(signature) and signature[-1].get("variadic", False)
        fast = _FAST_BUILTINS.get(name)
        impl = _checked(builtins, name) if fast is None else _fast_then_checked(builtins, name, fast)
        specs[name] = FunctionSpec(impl, len(signature), None if variadic else len(signature), fast=fast)
    return specs


BUILTIN_FUNCTIONS: Mapping[str, FunctionSpec] = _builtin_specs()
