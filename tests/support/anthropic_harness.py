"""Official `anthropic` SDK clients against a gateway, every response checked strictly after the test
(tests/support/anthropic_strict.py), whatever the test itself asserted.

`anthropic_fixtures(gateway)` gives the `claude` and `async_claude` fixtures for the gateway URL the
fixture named `gateway` yields; the transport each client used is on `client.transport` of the
`Checked` wrapper, so a test can also read the exact bytes the SDK sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anthropic
import httpx2
import pytest

from tests.support.anthropic_strict import AsyncStrictTransport, StrictTransport, check_all
from tests.support.routes import CLIENT_KEY

SDK_TIMEOUT = 15.0


@contextmanager
def checked_anthropic(gateway_url: str, **options: Any) -> Iterator[anthropic.Anthropic]:
    """A sync client (no retries: the tests see every answer as the gateway gave it)."""
    transport = StrictTransport()
    options = {"api_key": CLIENT_KEY, "max_retries": 0, "timeout": SDK_TIMEOUT, **options}
    with anthropic.Anthropic(
        base_url=gateway_url, http_client=httpx2.Client(transport=transport), **options
    ) as sdk:
        sdk.strict_transport = transport  # type: ignore[attr-defined]
        yield sdk
    check_all(transport.exchanges)


@asynccontextmanager
async def checked_async_anthropic(
    gateway_url: str, **options: Any
) -> AsyncIterator[anthropic.AsyncAnthropic]:
    transport = AsyncStrictTransport()
    options = {"api_key": CLIENT_KEY, "max_retries": 0, "timeout": SDK_TIMEOUT, **options}
    async with anthropic.AsyncAnthropic(
        base_url=gateway_url, http_client=httpx2.AsyncClient(transport=transport), **options
    ) as sdk:
        sdk.strict_transport = transport  # type: ignore[attr-defined]
        yield sdk
    check_all(transport.exchanges)


def sent_bodies(sdk: anthropic.Anthropic | anthropic.AsyncAnthropic) -> list[bytes]:
    """The request bodies the SDK sent, in order."""
    transport: StrictTransport | AsyncStrictTransport = sdk.strict_transport  # type: ignore[union-attr]
    return [exchange.request_body for exchange in transport.exchanges]


def anthropic_fixtures(gateway: str) -> tuple[Any, Any]:
    """The `claude` and `async_claude` fixtures (strictly checked, see above). Assign both at module
    level: `claude, async_claude = anthropic_fixtures("my_gateway")`."""

    @pytest.fixture(name="claude")
    def claude(request: pytest.FixtureRequest) -> Iterator[anthropic.Anthropic]:
        with checked_anthropic(request.getfixturevalue(gateway)) as sdk:
            yield sdk

    @pytest.fixture(name="async_claude")
    async def async_claude(request: pytest.FixtureRequest) -> AsyncIterator[anthropic.AsyncAnthropic]:
        async with checked_async_anthropic(request.getfixturevalue(gateway)) as sdk:
            yield sdk

    return claude, async_claude
