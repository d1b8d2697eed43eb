"""Typed app keys for the observability state, and the readiness flags the app flips."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.observability.metrics import GatewayMetrics


@dataclass(slots=True)
class Readiness:
    """Whether this process should get new traffic. Set `draining` on SIGTERM; `config_loaded` False
    while no config is being served."""

    draining: bool = False
    config_loaded: bool = True

    def reasons(self) -> list[str]:
        """Why the process is not ready (codes, as in /readyz); empty when it is."""
        reasons = []
        if not self.config_loaded:
            reasons.append("config_not_loaded")
        if self.draining:
            reasons.append("draining")
        return reasons


METRICS = web.AppKey("metrics", GatewayMetrics)
READINESS = web.AppKey("readiness", Readiness)
