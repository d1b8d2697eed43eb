"""An operation's `models` overlays (dialect.Operation.for_model): limits and request edits for the
upstream models a pattern finds, checked when the dialect is compiled."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.engine.dialect import compile_dialect
from gateway.rules.context import EvalContext
from gateway.rules.template import RuleError


def _chat(models: dict[str, Any]) -> dict[str, Any]:
    return {"operations": {"chat": {"path": "/chat", "unsupported": {"n": "n > `1`"}, "models": models}}}


def test_overlays_add_limits_and_edits_for_the_models_they_find() -> None:
    spec = _chat(
        {
            "^big-": {
                "unsupported": {"seed": "seed != null"},
                "request": {"rename": {"max_tokens": "limit"}},
            },
            "-v2$": {"request": {"drop": ["user"]}},
        }
    )
    chat = compile_dialect("d", spec, "d").operations["chat"]
    body = {"model": "x", "max_tokens": 5, "user": "u"}

    both = chat.for_model("big-v2")
    assert [u.param for u in both.unsupported] == ["n", "seed"]
    assert both.request.apply(dict(body), EvalContext()) == {"model": "x", "limit": 5}
    assert both.models == ()  # applied: nothing left to match

    assert [u.param for u in chat.for_model("big-v1").unsupported] == ["n", "seed"]
    assert chat.for_model("small-v2").request.apply(dict(body), EvalContext()) == {
        "model": "x",
        "max_tokens": 5,
    }
    assert chat.for_model("small") is chat


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (
            {"(": {}},
            "d.operations.chat.models.(: not a regular expression: missing ), unterminated subpattern",
        ),
        (
            {"^x": {"request": {"template": {"a": "b"}}}},
            "d.operations.chat.models.^x.request: edits the operation's body (set, rename, drop)",
        ),
    ],
)
def test_a_bad_overlay_is_a_compile_error(models: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError) as info:
        compile_dialect("d", _chat(models), "d")
    assert str(info.value).startswith(message)


def test_unsupported_takes_a_reason() -> None:
    spec = {
        "operations": {"chat": {"path": "/c", "unsupported": {"n": {"when": "n > `1`", "why": "one answer"}}}}
    }
    (entry,) = compile_dialect("d", spec, "d").operations["chat"].unsupported
    assert (entry.param, entry.why) == ("n", "one answer")
    assert entry.when({"n": 2}, EvalContext()) is True
