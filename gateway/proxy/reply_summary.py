"""What answered and why it stopped, for a traced request's span (`gen_ai.response.model`,
`gen_ai.response.finish_reasons`): read from the canonical reply or stream chunks, or from a
native reply or stream event by its protocol's `passthrough.summary` rule.

Only a traced request is read (`RequestRecord.trace_reply`, set by the tracing middleware): with
tracing off, the layers that call these pay one attribute test per reply or stream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway import json_codec
from gateway.engine.protocol import ClientProtocol
from gateway.proxy.request_record import RequestRecord
from gateway.rules.context import EvalContext


def _add_reasons(access: RequestRecord, reasons: Any) -> None:
    listed = reasons if isinstance(reasons, list) else [reasons]
    found = [reason for reason in listed if isinstance(reason, str)]
    if found:
        access.finish_reasons = [*(access.finish_reasons or ()), *found]


def canonical_reply(access: RequestRecord, reply: Any) -> None:
    """A canonical reply or stream chunk: its model (the first seen), its choices' finish reasons."""
    if not isinstance(reply, dict):
        return
    model = reply.get("model")
    if access.response_model is None and isinstance(model, str):
        access.response_model = model
    choices = reply.get("choices")
    if isinstance(choices, list):
        _add_reasons(access, [c.get("finish_reason") for c in choices if isinstance(c, dict)])


def native_reply(access: RequestRecord, protocol: ClientProtocol, reply: Any) -> None:
    """A reply or stream event in the client's own protocol, summarized by its protocol's rule
    (`{model, finish_reasons}`; a protocol without one says nothing)."""
    rule = protocol.passthrough_summary
    if rule is None or not isinstance(reply, dict):
        return
    summary = rule(reply, EvalContext())
    if not isinstance(summary, dict):
        return
    model = summary.get("model")
    if access.response_model is None and isinstance(model, str):
        access.response_model = model
    _add_reasons(access, summary.get("finish_reasons"))


def stream_observer(access: RequestRecord, protocol: ClientProtocol | None) -> Callable[[str], None] | None:
    """For a relayed stream of a traced request: what reads each event's data (canonical chunks, or
    the protocol's own events); None when the request is not traced."""
    if not access.trace_reply:
        return None

    def observe(data: str) -> None:
        try:
            event = json_codec.loads(data)
        except json_codec.JSONDecodeError:
            return
        if protocol is None:
            canonical_reply(access, event)
        else:
            native_reply(access, protocol, event)

    return observe
