"""Every request parameter's fate in every dialect, found by trying it: the parameter matrix.

A dialect can lose a parameter without a word: a template that never mentions it, a `drop`, a
mapping that only knows some values. Reading the rules does not tell; running them does. For each
parameter of the OpenAI request schemas, the probes (`parameter_probes.yaml`) give values that ask
the upstream for something; each is added to a minimal request and put through the operation the way
the proxy does it (its `unsupported` conditions, then its request transform), and what the upstream
would receive, with and without it, tells the fate:

- rejected: an `unsupported` condition holds (400 `unsupported_parameter` naming it, or dropped
  where the provider sets `unsupported_params: drop`), or a rule refuses the value (400
  `unsupported_value`);
- passed: the upstream body gains the parameter as it is;
- mapped: the upstream request changes otherwise (another field or shape, the stream path);
- emulated: the upstream request does not change and the gateway honours it itself (the operation's
  `emulated`, or the probe's: what the stream relay does with `stream_options`);
- ignored: the upstream request does not change, as the operation's `ignored` declares (leaving it
  out changes nothing the client gets);
- LOST: the upstream request does not change and nothing says why: silently dropped.

`gateway params` prints the matrix; a test fails on any LOST cell of a shipped dialect, and keeps the
README's copy of the matrix equal to this module's output.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gateway.config.problems import ConfigError, unknown_name
from gateway.engine.bridges import with_bridges
from gateway.engine.dialect import OPERATIONS, Dialect, Operation, compile_dialect
from gateway.engine.dialect_sources import resolve_dialects
from gateway.rules.compiler import is_false
from gateway.rules.context import EvalContext
from gateway.rules.functions import RuleFailure
from gateway.schema_files import load_schema

PROBES_FILE = Path(__file__).with_name("parameter_probes.yaml")
REQUEST_SCHEMAS = {
    "chat": "chat_completion_request.schema.json",
    "completions": "completion_request.schema.json",
    "embeddings": "embedding_request.schema.json",
}
ENDPOINTS = {"chat": "/v1/chat/completions", "completions": "/v1/completions", "embeddings": "/v1/embeddings"}
FAILED = ("LOST", "error")  # fates a shipped dialect must not have


@dataclass(frozen=True, slots=True)
class Probe:
    param: str
    value: Any
    note: str | None = None  # what tells this probe from the parameter's others
    context: Mapping[str, Any] | None = None  # other members the value needs
    model: str | None = None  # the upstream model, when the fate depends on it
    emulated: str | None = None  # how the gateway honours it whatever the upstream gets
    # not OpenAI's: a parameter another client protocol carries into the canonical request
    extension: str | None = None

    @property
    def label(self) -> str:
        return f"`{self.param}`" + (f" {self.note}" if self.note else "")


@dataclass(frozen=True, slots=True)
class Probes:
    base: Mapping[str, Mapping[str, Any]]  # operation -> its minimal request
    inputs: Mapping[str, tuple[str, ...]]  # operation -> the base request's members (not probed)
    probes: Mapping[str, tuple[Probe, ...]]  # operation -> its probes, in table order


@dataclass(frozen=True, slots=True)
class Fate:
    fate: str
    detail: str  # why: the condition, the upstream fields, the declaration


@functools.cache
def load_probes(path: Path = PROBES_FILE) -> Probes:
    spec: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    probes: dict[str, tuple[Probe, ...]] = {}
    for operation, params in spec["probes"].items():
        found: list[Probe] = []
        for param, entries in params.items():
            for entry in entries if isinstance(entries, list) else [entries]:
                found.append(
                    Probe(
                        param=param,
                        value=entry["value"],
                        note=entry.get("note"),
                        context=entry.get("with"),
                        model=entry.get("model"),
                        emulated=entry.get("emulated"),
                        extension=entry.get("extension"),
                    )
                )
        probes[operation] = tuple(found)
    return Probes(
        base=spec["base"],
        inputs={op: tuple(names) for op, names in spec["inputs"].items()},
        probes=probes,
    )


def schema_parameters(operation: str) -> tuple[str, ...]:
    """The request parameters of an operation's vendored schema."""
    return tuple(load_schema(REQUEST_SCHEMAS[operation]).get("properties", {}))


def fate_of(operation: Operation, base: Mapping[str, Any], probe: Probe) -> Fate:
    """What becomes of `probe` in `operation` (see the module's docstring)."""
    without = {**base, **(probe.context or {})}
    if probe.model is not None:
        without["model"] = probe.model
    with_it = {**without, probe.param: probe.value}
    operation = operation.for_model(without["model"])
    already = _conditions_holding(operation, without)
    newly = [param for param in _conditions_holding(operation, with_it) if param not in already]
    if newly:
        return Fate("rejected", f"unsupported: {', '.join(newly)}")
    try:
        before = _upstream_request(operation, without)
    except RuleFailure as exc:
        return Fate("error", f"the request without it is refused: {exc}")
    try:
        after = _upstream_request(operation, with_it)
    except RuleFailure as exc:
        return Fate("rejected", f"refused: {exc}")
    if after != before:
        path, body = after
        if path == before[0] and isinstance(body, dict) and body == {**before[1], probe.param: probe.value}:
            return Fate("passed", probe.param)
        return Fate("mapped", _difference(before, after))
    declared = dict(operation.emulated).get(probe.param) or probe.emulated
    if declared:
        return Fate("emulated", declared)
    ignored = dict(operation.ignored).get(probe.param)
    if ignored:
        return Fate("ignored", ignored)
    return Fate("LOST", "the upstream request is the same with it and without it")


