"""A stream response that keeps what it writes, so that a complete stream can be cached as the frames
the client got (in its protocol) and served again as a stream. The relay makes one only for an alias
that caches (stream_relay): other streams pay nothing."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from gateway.response_cache.cache import RESPONSE_CACHE


class RecordingStreamResponse(web.StreamResponse):
    """`frames`: every byte written, in order; None once they passed the cache's largest entry (such a
    stream is relayed as usual, and not kept)."""

    def __init__(self, *, status: int, headers: dict[str, str]) -> None:
        super().__init__(status=status, headers=headers)
        self.frames: list[bytes] | None = []
        self._left = 0

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        cache = request.app.get(RESPONSE_CACHE) if isinstance(request, web.Request) else None
        self._left = cache.max_entry_bytes if cache is not None else 0
        return await super().prepare(request)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        frames = self.frames
        if frames is not None:
            self._left -= len(data)
            if self._left < 0:
                self.frames = None
            else:
                frames.append(bytes(data))
        await super().write(data)

    def recorded(self) -> bytes | None:
        return b"".join(self.frames) if self.frames is not None else None
