"""routes.yaml: read, interpolate, validate, freeze."""

from __future__ import annotations
