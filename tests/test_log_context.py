"""The request's log fields: set per request, carried into the tasks it starts, merged after an event's
own keys, gone for the next request on the same context."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from gateway.log_context import add_request_field, merge_request_fields, start_request


def _merged(**event: Any) -> dict[str, Any]:
    return dict(merge_request_fields(None, "info", event))


def test_an_events_own_keys_win_and_the_fields_follow_them_in_order() -> None:
    def run() -> None:
        start_request({"request_id": "req_1", "client_request_id": "c-1"})
        add_request_field("trace_id", "t" * 32)
        assert list(_merged(event="x", request_id="mine").items()) == [
            ("event", "x"),
            ("request_id", "mine"),
            ("client_request_id", "c-1"),
            ("trace_id", "t" * 32),
        ]

    contextvars.copy_context().run(run)


def test_outside_a_request_nothing_is_merged_and_a_field_starts_one() -> None:
    def run() -> None:
        assert _merged(event="x") == {"event": "x"}
        add_request_field("trace_id", "abc")
        assert _merged(event="x") == {"event": "x", "trace_id": "abc"}

    contextvars.copy_context().run(run)


async def test_the_next_request_does_not_see_the_last_ones_fields_but_its_tasks_keep_theirs() -> None:
    seen: list[dict[str, Any]] = []

    async def later() -> None:
        await asyncio.sleep(0)
        seen.append(_merged(event="background"))

    start_request({"request_id": "req_1"})
    add_request_field("trace_id", "t1")
    task = asyncio.get_running_loop().create_task(later())
    start_request({"request_id": "req_2"})  # the next request on this connection's task
    await task
    assert seen == [{"event": "background", "request_id": "req_1", "trace_id": "t1"}]
    assert _merged(event="now") == {"event": "now", "request_id": "req_2"}
