"""`GET /v1/gateway/keys/{name}/spend`: a key's spend in each current period (UTC day, UTC month,
total) with its requests and tokens, read from the limits store, for a caller holding an `admin: true`
key. Spend is counted for keys with a budget; another key's answer says `counted: false`.
"""

from __future__ import annotations

import time

from aiohttp import web

from gateway import json_codec
from gateway.app_keys import LIMITS, REGISTRY
from gateway.config.model import GatewayKey
from gateway.errors import GatewayError
from gateway.spend.budget import PERIODS, period_ends, period_id

_NO_STORE = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def _admin(request: web.Request) -> None:
    """401 without a valid key (or with no keys configured: there is no admin then), 403 for a key
    without `admin: true`."""
    keyring = request.app[REGISTRY].current.keyring
    if keyring.open:
        raise GatewayError(
            401,
            "The gateway has no keys, so no admin key: configure auth.keys with `admin: true` to read spend.",
            type_="invalid_request_error",
            code="invalid_api_key",
        )
    caller = keyring.identify(request.headers.get("Authorization"))
    if not caller.admin:
        raise GatewayError(
            403,
            f"The key '{caller.name}' may not read spend (give an operator's key `admin: true`).",
            type_="permission_error",
            code="admin_only",
        )


def _named(request: web.Request, name: str) -> GatewayKey:
    for key in request.app[REGISTRY].current.config.auth.keys:
        if key.name == name:
            return key
    raise GatewayError(404, f"No key is named '{name}'.", code="key_not_found")


async def key_spend(request: web.Request) -> web.Response:
    _admin(request)
    key = _named(request, request.match_info["name"])
    now = time.time()
    body: dict[str, object] = {
        "object": "gateway.key_spend",
        "key": key.name,
        "budget": None if key.budget is None else {"usd": key.budget.usd, "period": key.budget.period},
        "counted": key.budget is not None,
    }
    if key.budget is not None:
        report = await request.app[LIMITS].spend_report(key)
        periods = {}
        for period in PERIODS:
            spent = report[period]
            ends = period_ends(period, now)
            periods[period] = {
                "period": period_id(period, now),
                "resets_at": None if ends is None else int(ends),
                "usd": round(spent.usd, 10),
                "requests": spent.requests,
                "input_tokens": spent.input_tokens,
                "output_tokens": spent.output_tokens,
            }
        body["periods"] = periods
        body["remaining_usd"] = round(max(0.0, key.budget.usd - report[key.budget.period].usd), 10)
    return web.Response(body=json_codec.dumps(body), headers=_NO_STORE)
