"""How a stream ended once its 200 had gone out: one word per stream, for the circuit breaker, the
access log (`stream_outcome`, on the request and on its attempt) and the metrics.

A stream that started is no longer retried or failed over, but it can still fail: the upstream may
stall, reset, stop short, send its own error event or bytes that are not events. Those outcomes count
against the target like a failed attempt (`UPSTREAM_FAULTS`); a client that leaves and the gateway's
own failures do not.
"""

from __future__ import annotations

from typing import Final, Literal

from gateway.upstream.transport import UpstreamFailure

StreamOutcome = Literal[
    "ok",  # the upstream's stream ended as it should ([DONE], its terminal event)
    "truncated",  # the upstream closed before the end of the stream
    "timeout",  # the upstream stalled past the idle or total timeout
    "broken",  # the upstream connection broke (reset, not valid HTTP)
    "upstream_error",  # the upstream ended its stream with an error event of its own
    "invalid",  # bytes that are not the framing, or an event that is not JSON
    "too_large",  # one event over upstream.max_event_bytes
    "translation_failed",  # the dialect's rules could not translate an event
    "client_closed",  # the client went away first
    "internal_error",  # the gateway itself failed
]

UPSTREAM_FAULTS: Final[frozenset[StreamOutcome]] = frozenset(
    ("truncated", "timeout", "broken", "upstream_error", "invalid", "too_large", "translation_failed")
)


def failure_outcome(failure: UpstreamFailure) -> StreamOutcome:
    return "timeout" if failure.kind == "timeout" else "broken"
