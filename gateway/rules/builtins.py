"""JMESPath's standard functions as the rule compiler calls them, and the spec of any function.

Every standard function is answered by jmespath's own type-checked implementation, so results and
errors are jmespath's. The ones rules call on every request (`type`, `join`, `length`, ...) first try
a native version that handles the plain case and steps aside (`_SLOW`) for anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jmespath import functions as jmespath_functions

from gateway.rules.context import EvalContext

FunctionImpl = Callable[..., Any]


class FunctionSpec:
    """A callable exposed to expressions: `impl(ctx, *args)`, with an arity range checked at compile.

    `pure`: its result depends on nothing but its arguments and the request (not on stream state, a
    counter, chance or the upstream's reply), so a call over the request alone is made once per request.
    """

    __slots__ = ("impl", "max_args", "min_args", "pure")

    def __init__(self, impl: FunctionImpl, min_args: int, max_args: int | None, *, pure: bool = True) -> None:
        self.impl = impl
        self.min_args = min_args
        self.max_args = max_args
        self.pure = pure


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


def _fast_type(x: Any) -> Any:
    return "null" if x is None else _JSON_TYPE_NAMES.get(type(x), _SLOW)


def _fast_join(glue: Any, items: Any) -> Any:
    if type(glue) is str and type(items) is list and all(type(item) is str for item in items):
        return glue.join(items)
    return _SLOW


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
    if all(type(obj) is dict for obj in objects):
        merged: dict[str, Any] = {}
        for obj in objects:
            merged.update(obj)
        return merged
    return _SLOW


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
        specs[name] = FunctionSpec(impl, len(signature), None if variadic else len(signature))
    return specs


BUILTIN_FUNCTIONS: Mapping[str, FunctionSpec] = _builtin_specs()
