"""gzip / deflate response bodies, decoded in bounded steps.

We never ask for a content coding; an upstream may send one anyway. A compressed body is a size the
upstream chooses twice: 1 MB of gzip can decode to 1 GiB. So decoding is driven by the reader and
bounded per step: `decode(limit)` returns at most `limit` bytes, feeding zlib at most `_INPUT_SLICE`
compressed bytes at a time (zlib copies what it did not consume into `unconsumed_tail`: small slices
keep that copy small). The body caps are the reader's to apply (Http1Connection counts the decoded
bytes); between steps the event loop runs.

gzip members that follow one another are all decoded (as gzip(1) does); anything else after the end
of the compressed data, or a body that ends before it, is an error: never partial data passed off as
the whole.
"""

from __future__ import annotations

import zlib

from gateway.upstream.http1_errors import UpstreamProtocolError

DECODE_STEP = 256 * 1024  # decoded bytes produced per step at most (and per read of a stream)
_INPUT_SLICE = 64 * 1024


class ContentDecodingError(UpstreamProtocolError):
    """The body is not the compressed data its Content-Encoding says."""


class ContentDecoder:
    """One body's decoder: `feed` what arrived (once the previous input is decoded), `decode` in steps
    while `pending`, `end` when the body is complete."""

    __slots__ = ("_fed", "_input", "_more_out", "_offset", "_z")

    def __init__(self) -> None:
        self._z = zlib.decompressobj(wbits=47)  # 32 + 15: zlib or gzip header, detected
        self._input = b""
        self._offset = 0
        self._more_out = False  # the last step filled its limit: zlib may hold more output
        self._fed = False

    @property
    def pending(self) -> bool:
        """Input not decoded yet (or output zlib still holds)."""
        z = self._z
        return (
            self._offset < len(self._input)
            or bool(z.unconsumed_tail)
            or (self._more_out and not z.eof)
            or (z.eof and bool(z.unused_data))
        )

    def feed(self, data: bytes) -> None:
        assert not self.pending, "feed only once the previous input is decoded"
        self._input = data
        self._offset = 0
        self._fed = self._fed or bool(data)

    def decode(self, limit: int) -> bytes:
        """At most `limit` decoded bytes of the input fed so far (b"" when it holds no more yet)."""
        out: list[bytes] = []
        room = limit
        z = self._z
        try:
            while room > 0:
                if z.eof:  # the end of one member: another may follow
                    rest = z.unused_data + self._input[self._offset :]
                    if not rest:
                        self._more_out = False  # nothing is left in zlib after the end
                        break
                    self._z = z = zlib.decompressobj(wbits=47)
                    self._input, self._offset = rest, 0
                tail = z.unconsumed_tail
                if tail:
                    data = tail
                elif self._offset < len(self._input):
                    data = self._input[self._offset : self._offset + _INPUT_SLICE]
                    self._offset += len(data)
                elif self._more_out:
                    data = b""
                else:
                    break
                piece = z.decompress(data, room)
                self._more_out = len(piece) == room
                if piece:
                    out.append(piece)
                    room -= len(piece)
        except zlib.error as exc:
            raise ContentDecodingError(f"undecodable compressed body: {exc}") from None
        return out[0] if len(out) == 1 else b"".join(out)

    def end(self) -> None:
        """The body is complete and decoded: its compressed data must have ended too."""
        if self._fed and not self._z.eof:
            raise ContentDecodingError("the compressed body ends before its compressed data does")
