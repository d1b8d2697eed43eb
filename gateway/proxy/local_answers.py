"""Operations the gateway answers itself for a target whose dialect has no such operation and does
not speak the client's protocol: today, a token count (`count_tokens`), estimated locally.

An answer made here says so in its `x-gateway-token-count: estimate` header and in the attempt's
outcome (`local`) in the access log; nothing is sent upstream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

ESTIMATE_HEADER = "x-gateway-token-count"


def _count_tokens(canonical: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical answer of count_tokens (`{input_tokens}`) for a canonical chat request. The
    tokenizer is imported on first use: a gateway nobody asks to count keeps its memory."""
    from gateway.tokens import estimate_input_tokens

    return {"input_tokens": estimate_input_tokens(canonical)}


# canonical operation -> the gateway's own answer to its canonical request
LOCAL_ANSWERS: Mapping[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {"count_tokens": _count_tokens}
