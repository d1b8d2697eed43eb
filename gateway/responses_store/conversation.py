"""A request that continues a stored response, and the hand-over of the response it makes to the store.

`previous_response_id` names a response this gateway stored: the conversation is rebuilt from it (its
input items, its output items, then this request's input; `instructions` are this request's only, as
the spec says) and translated as if the client had sent it whole. An id the store does not have (for
this key) is the spec's 404, unless the route has an upstream that speaks the Responses API itself:
that upstream may have made it, and gets it untouched.

Stored input items have ids and the spec's shapes (a string input is one user message; message content
as parts); the conversation a request is translated from has the items without the ids the gateway
made (an upstream that keeps its own items would look them up).

An `item_reference` input item (`{"type": "item_reference", "id": "msg_..."}`: what the AI SDK sends
for an earlier response's message and reasoning items when it leaves `store` on) is replaced by the
item it names. The gateway's message and reasoning item ids carry the random part of their
response's id (`msg_<x>`, `rs_<x>` of `resp_<x>`: openai-responses.yaml `item_id`), so the stored
response to read is known from the item id alone; one the store does not have (for this key) is a
404 naming it, unless the route has an upstream that speaks the Responses API itself (its own items).
"""

from __future__ import annotations

import asyncio
import binascii
import secrets
from dataclasses import dataclass
from typing import Any

from gateway import json_codec
from gateway.engine.protocol import ClientOperation
from gateway.engine.registry import ModelRoute
from gateway.errors import GatewayError
from gateway.proxy.target_request import Exchange
from gateway.responses_store.stored import ResponseStore, StoredResponse, entry_bytes

_ID_PREFIX = {
    "message": "msg_",
    "function_call": "fc_",
    "function_call_output": "fco_",
    "custom_tool_call": "ctc_",
    "custom_tool_call_output": "ctco_",
    "reasoning": "rs_",
}
_WITH_STATUS = ("message", "function_call", "function_call_output")


def _ready(item: dict[str, Any]) -> bool:
    """Whether an item is a stored item already (an output item of an earlier response, typically)."""
    kind = item.get("type")
    return (
        isinstance(item.get("id"), str)
        and kind is not None
        and (kind != "message" or type(item.get("content")) is list)
        and (kind not in _WITH_STATUS or "status" in item)
    )


def _stored_item(item: Any, new_id: str) -> Any:
    """One input item as the store lists it: typed, with an id (`new_id` when it has none) and a
    status, message text as parts; an item that is one already as it is."""
    if not isinstance(item, dict) or _ready(item):
        return item
    kind = item.get("type") or "message"
    out = dict(item)
    out["type"] = kind
    if kind == "message":
        assistant = out.get("role") == "assistant"
        content = out.get("content")
        if isinstance(content, str):
            part: dict[str, Any] = {"type": "output_text" if assistant else "input_text", "text": content}
            out["content"] = [part]
        if assistant:
            out["content"] = [
                {"annotations": [], "logprobs": [], **piece} if piece.get("type") == "output_text" else piece
                for piece in out.get("content") or ()
                if isinstance(piece, dict)
            ]
    if kind in _WITH_STATUS:
        out.setdefault("status", "completed")
    if not isinstance(out.get("id"), str):
        out["id"] = _ID_PREFIX.get(kind, "item_") + new_id
    return out


def stored_items(value: Any) -> list[Any]:
    """A request's `input` as stored input items (a string is one user message). The ids the gateway
    gives are unique, not secret (what reads an item is its response's id): one random part per
    request, then the item's position."""
    base = binascii.hexlify(secrets.token_bytes(8)).decode()
    if isinstance(value, str):
        return [_stored_item({"type": "message", "role": "user", "content": value}, base + "0000")]
    return [_stored_item(item, f"{base}{i:04x}") for i, item in enumerate(value or ())]


def _sent_item(item: Any) -> Any:
    """A stored item as an upstream is sent it: without its id (a reasoning item keeps its own)."""
    if isinstance(item, dict) and "id" in item and item.get("type") != "reasoning":
        item = dict(item)
        del item["id"]
    return item


ITEM_PREFIXES = ("msg_", "rs_")  # output items whose id names their response (openai-responses.yaml item_id)


