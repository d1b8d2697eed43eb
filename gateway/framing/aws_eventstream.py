"""AWS's binary event stream (`application/vnd.amazon.eventstream`), decoded here.

A message is a prelude (total length u32, headers length u32, CRC32 of those 8 bytes), headers (name
length u8, name, value type u8, value), the payload, and a CRC32 of everything before it, all
big-endian (botocore/eventstream.py is the reference). Each message becomes an event named by its
`:event-type` header; an exception message is named by its `:exception-type` (e.g.
`throttlingException`); an error message by its `:error-code`, with `{"message": <:error-message>}`
as its data when its payload is empty.

Why not botocore's EventStreamBuffer: it re-copies its whole buffer on every read (quadratic for a big
message arriving in small reads) and raises its own exception types. Here the buffer is a bytearray
that reads are appended to, a message longer than `max_event_bytes` is refused from its prelude
(before its bytes are held), and whatever is not an event stream (a checksum mismatch, impossible
lengths, a malformed header) raises `InvalidFraming`.
"""

from __future__ import annotations

import struct
from zlib import crc32

from gateway import json_codec
from gateway.framing.events import DEFAULT_MAX_EVENT_BYTES, EventTooLarge, InvalidFraming, StreamEvent

_PRELUDE = struct.Struct(">III")  # total length, headers length, prelude CRC
_PRELUDE_LENGTH = 12
_MIN_LENGTH = _PRELUDE_LENGTH + 4  # no headers, no payload, the message CRC
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
# header value types with a fixed size: type -> (struct, size); 0/1 are true/false (no bytes),
# 6 (bytes) and 7 (string) are u16-length-prefixed, 9 is a 16-byte UUID
_FIXED = {
    2: struct.Struct(">b"),
    3: struct.Struct(">h"),
    4: struct.Struct(">i"),
    5: struct.Struct(">q"),
    8: struct.Struct(">q"),  # timestamp, milliseconds since the epoch
}


class AwsEventStreamDecoder:
    __slots__ = ("_buffer", "_max")

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._buffer = bytearray()  # the bytes of the message in progress
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        held = self._buffer
        buf: bytes | bytearray
        if held:
            held += chunk
            buf = held
        else:
            buf = chunk
        events: list[StreamEvent] = []
        pos = 0
        size = len(buf)
        while size - pos >= _PRELUDE_LENGTH:
            total, headers_length, prelude_crc = _PRELUDE.unpack_from(buf, pos)
            if crc32(buf[pos : pos + 8]) != prelude_crc:
                raise InvalidFraming(_invalid("its prelude checksum does not match"), events)
            if total < _MIN_LENGTH or headers_length > total - _MIN_LENGTH:
                raise InvalidFraming(_invalid(f"impossible lengths ({total}, {headers_length})"), events)
            if total > self._max:
                raise EventTooLarge(f"an upstream stream message is larger than {self._max} bytes", events)
            end = pos + total
            if size < end:
                break  # the rest of this message is still to come
            (message_crc,) = _U32.unpack_from(buf, end - 4)
            if crc32(buf[pos : end - 4]) != message_crc:
                raise InvalidFraming(_invalid("a message checksum does not match"), events)
            headers_end = pos + _PRELUDE_LENGTH + headers_length
            headers = _headers(buf, pos + _PRELUDE_LENGTH, headers_end, events)
            events.append(_event(headers, buf[headers_end : end - 4].decode("utf-8", errors="replace")))
            pos = end
        if buf is held:
            del held[:pos]
        elif pos < size:
            held += buf[pos:]
        return events

    def flush(self) -> list[StreamEvent]:
        return []  # every message carries its own length: there is no last one without an end

    def has_partial_event(self) -> bool:
        return bool(self._buffer)


def _invalid(why: str) -> str:
    return f"the upstream sent bytes that are not a valid AWS event stream: {why}"


def _headers(buf: bytes | bytearray, pos: int, end: int, events: list[StreamEvent]) -> dict[str, object]:
    headers: dict[str, object] = {}
    try:
        while pos < end:
            name_end = pos + 1 + buf[pos]
            name = buf[pos + 1 : name_end].decode()
            kind = buf[name_end]
            pos = name_end + 1
            value: object
            if kind == 7 or kind == 6:  # string, bytes
                (length,) = _U16.unpack_from(buf, pos)
                raw = buf[pos + 2 : pos + 2 + length]
                pos += 2 + length
                value = raw.decode() if kind == 7 else bytes(raw)
            elif kind <= 1:  # true, false
                value = kind == 0
            elif kind == 9:  # uuid
                value = bytes(buf[pos : pos + 16])
                pos += 16
            else:
                fixed = _FIXED[kind]
                (value,) = fixed.unpack_from(buf, pos)
                pos += fixed.size
            if pos > end:
                raise ValueError("a header runs past the headers")
            headers[name] = value
    except (IndexError, KeyError, ValueError, struct.error) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidFraming(_invalid(f"malformed headers ({exc})"), events) from None
    return headers


def _event(headers: dict[str, object], data: str) -> StreamEvent:
    message_type = headers.get(":message-type")
    if message_type == "exception":
        name = headers.get(":exception-type", "exception")
    elif message_type == "error":
        # an unmodeled error carries its message in headers, not in the payload
        name = headers.get(":error-code", "error")
        if not data.strip():
            data = json_codec.dumps_str({"message": str(headers.get(":error-message") or name)})
    else:
        name = headers.get(":event-type", "event")
    return StreamEvent(str(name), data)
