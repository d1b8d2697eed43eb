"""Prices as data: the shipped list prices (one YAML file per dialect) and what a request cost."""

from __future__ import annotations