def _is_reference(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == "item_reference"


def item_not_found(item_id: Any) -> GatewayError:
    return GatewayError(
        404,
        f"Item with id '{item_id}' not found.",
        type_="invalid_request_error",
        param="input",
        code="item_not_found",
    )


async def resolved_references(
    store: ResponseStore, owner: str | None, items: list[Any], native: bool
) -> list[Any]:
    """`items` with every item_reference replaced by the stored output item it names (each stored
    response read once). One not found: a 404, or, when an upstream of the route keeps its own
    items (`native`), the reference as it is."""
    read: dict[str, StoredResponse | None] = {}
    out: list[Any] = []
    for item in items:
        if not _is_reference(item):
            out.append(item)
            continue
        item_id = item.get("id")
        found = None
        prefix = next((p for p in ITEM_PREFIXES if isinstance(item_id, str) and item_id.startswith(p)), None)
        if prefix is not None:
            response_id = "resp_" + item_id[len(prefix) :]
            if response_id not in read:
                read[response_id] = await store.get(response_id, owner)
            entry = read[response_id]
            output = entry.response.get("output") if entry is not None else None
            found = next((o for o in output or () if isinstance(o, dict) and o.get("id") == item_id), None)
        if found is None and not native:
            raise item_not_found(item_id)
        out.append(found if found is not None else item)
    return out


def previous_not_found(response_id: str) -> GatewayError:
    return GatewayError(
        404,
        f"Previous response with id '{response_id}' not found.",
        type_="invalid_request_error",
        param="previous_response_id",
        code="previous_response_not_found",
    )


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:  # a worker thread
        return False


@dataclass(slots=True)
class Keeper:
    """Hands the response a request made to the store, with the input items that led to it (made into
    stored items only then: a request that fails stores nothing and pays nothing)."""

    store: ResponseStore
    owner: str | None
    model: str
    input: Any  # the request's input, or the rebuilt conversation's items
    stream_events: tuple[str, ...]  # the stream's last events: their `response` is kept
    loop: asyncio.AbstractEventLoop  # the store's (a large reply is translated in a worker thread)
    kept: str | None = None  # the id of a response handed to the store that the reply has not waited for

    def reply(self, response: Any, encoded: bytes | None = None) -> None:
        """A whole reply (and its bytes, when already encoded)."""
        if not isinstance(response, dict) or not isinstance(response.get("id"), str):
            return
        data = encoded if encoded is not None else json_codec.dumps(response)
        entry = entry_bytes(self.owner, self.model, stored_items(self.input), data)
        if _on_loop(self.loop):
            self.store.keep(response["id"], entry)
        else:  # (ahead of the reply's own hand-back to the loop: stored before the client has it)
            self.loop.call_soon_threadsafe(self.store.keep, response["id"], entry)
        self.kept = response["id"]

    async def landed(self) -> None:
        """Once the response kept last is in the store: what the reply waits for before the bytes
        that carry it go out (ResponseStore.landed)."""
        if self.kept is not None:
            kept, self.kept = self.kept, None
            await self.store.landed(kept)

    def stream_event(self, name: str, data: Any) -> None:
        """A stream event: its `response`, when it is one of the stream's last events."""
        if name in self.stream_events and isinstance(data, dict):
            self.reply(data.get("response"))


def _served_natively(route: ModelRoute, operation: ClientOperation) -> bool:
    return any(operation.key in target.provider.native for target in route.root.targets())


async def continue_and_keep(
    exchange: Exchange, store: ResponseStore, operation: ClientOperation, route: ModelRoute
) -> None:
    """Sets what the exchange sends in place of the client's body when it continues a stored response
    (`continued`; its size counts towards translating it off the loop) and what keeps the response it
    makes (`keep`; none for `store: false`)."""
    body = exchange.body
    owner = exchange.access.key
    items: Any = body.get("input")
    if type(items) is list and any(_is_reference(item) for item in items):
        items = await resolved_references(store, owner, items, _served_natively(route, operation))
        exchange.continued = {**body, "input": [_sent_item(item) for item in items]}
    previous = body.get("previous_response_id")
    if isinstance(previous, str) and previous:
        entry = await store.get(previous, owner)
        if entry is not None:
            items = continued_items(entry, items)
            continued = {name: value for name, value in body.items() if name != "previous_response_id"}
            continued["input"] = [_sent_item(item) for item in items]
            exchange.continued = continued
            exchange.body_size += entry.size
        elif not _served_natively(route, operation):
            raise previous_not_found(previous)
    if body.get("store") is not False:
        loop = asyncio.get_running_loop()
        exchange.keep = Keeper(store, owner, body["model"], items, operation.stored_events, loop)


def continued_items(entry: StoredResponse, current: Any) -> list[Any]:
    """The conversation a stored response continues into: its input, its output, then `current`."""
    output = entry.response.get("output")
    return [*entry.input_items, *(output if isinstance(output, list) else ()), *stored_items(current)]