def _conditions_holding(operation: Operation, request: dict[str, Any]) -> list[str]:
    ctx = EvalContext(request=request)
    return [
        u.param for u in operation.unsupported if u.path[0] in request and not is_false(u.when(request, ctx))
    ]


def _upstream_request(operation: Operation, request: dict[str, Any]) -> tuple[str, Any]:
    """The path and body the upstream would get (as target_request.prepare builds them)."""
    ctx = EvalContext(request=request)
    body = request if operation.request.is_identity else operation.request.apply(dict(request), ctx)
    stream = request.get("stream") is True and operation.stream_path
    return (operation.stream_path if stream else operation.path) or "", body


def _difference(before: tuple[str, Any], after: tuple[str, Any]) -> str:
    if before[0] != after[0]:
        return f"path {after[0]}"
    old, new = before[1], after[1]
    if isinstance(old, dict) and isinstance(new, dict):
        changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        return "body: " + ", ".join(changed)
    return "body"


def compiled_dialects(
    user: Mapping[str, Mapping[str, Any]] | None = None, names: Iterable[str] | None = None
) -> dict[str, Dialect]:
    """The shipped dialects and `user`'s (a config's `dialects:`), compiled as the registry compiles
    them (bridges included), by name; only `names` when given (ConfigError for an unknown one)."""
    specs = resolve_dialects(user or {})
    wanted = sorted(specs) if names is None else sorted(set(names))
    unknown = [
        unknown_name("dialect", name, specs, listed_as="known") for name in wanted if name not in specs
    ]
    if unknown:
        raise ConfigError(unknown)
    return {name: with_bridges(compile_dialect(name, specs[name][1], specs[name][0])) for name in wanted}


Matrix = dict[str, dict[str, list[tuple[Probe, Fate | None]]]]  # operation -> dialect -> per probe


def parameter_matrix(dialects: Mapping[str, Dialect], probes: Probes | None = None) -> Matrix:
    """operation -> dialect -> (probe, fate) in probe order; fate None where the dialect does not
    serve the operation."""
    probes = probes or load_probes()
    matrix: Matrix = {}
    for op in OPERATIONS:
        matrix[op] = {}
        for name, dialect in dialects.items():
            operation = dialect.operations.get(op)
            matrix[op][name] = [
                (probe, None if operation is None else fate_of(operation, probes.base[op], probe))
                for probe in probes.probes.get(op, ())
            ]
    return matrix


def failures(matrix: Matrix) -> list[str]:
    """Every LOST (or unprobeable) cell, as `dialect operation parameter: why`."""
    return [
        f"{name} {op} {probe.label}: {fate.fate} ({fate.detail})"
        for op, by_dialect in matrix.items()
        for name, cells in by_dialect.items()
        for probe, fate in cells
        if fate is not None and fate.fate in FAILED
    ]


LEGEND = (
    "**passed**: sent as it is · **mapped**: translated to the upstream's own field or form · "
    "**emulated**: done by the gateway · **ignored**: left out, changing nothing the client gets "
    "(named in the `x-gateway-dropped-params` reply header) · **rejected**: 400 "
    "`unsupported_parameter` naming it (dropped, and named in that header, where the provider sets "
    "`unsupported_params: drop`) · —: the endpoint is not served. `(o3)`: with a reasoning model "
    "upstream (o-series, gpt-5)."
)


def markdown(matrix: Matrix) -> str:
    """The matrix as Markdown: one table per operation, a row per probe, a column per dialect."""
    lines = [LEGEND]
    for op, by_dialect in matrix.items():
        names = list(by_dialect)
        if not names or not any(by_dialect.values()):
            continue
        lines += ["", f"`{ENDPOINTS[op]}`", ""]
        lines.append("| parameter | " + " | ".join(names) + " |")
        lines.append("|---" * (len(names) + 1) + "|")
        for row, probe in enumerate(probe for probe, _ in by_dialect[names[0]]):
            cells = (by_dialect[name][row][1] for name in names)
            lines.append(f"| {probe.label} | " + " | ".join(_cell(f) for f in cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(fate: Fate | None) -> str:
    if fate is None:
        return "—"
    return f"**{fate.fate}**" if fate.fate in FAILED else fate.fate


def unprobed(probes: Probes, operations: Iterable[str] = OPERATIONS) -> list[str]:
    """Schema parameters without a probe (and probes of parameters the schema does not have)."""
    missing: list[str] = []
    for op in operations:
        params = set(schema_parameters(op)) - set(probes.inputs.get(op, ()))
        probed = {probe.param for probe in probes.probes.get(op, ()) if probe.extension is None}
        missing += [f"{op}: {p} has no probe" for p in sorted(params - probed)]
        missing += [f"{op}: {p} is not a parameter of the schema" for p in sorted(probed - params)]
    return missing
