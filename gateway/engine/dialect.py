"""A dialect compiled: every expression turned into an evaluator, frozen, ready for any request."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from gateway.rules.compiler import Compiler, Evaluator, is_false
from gateway.rules.context import EvalContext
from gateway.rules.functions import GENERIC_FUNCTIONS
from gateway.rules.template import (
    BodyTransform,
    RuleError,
    chain_transforms,
    compile_rule,
    compile_transform,
    parse_path,
)

OPERATIONS = ("chat", "completions", "embeddings")


@dataclass(frozen=True, slots=True)
class StreamStep:
    when: Evaluator | None
    set_state: tuple[tuple[str, Evaluator], ...]
    emit: Evaluator | None
    error: Evaluator | None
    end: bool


@dataclass(frozen=True, slots=True)
class StreamSpec:
    framing: str
    event: Evaluator | None
    sentinel: str | None
    end_on_close: bool
    initial_state: tuple[tuple[str, Evaluator], ...]
    handlers: Mapping[str, tuple[StreamStep, ...]]
    on_close: tuple[StreamStep, ...] = ()
    post_chunk: Evaluator | None = None  # applied to every emitted chunk (a bridge's reshaping)


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A request parameter the operation cannot honour: `when` is truthy (over the request, `model`
    being the upstream model) when the request uses it; it is evaluated only for a request that has
    the parameter (most have none of them: screening costs them a lookup each). `why`, if given,
    goes into the 400."""

    path: tuple[str, ...]
    when: Evaluator
    why: str | None = None

    @property
    def param(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class ModelOverlay:
    """More limits and request edits for the upstream models whose name `pattern` finds (e.g. the
    reasoning models behind an OpenAI-compatible API)."""

    pattern: re.Pattern[str]
    unsupported: tuple[Unsupported, ...]
    request: BodyTransform


@dataclass(frozen=True, slots=True)
class Operation:
    path: str
    stream_path: str | None
    request: BodyTransform
    response: BodyTransform
    stream: StreamSpec | None
    unsupported: tuple[Unsupported, ...] = ()
    # param -> why leaving it out changes nothing the client gets (no upstream field for it); the
    # client is told which were left out (x-gateway-dropped-params)
    ignored: tuple[tuple[str, str], ...] = ()
    # param -> how the gateway itself honours it, where the upstream has no such field (e.g. base64
    # made from the upstream's floats); read by the parameter matrix, not at run time
    emulated: tuple[tuple[str, str], ...] = ()
    models: tuple[ModelOverlay, ...] = ()
    # upstream model -> this operation with the overlays for it applied (see for_model)
    _for_model: dict[str, Operation] = field(default_factory=dict, init=False, repr=False, compare=False)

    def for_model(self, model: str) -> Operation:
        """The operation as it applies to `model`: the overlays whose pattern finds it add their
        `unsupported` and their request edits (after the operation's own). Worked out once per
        model: an operation serves a handful, and the request path pays one lookup."""
        known = self._for_model.get(model)
        if known is None:
            known = self
            matching = [overlay for overlay in self.models if overlay.pattern.search(model)]
            if matching:
                request = self.request
                for overlay in matching:
                    request = chain_transforms(request, overlay.request)
                known = replace(
                    self,
                    unsupported=self.unsupported + tuple(u for o in matching for u in o.unsupported),
                    request=request,
                    models=(),
                )
            self._for_model[model] = known
        return known


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    status_map: Mapping[int, int]
    error: Evaluator | None
    # client header -> rule over {status, body, text, headers}, when the upstream did not send it
    headers: tuple[tuple[str, Evaluator], ...] = ()


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    auth_header: str | None
    auth_value: str | None
    sigv4_service: str | None
    sigv4_region: str
    vars: Mapping[str, str]
    headers: Mapping[str, str | None]
    operations: Mapping[str, Operation]
    errors: ErrorSpec
    compiler: Compiler = field(compare=False, repr=False)
    # client protocols it speaks itself: `protocol.operation` -> upstream path
    native: Mapping[str, str] = field(default_factory=dict)
    # the family it belongs to, as OpenTelemetry's gen_ai.provider.name says it (traces only)
    gen_ai_provider: str | None = None


def compile_rulebook(spec: Mapping[str, Any], where: str) -> Compiler:
    """The compiler of one rule file (a dialect or a client protocol): its `enums` tables and its
    named `rules`, which its other rules call as enum('table', x) and rule('name', x)."""
    enums = {
        table: MappingProxyType({str(k): v for k, v in (entries or {}).items()})
        for table, entries in (spec.get("enums") or {}).items()
    }
    rules: dict[str, Evaluator] = {}
    compiler = Compiler(GENERIC_FUNCTIONS, rules=rules, enums=enums)
    for rule_name, rule_spec in (spec.get("rules") or {}).items():
        rules[rule_name] = compile_rule(rule_spec, compiler, f"{where}.rules.{rule_name}")
    return compiler


def step_applies(step: StreamStep, data: Any, ctx: EvalContext) -> bool:
    """Whether a stream step's `when` holds for `data`; if so its `set` is applied (all values
    computed first, then stored). (The dialect translator inlines this: it is its hot loop.)"""
    if step.when is not None and is_false(step.when(data, ctx)):
        return False
    if step.set_state:
        updates = [(key, rule(data, ctx)) for key, rule in step.set_state]
        ctx.state.update(updates)
    return True


def compile_dialect(name: str, spec: Mapping[str, Any], where: str) -> Dialect:
    """Compile a resolved (extends already merged) and schema-valid dialect; RuleError on bad rules."""
    compiler = compile_rulebook(spec, where)

    operations = {
        op: _operation(op_spec, compiler, f"{where}.operations.{op}")
        for op, op_spec in (spec.get("operations") or {}).items()
    }
    errors_spec = spec.get("errors") or {}
    errors = ErrorSpec(
        status_map=MappingProxyType({int(k): int(v) for k, v in (errors_spec.get("status") or {}).items()}),
        error=(
            compile_rule(errors_spec["error"], compiler, f"{where}.errors.error")
            if "error" in errors_spec
            else None
        ),
        headers=_assignments(errors_spec.get("headers"), compiler, f"{where}.errors.headers"),
    )
    missing = compiler.missing_references()
    if missing:
        raise RuleError(f"{where}.rules", f"rule() refers to undefined rules: {', '.join(missing)}")

    auth = spec.get("auth", "none")
    auth = {} if auth == "none" else auth
    sigv4 = auth.get("sigv4") or {}
    return Dialect(
        name=name,
        auth_header=auth.get("header"),
        auth_value=auth.get("value"),
        sigv4_service=sigv4.get("service"),
        sigv4_region=sigv4.get("region", "{region}"),
        vars=MappingProxyType({k: str(v) for k, v in (spec.get("vars") or {}).items()}),
        headers=MappingProxyType(dict(spec.get("headers") or {})),
        operations=MappingProxyType(operations),
        errors=errors,
        compiler=compiler,
        native=MappingProxyType(
            {
                f"{protocol}.{op}": str(path)
                for protocol, ops in (spec.get("native") or {}).items()
                for op, path in (ops or {}).items()
            }
        ),
        gen_ai_provider=spec.get("gen_ai_provider"),
    )


def _operation(spec: Mapping[str, Any], compiler: Compiler, where: str) -> Operation:
    return Operation(
        path=spec["path"],
        stream_path=spec.get("stream_path"),
        request=compile_transform(spec.get("request"), compiler, f"{where}.request"),
        response=compile_transform(spec.get("response"), compiler, f"{where}.response"),
        stream=compile_stream(spec["stream"], compiler, f"{where}.stream") if "stream" in spec else None,
        unsupported=compile_unsupported(spec.get("unsupported"), compiler, f"{where}.unsupported"),
        ignored=_reasons(spec.get("ignored")),
        emulated=_reasons(spec.get("emulated")),
        models=tuple(
            _overlay(pattern, overlay, compiler, f"{where}.models.{pattern}")
            for pattern, overlay in (spec.get("models") or {}).items()
        ),
    )


def _overlay(pattern: str, spec: Mapping[str, Any], compiler: Compiler, where: str) -> ModelOverlay:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise RuleError(where, f"not a regular expression: {exc}") from None
    request = compile_transform(spec.get("request"), compiler, f"{where}.request")
    if request.template is not None:
        raise RuleError(f"{where}.request", "edits the operation's body (set, rename, drop): no template")
    return ModelOverlay(
        compiled, compile_unsupported(spec.get("unsupported"), compiler, f"{where}.unsupported"), request
    )


def compile_unsupported(
    spec: Mapping[str, Any] | None, compiler: Compiler, where: str
) -> tuple[Unsupported, ...]:
    """`param: condition` or `param: {when: condition, why: text}`."""
    out: list[Unsupported] = []
    for param, entry in (spec or {}).items():
        when, why = (entry["when"], entry.get("why")) if isinstance(entry, Mapping) else (entry, None)
        out.append(Unsupported(parse_path(param), compile_rule(when, compiler, f"{where}.{param}"), why))
    return tuple(out)


def _reasons(spec: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple((str(param), str(why)) for param, why in (spec or {}).items())


def compile_stream(spec: Mapping[str, Any], compiler: Compiler, where: str) -> StreamSpec:
    handlers = {
        str(event): tuple(
            _step(step, compiler, f"{where}.events.{event}[{i}]") for i, step in enumerate(steps)
        )
        for event, steps in spec["events"].items()
    }
    return StreamSpec(
        framing=spec.get("framing", "sse"),
        event=compile_rule(spec["event"], compiler, f"{where}.event") if "event" in spec else None,
        sentinel=spec.get("sentinel"),
        end_on_close=bool(spec.get("end_on_close", False)),
        initial_state=_assignments(spec.get("state"), compiler, f"{where}.state"),
        handlers=MappingProxyType(handlers),
        on_close=tuple(
            _step(step, compiler, f"{where}.on_close[{i}]")
            for i, step in enumerate(spec.get("on_close") or ())
        ),
    )


def _step(spec: Mapping[str, Any], compiler: Compiler, where: str) -> StreamStep:
    return StreamStep(
        when=compile_rule(spec["when"], compiler, f"{where}.when") if "when" in spec else None,
        set_state=_assignments(spec.get("set"), compiler, f"{where}.set"),
        emit=compile_rule(spec["emit"], compiler, f"{where}.emit") if "emit" in spec else None,
        error=compile_rule(spec["error"], compiler, f"{where}.error") if "error" in spec else None,
        end=bool(spec.get("end", False)),
    )


def _assignments(
    spec: Mapping[str, Any] | None, compiler: Compiler, where: str
) -> tuple[tuple[str, Evaluator], ...]:
    return tuple((str(k), compile_rule(v, compiler, f"{where}.{k}")) for k, v in (spec or {}).items())
