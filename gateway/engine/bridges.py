"""Operations a dialect does not have, built from one it has (today: completions through chat).

The bridge's rules are package data (`gateway/bridges/*.yaml`), compiled once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from gateway.engine.dialect import (
    Dialect,
    Operation,
    StreamSpec,
    Unsupported,
    compile_stream,
    compile_unsupported,
)
from gateway.rules.compiler import Compiler, Evaluator
from gateway.rules.functions import GENERIC_FUNCTIONS
from gateway.rules.template import BodyTransform, compile_rule, compile_transform

BRIDGES_DIR = Path(__file__).resolve().parent.parent / "bridges"


@dataclass(frozen=True, slots=True)
class ChatBridge:
    request: BodyTransform
    response: BodyTransform
    chunk: Evaluator
    stream: StreamSpec
    unsupported: tuple[Unsupported, ...]


@functools.cache
def completions_bridge() -> ChatBridge:
    where = "bridges/completions_via_chat.yaml"
    spec: dict[str, Any] = yaml.safe_load((BRIDGES_DIR / "completions_via_chat.yaml").read_text())
    rules: dict[str, Evaluator] = {}
    compiler = Compiler(GENERIC_FUNCTIONS, rules=rules, enums=spec.get("enums", {}))
    for name, rule in spec["rules"].items():
        rules[name] = compile_rule(rule, compiler, f"{where}.rules.{name}")
    return ChatBridge(
        request=compile_transform(spec["request"], compiler, f"{where}.request"),
        response=compile_transform(spec["response"], compiler, f"{where}.response"),
        chunk=compile_rule(spec["chunk"], compiler, f"{where}.chunk"),
        stream=compile_stream(spec["stream"], compiler, f"{where}.stream"),
        unsupported=compile_unsupported(spec["unsupported"], compiler, f"{where}.unsupported"),
    )


def completions_via_chat(chat: Operation) -> Operation:
    """/v1/completions served by `chat`: prompt in as a user message, text out of each choice."""
    bridge = completions_bridge()
    stream = chat.stream if chat.stream is not None else bridge.stream
    return replace(
        chat,
        request=replace(chat.request, before=bridge.request),
        response=replace(chat.response, after=bridge.response),
        stream=replace(stream, post_chunk=bridge.chunk),
        # the chat operation's own limits still apply (seed, n, penalties mean the same in both)
        unsupported=bridge.unsupported + chat.unsupported,
    )


def with_bridges(dialect: Dialect) -> Dialect:
    """The dialect plus every operation a bridge can build from the ones it has."""
    operations = dict(dialect.operations)
    if "chat" in operations and "completions" not in operations:
        operations["completions"] = completions_via_chat(operations["chat"])
    return replace(dialect, operations=MappingProxyType(operations))
