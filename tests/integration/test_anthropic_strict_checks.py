"""The strict checks the Anthropic SDK tests rely on (tests/support/anthropic_strict.py) refuse what
they must: a check that passes everything would make every test that uses it pass too."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest

from tests.support.anthropic_strict import check_error, check_message, check_stream
from tests.support.fake_upstreams import anthropic_event, anthropic_message, anthropic_stream, tool_use_block


def _stream(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(anthropic_event(name, data) for name, data in events)


def _events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in body.decode().split("\n\n"):
        if block:
            name, data = block.split("\n")
            out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


GOOD = b"".join(
    p for p in anthropic_stream(tool_calls=[tool_use_block("toolu_1", "f", {"a": 1})]) if isinstance(p, bytes)
)


def test_a_good_stream_and_message_pass() -> None:
    assert check_stream(GOOD)[0]["type"] == "message_start"
    check_message(anthropic_message())


def _broken(edit: Any) -> bytes:
    events = _events(GOOD)
    edit(events)
    return _stream(events)


def _drop(kind: str) -> Any:
    return lambda events: events.remove(next(e for e in events if e[0] == kind))


BROKEN_STREAMS = {
    "unknown field": lambda events: events[0][1]["message"].update(surprise=1),
    "event name is not the type": lambda events: events.__setitem__(2, ("content_block_delta", events[2][1])),
    "index gap": lambda events: [e[1].update(index=e[1]["index"] + 1) for e in events if "index" in e[1]],
    "no message_stop": _drop("message_stop"),
    "no message_delta": _drop("message_delta"),
    "a block never closed": _drop("content_block_stop"),
    "text delta in a tool_use block": lambda events: events[-4][1].update(
        delta={"type": "text_delta", "text": "x"}
    ),
    "integer as a string": lambda events: events[-2][1]["usage"].update(output_tokens="9"),
}


@pytest.mark.parametrize("edit", BROKEN_STREAMS.values(), ids=list(BROKEN_STREAMS))
def test_a_broken_stream_is_refused(edit: Any) -> None:
    with pytest.raises((AssertionError, pydantic.ValidationError)):
        check_stream(_broken(edit))


def test_done_is_refused() -> None:
    with pytest.raises((AssertionError, ValueError)):
        check_stream(GOOD + b"data: [DONE]\n\n")


def test_a_message_with_an_unknown_field_or_a_foreign_id_is_refused() -> None:
    with pytest.raises(AssertionError, match="surprise"):
        check_message({**anthropic_message(), "surprise": True})
    with pytest.raises(AssertionError):
        check_message(anthropic_message(message_id="chatcmpl-1"))
    with pytest.raises(AssertionError):
        check_message(anthropic_message(content=[tool_use_block("call_1", "f", {})]))


def test_an_error_type_must_be_the_one_of_its_status() -> None:
    check_error(429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
    with pytest.raises(AssertionError):
        check_error(429, {"type": "error", "error": {"type": "api_error", "message": "slow down"}})
    with pytest.raises(pydantic.ValidationError):
        check_error(500, {"error": {"type": "api_error", "message": "no envelope type"}})
