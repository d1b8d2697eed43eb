"""Spend: what each request cost, each key's budget, and reading a key's spend back."""

from __future__ import annotations
