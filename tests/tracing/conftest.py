"""Fixtures of the tracing tests: one fake OpenAI upstream per module, emptied around each test, and
the traced rig around it (tests/tracing/rig.py; the `otel` extra, which `make test` installs)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

from tests.support.fake_upstreams import FakeOpenAI

if TYPE_CHECKING:
    from tests.tracing.rig import Traced


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().serve()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture(autouse=True)
def _fresh_fake(fake_openai: FakeOpenAI) -> Iterator[None]:
    fake_openai.reset()
    yield
    fake_openai.reset()


@pytest.fixture
async def traced(fake_openai: FakeOpenAI) -> AsyncIterator[Traced]:
    from tests.tracing.rig import Traced, traced_client

    client, exporter = await traced_client(fake_openai.url)
    async with client:
        yield Traced(client, exporter)
