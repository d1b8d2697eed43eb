"""Dialects compiled from data, the immutable registry, and the per-request translators."""

from __future__ import annotations
