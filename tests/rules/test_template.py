"""Templates and body transforms: what a dialect's request/response sections do to a body."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from gateway.rules.compiler import Compiler
from gateway.rules.context import EvalContext
from gateway.rules.functions import GENERIC_FUNCTIONS
from gateway.rules.template import RuleError, chain_transforms, compile_rule, compile_transform


def compiler() -> Compiler:
    return Compiler(GENERIC_FUNCTIONS)


def test_object_template_omits_nulls_unless_key_ends_with_bang() -> None:
    rule = compile_rule({"a": "x", "b": "missing", "c!": "missing", "d": 3, "e": False}, compiler(), "t")
    assert rule({"x": 1}, EvalContext()) == {"a": 1, "c": None, "d": 3, "e": False}


def test_list_template_drops_null_items_and_nests() -> None:
    rule = compile_rule([{"role": "'user'", "text": "x"}, "missing", "x"], compiler(), "t")
    assert rule({"x": "hi"}, EvalContext()) == [{"role": "user", "text": "hi"}, "hi"]


def test_rule_error_names_the_location() -> None:
    with pytest.raises(RuleError) as info:
        compile_rule({"outer": {"inner": "a.["}}, compiler(), "dialects.x.rules.r")
    assert info.value.where == "dialects.x.rules.r.outer.inner"


def test_transform_without_template_copies_then_edits_without_mutating_input() -> None:
    transform = compile_transform(
        {
            "set": {"generation.seed": "seed", "fixed": "`1`", "absent": "nothing"},
            "rename": {"max_tokens": "max_output_tokens"},
            "drop": ["stream_options", "nested.gone"],
        },
        compiler(),
        "t",
    )
    source: dict[str, Any] = {
        "seed": 7,
        "max_tokens": 10,
        "stream_options": {},
        "nested": {"gone": 1, "kept": 2},
        "other": "x",
    }
    out = transform.apply(source, EvalContext())
    assert out == {
        "seed": 7,
        "max_output_tokens": 10,
        "nested": {"kept": 2},
        "other": "x",
        "generation": {"seed": 7},
        "fixed": 1,
    }
    assert source["nested"] == {"gone": 1, "kept": 2}
    assert "max_tokens" in source


def test_identity_transform_is_detected() -> None:
    assert compile_transform(None, compiler(), "t").is_identity
    assert not compile_transform({"drop": ["x"]}, compiler(), "t").is_identity


def test_chained_override_runs_after_the_dialect_and_wins() -> None:
    dialect = compile_transform({"template": {"a": "a", "x": "x"}, "drop": ["x"]}, compiler(), "d")
    override = compile_transform({"set": {"x": "`5`"}, "rename": {"a": "b"}}, compiler(), "p")
    chained = chain_transforms(dialect, override)
    assert chained.apply({"a": 1, "x": 2}, EvalContext()) == {"b": 1, "x": 5}


def test_override_cannot_replace_a_template() -> None:
    base = compile_transform(None, compiler(), "d")
    with pytest.raises(ValueError, match="cannot replace the template"):
        chain_transforms(base, compile_transform({"template": "@"}, compiler(), "p"))


def test_a_transform_with_a_bridge_before_or_after_is_not_the_identity() -> None:
    bridge = compile_transform({"template": {"wrapped": "@"}}, compiler(), "b")
    plain = compile_transform(None, compiler(), "p")
    assert plain.is_identity
    assert not replace(plain, before=bridge).is_identity
    assert not replace(plain, after=bridge).is_identity
    assert replace(plain, after=bridge).apply({"a": 1}, EvalContext()) == {"wrapped": {"a": 1}}
