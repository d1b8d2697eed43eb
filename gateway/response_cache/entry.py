"""One cached answer as the client got it: the JSON body, or a stream's frames (its whole SSE body),
in the client's own protocol, with the headers that describe it."""

from __future__ import annotations

from dataclasses import dataclass

from gateway import json_codec


@dataclass(frozen=True, slots=True)
class CachedReply:
    """What a hit replays. `stream`: `body` is a stream's frames (served as a stream), else a JSON
    body. `provider` / `upstream_model`: who first answered (the access log and metrics of a hit)."""

    stream: bool
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    provider: str | None = None
    upstream_model: str | None = None

    @property
    def size(self) -> int:
        """Bytes it holds (the body; the few headers are not worth counting)."""
        return len(self.body)

    def encode(self) -> bytes:
        """For a store that keeps bytes (Redis): a JSON line describing the entry, then the body."""
        meta = [self.stream, self.headers, self.provider, self.upstream_model]
        return json_codec.dumps(meta) + b"\n" + self.body

    @classmethod
    def decode(cls, data: bytes) -> CachedReply:
        meta, _, body = data.partition(b"\n")
        stream, headers, provider, upstream_model = json_codec.loads(meta)
        return cls(bool(stream), body, tuple((str(n), str(v)) for n, v in headers), provider, upstream_model)
