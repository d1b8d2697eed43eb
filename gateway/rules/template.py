"""Rules as data: a YAML value compiled into one evaluator, and body transforms built from rules.

A rule is
- a string: a JMESPath expression over the input (`'text'` is a string literal, `` `1` `` a JSON one);
- a mapping: an object template, one rule per key; keys whose value is null are left out, unless the
  key ends in `!` (`content!: ...` always emits `content`, null or not);
- a list: an array template; null items are left out;
- a number, boolean or null: that constant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from gateway.rules.compiler import Compiler, Evaluator, ExpressionError
from gateway.rules.context import EvalContext
from gateway.rules.semantics import LocatedError

Path = tuple[str, ...]


class RuleError(ValueError):
    """A rule that cannot be compiled, with the dotted location of the rule in its file."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.reason = message


def compile_rule(spec: Any, compiler: Compiler, where: str) -> Evaluator:
    """The rule as one function: its template and every expression in it compiled together."""
    tree = _rule_tree(spec, compiler, where)
    try:
        return compiler.compile_tree(tree)
    except LocatedError as exc:
        raise RuleError(exc.where, exc.reason) from None


def _rule_tree(spec: Any, compiler: Compiler, where: str) -> dict[str, Any]:
    """The rule as a syntax tree for codegen.py: jmespath's nodes inside `_object`, `_list` and
    `_expr` nodes (an expression with its location). An `_expr` may carry the error that makes it
    invalid instead, raised when code is generated for it: errors are reported in the rule's order."""
    if isinstance(spec, str):
        try:
            return {"type": "_expr", "where": where, "node": compiler.parse(spec)}
        except ExpressionError as exc:
            return {"type": "_expr", "where": where, "error": str(exc)}
    if isinstance(spec, Mapping):
        fields = []
        for raw_key, sub in spec.items():
            key = str(raw_key)
            keep_null = key.endswith("!")
            name = key[:-1] if keep_null else key
            fields.append((name, keep_null, _rule_tree(sub, compiler, f"{where}.{name}")))
        return {"type": "_object", "fields": fields}
    if isinstance(spec, list):
        items = [_rule_tree(item, compiler, f"{where}[{i}]") for i, item in enumerate(spec)]
        return {"type": "_list", "items": items}
    if spec is None or isinstance(spec, bool | int | float):
        return {"type": "literal", "value": spec, "children": []}
    error = f"a rule is an expression string, a mapping, a list or a constant, not {spec!r}"
    return {"type": "_expr", "where": where, "error": error}


def parse_path(dotted: str) -> Path:
    return tuple(dotted.split("."))


def _copy_to_parent(root: dict[str, Any], path: Path, create: bool) -> dict[str, Any] | None:
    """Copy-on-write walk: every dict on the way to `path`'s parent is copied so inputs are not mutated."""
    node = root
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            if not create:
                return None
            child = {}
        else:
            child = dict(child)
        node[key] = child
        node = child
    return node


def set_path(root: dict[str, Any], path: Path, value: Any) -> None:
    parent = _copy_to_parent(root, path, create=True)
    assert parent is not None
    parent[path[-1]] = value


def pop_path(root: dict[str, Any], path: Path) -> Any:
    if len(path) > 1 and not isinstance(root.get(path[0]), dict):
        return None
    parent = _copy_to_parent(root, path, create=False)
    return None if parent is None else parent.pop(path[-1], None)


@dataclass(frozen=True, slots=True)
class BodyTransform:
    """`template` builds a new body (absent: start from a copy of the input); then `set` writes
    computed fields (expressions over the input; null writes nothing), `rename` moves fields and
    `drop` removes them. Paths are dotted (`generationConfig.seed`). `then` runs next, over this
    transform's output, its `set` still reading the original input (a provider's overrides)."""

    template: Evaluator | None
    set_fields: tuple[tuple[Path, Evaluator], ...] = ()
    rename: tuple[tuple[Path, Path], ...] = ()
    drop: tuple[Path, ...] = ()
    then: BodyTransform | None = None
    before: BodyTransform | None = None  # a whole transform that runs first (a bridge)
    after: BodyTransform | None = None  # a whole transform that runs last, over the output

    def apply(self, source: Any, ctx: EvalContext) -> Any:
        if self.before is not None:
            source = self.before.apply(source, ctx)
        out = self._build(source, ctx)
        return out if self.after is None else self.after.apply(out, ctx)

    def _build(self, source: Any, ctx: EvalContext) -> Any:
        if self.template is not None:
            out = self.template(source, ctx)
        elif isinstance(source, dict):
            out = dict(source)
        else:
            out = source
        return self._edit(out, source, ctx)

    def _edit(self, out: Any, source: Any, ctx: EvalContext) -> Any:
        if isinstance(out, dict):
            for path, rule in self.set_fields:
                value = rule(source, ctx)
                if value is not None:
                    set_path(out, path, value)
            for old, new in self.rename:
                moved = pop_path(out, old)
                if moved is not None:
                    set_path(out, new, moved)
            for path in self.drop:
                pop_path(out, path)
        return out if self.then is None else self.then._edit(out, source, ctx)

    @property
    def is_identity(self) -> bool:
        return (
            self.template is None
            and not (self.set_fields or self.rename or self.drop)
            and (self.then is None or self.then.is_identity)
            and self.before is None
            and self.after is None
        )


def compile_transform(spec: Mapping[str, Any] | None, compiler: Compiler, where: str) -> BodyTransform:
    spec = spec or {}
    template = compile_rule(spec["template"], compiler, f"{where}.template") if "template" in spec else None
    set_fields = tuple(
        (parse_path(str(path)), compile_rule(rule, compiler, f"{where}.set.{path}"))
        for path, rule in (spec.get("set") or {}).items()
    )
    rename = tuple((parse_path(str(a)), parse_path(str(b))) for a, b in (spec.get("rename") or {}).items())
    drop = tuple(parse_path(str(path)) for path in spec.get("drop") or ())
    return BodyTransform(template, set_fields, rename, drop)


IDENTITY = BodyTransform(None)  # the body as it is


def chain_transforms(first: BodyTransform, then: BodyTransform) -> BodyTransform:
    """`first`, then `then`'s set/rename/drop over its output (`then` may not have a template)."""
    if then.template is not None:
        raise ValueError("an override edits a body; it cannot replace the template")
    if then.is_identity:
        return first
    return replace(first, then=then if first.then is None else chain_transforms(first.then, then))
