"""Client protocols as data: what clients may call, and how each call maps to the canonical form.

A client protocol (`gateway/protocols/<name>.yaml`) lists its operations (method, paths, request
schema, the canonical operation it runs on) and, for a protocol that is not the canonical one
(OpenAI chat), the rules that turn its request into a canonical one and the canonical reply, stream
chunks and errors back into its own. The engine chains client protocol -> canonical -> provider
dialect, and back; a dialect that speaks the protocol natively (`native:` in the dialect) gets the
client's request untouched but for `model`, and its reply is relayed as it is.

Protocols are package data, compiled once per process; every route, validator and handler reads
OPERATIONS, the one table of client operations.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator
from multidict import istr

from gateway.engine.dialect import StreamSpec, compile_rulebook, compile_stream
from gateway.rules.compiler import Compiler, Evaluator
from gateway.rules.context import EvalContext
from gateway.rules.functions import GENERIC_FUNCTIONS
from gateway.rules.template import BodyTransform, RuleError, compile_rule, compile_transform
from gateway.schema_files import load_schema

PROTOCOLS_DIR = Path(__file__).resolve().parent.parent / "protocols"
CANONICAL = "openai"  # the protocol whose bodies are the canonical form

Encoder = Literal["sse-data", "sse-events"]


@dataclass(frozen=True, slots=True)
class ClientOperation:
    """One thing a client may call: `canonical` names the dialect operation it runs on. `request`,
    `response` and `stream` translate to and from the canonical form (None: the client's bodies are
    canonical already)."""

    protocol: str
    name: str
    method: str
    paths: tuple[str, ...]
    schema: str
    canonical: str
    request: BodyTransform | None = None
    response: BodyTransform | None = None
    stream: StreamSpec | None = None
    # client parameters a translated upstream has no use for: left out, named in a reply header
    # (name, its path in the client's body: `a.b` is a nested member)
    ignored: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # over the client's request: names of tools a translated upstream cannot run (left out, named)
    dropped_tools: Evaluator | None = None
    # canonical parameter -> the client's name for it, where they differ (errors, dropped params)
    params: Mapping[str, str] = field(default_factory=dict)
    # served by the gateway itself (gateway/responses_store/handlers.py names them), not forwarded;
    # such an operation has no request body, so no `schema`
    handler: str | None = None
    # its replies are stored (routes.yaml `responses:`); in a stream, the `response` of these events
    stored_events: tuple[str, ...] = ()

    def ignored_in(self, body: Mapping[str, Any]) -> list[str]:
        """The `ignored` parameters `body` has."""
        found = []
        for name, path in self.ignored:
            value: Any = body
            for key in path:
                value = value.get(key) if type(value) is dict else None
            if value is not None:
                found.append(name)
        return found

    def client_names(self, params: str) -> str:
        """Comma-separated canonical parameters by the client's names for them."""
        if not self.params or not params:
            return params
        return ",".join(self.params.get(name, name) for name in params.split(","))

    @property
    def key(self) -> str:
        """The operation's name across protocols: `chat` for the canonical protocol's,
        `<protocol>.<operation>` for another's (the validator's key, a dialect's `native` key)."""
        return self.name if self.protocol == CANONICAL else f"{self.protocol}.{self.name}"


