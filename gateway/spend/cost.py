"""A finished request's cost: priced from the usage the gateway counted, shown in the access log
(`cost_usd`), in `gateway_cost_usd_total` and, for a reply that is not a stream, in the
`x-gateway-cost-usd` response header (a stream's headers are long gone when its usage arrives: SSE
has no trailers that clients read)."""

from __future__ import annotations

from typing import Final

from gateway.observability.spend_metrics import NO_KEY, SpendMetrics
from gateway.prices.price import cost_text, cost_usd
from gateway.prices.table import Prices
from gateway.proxy.request_record import RequestRecord

COST_HEADER: Final = "x-gateway-cost-usd"


def charge(access: RequestRecord, alias: str, prices: Prices, metrics: SpendMetrics) -> None:
    """Price the request from `access.usage` (set) by the price of the target that answered; no price:
    cost stays unknown (None), no header, not counted. A cached answer priced itself (0)."""
    usage = access.usage
    if usage is None or access.cache == "hit" or access.provider is None or access.upstream_model is None:
        return
    price = prices.get((access.provider, access.upstream_model))
    if price is None:
        return
    cost = access.cost_usd = cost_usd(price, usage)
    if not access.stream:
        access.response_headers[COST_HEADER] = cost_text(cost)
    metrics.cost(access.key or NO_KEY, alias, access.provider, access.upstream_model, cost)
