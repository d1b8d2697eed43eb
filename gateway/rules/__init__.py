"""The rule engine: JMESPath expressions compiled to closures, templates built from them."""

from __future__ import annotations
