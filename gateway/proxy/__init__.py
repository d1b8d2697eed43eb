"""The client-facing side of the gateway: reading, checking and answering OpenAI-style requests."""

from __future__ import annotations
