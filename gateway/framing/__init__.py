"""Wire framing, separate from translation: SSE today (NDJSON and AWS event stream come next)."""

from __future__ import annotations
