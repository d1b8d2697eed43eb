"""A transport that records what the gateway sends and replays a recorded upstream reply."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from gateway import json_codec
from gateway.engine.registry import Target
from gateway.upstream.mock import MockReply


@dataclass
class Sent:
    url: str
    headers: Mapping[str, str]
    body: Any


@dataclass
class ReplayTransport:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    parts: list[bytes] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)

    @asynccontextmanager
    async def open(
        self, target: Target, url: str, body: bytes, extra_headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[MockReply]:
        headers = {**(extra_headers or {}), **target.provider.headers}
        self.sent.append(Sent(url, headers, json_codec.loads(body)))
        yield MockReply(self.status, self.headers, self.parts)
