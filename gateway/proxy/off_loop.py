"""Work on a large body runs in a worker thread, so that no request holds the event loop for long.

Decoding, validating and translating a request, and translating a non-streamed reply, take time in
proportion to the body: linear, but ~0.1 s per MB for a body of many tiny messages (3 µs a message).
On the event loop that would stall every other request and stream for as long. A body over
`OFF_LOOP_BYTES` is handled in a thread instead: CPython hands the interpreter back to the loop
every 5 ms (sys.getswitchinterval), so the loop keeps serving while the body is worked on. Smaller
bodies, the usual chat request, stay on the loop (a thread hop costs ~50-100 µs), where they take at
most a few milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

OFF_LOOP_BYTES = 32 * 1024

P = ParamSpec("P")
R = TypeVar("R")


async def run_sized(size: int, work: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`work(*args, **kwargs)` on the loop when `size` (bytes) is small, else in a worker thread
    (the request's contextvars go with it: its log lines keep their request id)."""
    if size <= OFF_LOOP_BYTES:
        return work(*args, **kwargs)
    return await asyncio.to_thread(work, *args, **kwargs)
