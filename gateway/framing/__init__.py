"""Wire framing, separate from translation: SSE, NDJSON and the AWS event stream, each decoded into
`StreamEvent`s by a decoder that holds at most `max_event_bytes` of one event."""

from __future__ import annotations

from collections.abc import Callable

from gateway.framing.aws_eventstream import AwsEventStreamDecoder
from gateway.framing.events import StreamDecoder
from gateway.framing.ndjson import NdjsonDecoder
from gateway.framing.sse import SseDecoder

# a dialect's `framing` -> its decoder, built with the largest event it may hold
DECODERS: dict[str, Callable[[int], StreamDecoder]] = {
    "sse": SseDecoder,
    "ndjson": NdjsonDecoder,
    "aws-eventstream": AwsEventStreamDecoder,
}
