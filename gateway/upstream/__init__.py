"""Talking to upstreams: HTTP transport with its keep-alive pool, request signing, the built-in mock."""

from __future__ import annotations
