"""Token counts the gateway works out itself, for `count_tokens` against an upstream that cannot count:
an estimate (exact text tokens for OpenAI's current models), with nothing downloaded at run time."""

from __future__ import annotations

from gateway.tokens.estimate import estimate_input_tokens
from gateway.tokens.tokenizer import ENCODING, load

__all__ = ["ENCODING", "estimate_input_tokens", "load"]
