"""A transport that records what the gateway sends and replays a recorded upstream reply."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from gateway import json_codec
from gateway.engine.registry import Target


@dataclass
class Sent:
    url: str
    headers: Mapping[str, str]
    body: Any


class ReplayReply:
    def __init__(self, status: int, headers: Mapping[str, str], parts: list[bytes]) -> None:
        self.status = status
        self.headers = headers
        self._parts = parts

    async def read(self) -> bytes:
        return b"".join(self._parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        for part in self._parts:
            yield part

    def abort(self) -> None:
        self._parts = []


@dataclass
class ReplayTransport:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    parts: list[bytes] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)

    @asynccontextmanager
    async def open(self, target: Target, url: str, body: bytes) -> AsyncIterator[ReplayReply]:
        self.sent.append(Sent(url, target.provider.headers, json_codec.loads(body)))
        yield ReplayReply(self.status, self.headers, self.parts)