@dataclass(frozen=True, slots=True)
class ClientProtocol:
    name: str
    encoder: Encoder
    keys: tuple[str, ...]  # request headers that may carry the gateway key, in order
    forward_headers: tuple[str, ...]  # client headers relayed to a native upstream
    operations: Mapping[str, ClientOperation]
    # client headers written to the access log (as snake_case fields), e.g. a client's session id
    log_headers: tuple[str, ...] = ()
    request_id_header: str | None = None  # where its clients read the request id (besides x-request-id)
    error_status: Mapping[int, int] = field(default_factory=dict)
    error_body: Evaluator | None = None  # {status, error} -> the client's error body
    passthrough_end_event: str | None = None  # the native stream's last event
    passthrough_usage: Evaluator | None = None  # native reply or stream event -> canonical usage
    passthrough_event_usage: Evaluator | None = None  # native stream event -> the usage it reports
    # native reply or stream event -> {model, finish_reasons} (for traces)
    passthrough_summary: Evaluator | None = None
    # GET /v1/models from this protocol's clients (told by a header only they send): the canonical
    # listing -> the protocol's, a canonical model object -> the protocol's
    models_header: str | None = None
    models_list: Evaluator | None = None
    models_entry: Evaluator | None = None

    @property
    def canonical(self) -> bool:
        return self.error_body is None

    def error(self, status: int, error: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """The client's status and body for a canonical error (OpenAI's error object)."""
        if self.error_body is None:
            return status, {"error": dict(error)}
        shown = self.error_status.get(status, status)
        body = self.error_body({"status": shown, "error": dict(error)}, EvalContext())
        return shown, body


def _compile_protocol(name: str, spec: Mapping[str, Any]) -> ClientProtocol:
    where = f"protocols/{name}.yaml"
    compiler = compile_rulebook(spec, where)
    operations = {
        op_name: _operation(name, op_name, op_spec, compiler, f"{where}.operations.{op_name}")
        for op_name, op_spec in spec["operations"].items()
    }
    errors = spec.get("errors") or {}
    passthrough = spec.get("passthrough") or {}
    models = spec.get("models")
    missing = compiler.missing_references()
    if missing:
        raise RuleError(f"{where}.rules", f"rule() refers to undefined rules: {', '.join(missing)}")
    return ClientProtocol(
        name=name,
        encoder=spec.get("encoder", "sse-data"),
        keys=tuple(h.lower() for h in spec.get("keys") or ("authorization",)),
        # istr: a case-insensitive lookup in the request's headers without lowering the name each time
        forward_headers=tuple(istr(h.lower()) for h in spec.get("forward_headers") or ()),
        log_headers=tuple(h.lower() for h in spec.get("log_headers") or ()),
        request_id_header=spec.get("request_id_header"),
        operations=MappingProxyType(operations),
        error_status=MappingProxyType({int(k): int(v) for k, v in (errors.get("status") or {}).items()}),
        error_body=(
            compile_rule(errors["body"], compiler, f"{where}.errors.body") if "body" in errors else None
        ),
        passthrough_end_event=passthrough.get("end_event"),
        passthrough_usage=(
            compile_rule(passthrough["usage"], compiler, f"{where}.passthrough.usage")
            if "usage" in passthrough
            else None
        ),
        passthrough_event_usage=(
            compile_rule(passthrough["event_usage"], compiler, f"{where}.passthrough.event_usage")
            if "event_usage" in passthrough
            else None
        ),
        passthrough_summary=(
            compile_rule(passthrough["summary"], compiler, f"{where}.passthrough.summary")
            if "summary" in passthrough
            else None
        ),
        models_header=models["header"].lower() if models else None,
        models_list=compile_rule(models["list"], compiler, f"{where}.models.list") if models else None,
        models_entry=compile_rule(models["entry"], compiler, f"{where}.models.entry") if models else None,
    )


def _operation(
    protocol: str, name: str, spec: Mapping[str, Any], compiler: Compiler, where: str
) -> ClientOperation:
    return ClientOperation(
        protocol=protocol,
        name=name,
        method=spec.get("method", "POST"),
        paths=tuple(spec["paths"]),
        schema=spec.get("schema", ""),
        canonical=spec.get("canonical", name),
        request=(
            compile_transform(spec["request"], compiler, f"{where}.request") if "request" in spec else None
        ),
        response=(
            compile_transform(spec["response"], compiler, f"{where}.response") if "response" in spec else None
        ),
        stream=compile_stream(spec["stream"], compiler, f"{where}.stream") if "stream" in spec else None,
        ignored=tuple((str(k), tuple(str(k).split("."))) for k in (spec.get("ignored") or {})),
        dropped_tools=(
            compile_rule(spec["dropped_tools"], compiler, f"{where}.dropped_tools")
            if "dropped_tools" in spec
            else None
        ),
        params=MappingProxyType({str(k): str(v) for k, v in (spec.get("params") or {}).items()}),
        handler=spec.get("handler"),
        stored_events=tuple(str(name) for name in spec.get("stored_events") or ()),
    )


@functools.cache
def protocols() -> Mapping[str, ClientProtocol]:
    """Every shipped client protocol, compiled (once per process)."""
    found = {}
    checker = Draft202012Validator(load_schema("protocol.schema.json"))
    for path in sorted(PROTOCOLS_DIR.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        problems = [f"protocols/{path.name}: {error.message}" for error in checker.iter_errors(spec)]
        if problems:  # package data: a broken file is a bug of the gateway's own, found by any test
            raise ValueError("; ".join(problems))
        found[path.stem] = _compile_protocol(path.stem, spec)
    return MappingProxyType(found)


@functools.cache
def operations() -> tuple[ClientOperation, ...]:
    """The one table of client operations: every protocol's, the canonical protocol's first."""
    ordered = sorted(protocols().values(), key=lambda protocol: (not protocol.canonical, protocol.name))
    return tuple(op for protocol in ordered for op in protocol.operations.values())


def _identity_stream() -> StreamSpec:
    """The canonical stream read as events (an OpenAI-format upstream relayed to a client of another
    protocol): each chunk as it is, an error chunk as an error, `[DONE]` the end."""
    compiler = Compiler(GENERIC_FUNCTIONS)
    spec = {
        "sentinel": "[DONE]",
        "events": {"*": [{"when": "error", "error": "error"}, {"when": "!(error)", "emit": "@"}]},
    }
    return compile_stream(spec, compiler, "protocols.canonical_stream")


CANONICAL_STREAM: StreamSpec = _identity_stream()
