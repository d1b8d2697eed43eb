"""Routing and resilience: which target next, when to retry, which targets to rest."""

from __future__ import annotations
