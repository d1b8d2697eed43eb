"""Deterministic `random_id()` for recorded fixture cases: ids the upstream does not give (e.g. a
generated `chatcmpl-` or `call_` id) come out as prefix + a counter in 24 hex digits, from 1 for each
case, so a recorded case can state them."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from gateway.rules import functions


class _SequentialBytes:
    """Stands in for the `secrets` module inside gateway.rules.functions: `token_bytes(n)` counts."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def token_bytes(self, nbytes: int) -> bytes:
        return next(self._next).to_bytes(nbytes, "big")


@contextmanager
def sequential_ids() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(functions, "secrets", _SequentialBytes())
        yield
