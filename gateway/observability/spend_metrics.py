"""The spend metrics: what requests cost, per key, alias, provider and upstream model, and how much of
its budget each key has used. Part of `GatewayMetrics` (its `spend`), in the same registry.

Like the request figures, costs are added up in plain Python per request and applied by `flush()`;
key names, aliases, providers and models all come from the config, so cardinality stays bounded.
"""

from __future__ import annotations

import threading
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge

NO_KEY: Final = "-"  # the `key` label of a request when the gateway has no keys (it is open)

CostLabels = tuple[str, str, str, str]  # key, alias, provider, upstream model


class SpendMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._cost = Counter(
            "gateway_cost_usd_total",
            "What requests cost in USD, priced from the usage the gateway counted (gateway/prices/ and "
            "routes.yaml prices), by key name (- when the gateway has no keys), alias, provider and "
            "upstream model. Requests whose model has no price are not counted.",
            ("key", "alias", "provider", "model"),
            registry=registry,
        )
        self._budget_used = Gauge(
            "gateway_budget_used_ratio",
            "Spend of a key with a budget in its current period, over that budget (1 or more: its "
            "requests are refused with 429 insufficient_quota), as last read from or written to the store.",
            ("key",),
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self._lock = threading.Lock()  # per request (event loop) vs flush (render runs in a thread)
        self._pending_cost: dict[CostLabels, float] = {}
        self._pending_used: dict[str, float] = {}
        self._cost_children: dict[CostLabels, Counter] = {}

    def cost(self, key: str, alias: str, provider: str, model: str, usd: float) -> None:
        """One priced request (usd may be 0: a free model, or a cached answer)."""
        labels = (key, alias, provider, model)
        with self._lock:
            self._pending_cost[labels] = self._pending_cost.get(labels, 0.0) + usd

    def budget_used(self, key: str, ratio: float) -> None:
        with self._lock:
            self._pending_used[key] = ratio

    def flush(self) -> None:
        with self._lock:
            costs, self._pending_cost = self._pending_cost, {}
            used, self._pending_used = self._pending_used, {}
        for labels, usd in costs.items():
            child = self._cost_children.get(labels)
            if child is None:
                child = self._cost_children[labels] = self._cost.labels(*labels)
            child.inc(usd)
        for key, ratio in used.items():
            self._budget_used.labels(key).set(ratio)
