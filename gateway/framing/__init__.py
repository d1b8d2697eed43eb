"""Wire framing, separate from translation: SSE today (NDJSON and AWS event stream come next)."""

from __future__ import annotations

from gateway.framing.aws_eventstream import AwsEventStreamDecoder
from gateway.framing.events import StreamDecoder
from gateway.framing.ndjson import NdjsonDecoder
from gateway.framing.sse import SseDecoder

DECODERS: dict[str, type[StreamDecoder]] = {
    "sse": SseDecoder,
    "ndjson": NdjsonDecoder,
    "aws-eventstream": AwsEventStreamDecoder,
}
