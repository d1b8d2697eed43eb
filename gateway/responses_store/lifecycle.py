"""The response store's life in the app: the backend `responses:` names, chosen at start (a reload
keeps it), closed at shutdown (pending writes get a few seconds first)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.app_keys import RESPONSES
from gateway.config.model import ResponsesSettings
from gateway.responses_store.backends import MemoryResponses, RedisResponses, ResponseBackend
from gateway.responses_store.stored import ResponseStore, StoreOperation

if TYPE_CHECKING:
    from gateway.reload import RegistryHolder


def configured_backend(settings: ResponsesSettings) -> ResponseBackend | None:
    """The backend `responses:` names (None: `store: none`)."""
    if settings.store == "none":
        return None
    if settings.store == "redis" and settings.redis_url:
        return RedisResponses(settings.redis_url, settings.ttl)
    return MemoryResponses(settings.ttl, settings.max_entries, settings.max_bytes)


def responses_context(
    holder: RegistryHolder,
    backend: ResponseBackend | None = None,
    count_error: Callable[[StoreOperation], None] = lambda _operation: None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The app's cleanup context for stored responses (`backend` replaces the configured one in tests)."""

    async def stored_responses(app: web.Application) -> AsyncIterator[None]:
        settings = holder.current.config.responses
        chosen = backend or configured_backend(settings)
        if chosen is None:
            yield
            return
        url = settings.redis_url
        redact: Callable[[str], str] = (
            (lambda text: text.replace(url, "<responses.redis_url>")) if url else str
        )
        app[RESPONSES] = store = ResponseStore(chosen, count_error, redact=redact)
        yield
        await store.close()

    return stored_responses
