"""GET and DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items: stored responses, served by
the gateway itself (the operations table names these handlers: `handler:` in a protocol's operation).

Only responses this gateway stored are served (an upstream that keeps its own is not asked), and a key
sees only its own: another key's id, like an unknown, expired or deleted one, is a 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any

from aiohttp import web

from gateway import json_codec
from gateway.app_keys import RESPONSES
from gateway.errors import GatewayError
from gateway.responses_store.stored import StoredResponse

JSON_HEADERS = {"Content-Type": "application/json"}
MAX_LIMIT = 100
DEFAULT_LIMIT = 20

LocalHandler = Callable[[web.Request, "str | None"], Awaitable[web.Response]]


def not_found(response_id: str) -> GatewayError:
    return GatewayError(404, f"Response with id '{response_id}' not found.", type_="invalid_request_error")


async def _stored(request: web.Request, owner: str | None) -> StoredResponse:
    response_id = request.match_info["response_id"]
    store = request.app.get(RESPONSES)
    found = await store.get(response_id, owner) if store is not None else None
    if found is None:
        raise not_found(response_id)
    return found


async def stored_response(request: web.Request, owner: str | None) -> web.Response:
    """The Response as the client got it when it was made."""
    found = await _stored(request, owner)
    return web.Response(body=json_codec.dumps(found.response), headers=JSON_HEADERS)


async def delete_stored_response(request: web.Request, owner: str | None) -> web.Response:
    response_id = request.match_info["response_id"]
    store = request.app.get(RESPONSES)
    if store is None or not await store.delete(response_id, owner):
        raise not_found(response_id)
    body = {"id": response_id, "object": "response", "deleted": True}
    return web.Response(body=json_codec.dumps(body), headers=JSON_HEADERS)


def _query_error(name: str, message: str) -> GatewayError:
    return GatewayError(400, message, param=name, code="invalid_value")


def _limit(query: Mapping[str, str]) -> int:
    text = query.get("limit")
    if text is None:
        return DEFAULT_LIMIT
    try:
        limit = int(text)
    except ValueError:
        raise _query_error("limit", f"Invalid 'limit': expected an integer, got '{text}'.") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise _query_error("limit", f"Invalid 'limit': {limit}. It must be between 1 and {MAX_LIMIT}.")
    return limit


async def stored_input_items(request: web.Request, owner: str | None) -> web.Response:
    """The input items that led to a response, a page at a time (`limit`, `order`: desc by default,
    `after`: the id of the item the page starts after)."""
    query = request.query
    limit = _limit(query)
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise _query_error("order", f"Invalid 'order': '{order}'. It must be 'asc' or 'desc'.")
    found = await _stored(request, owner)
    items: list[Any] = found.input_items if order == "asc" else found.input_items[::-1]
    after = query.get("after")
    if after is not None:
        ids = [item.get("id") if isinstance(item, dict) else None for item in items]
        if after not in ids:
            raise _query_error("after", f"Invalid 'after': no input item with id '{after}'.")
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    body = {
        "object": "list",
        "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": len(items) > limit,
    }
    return web.Response(body=json_codec.dumps(body), headers=JSON_HEADERS)


LOCAL_HANDLERS: Mapping[str, LocalHandler] = MappingProxyType(
    {
        "stored_response": stored_response,
        "delete_stored_response": delete_stored_response,
        "stored_input_items": stored_input_items,
    }
)
