"""Observability: Prometheus metrics, liveness and readiness endpoints."""

from __future__ import annotations
