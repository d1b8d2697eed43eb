"""Gateway keys: who may call, which models, how much."""

from __future__ import annotations
