"""The deadlines of one upstream exchange (first byte, idle, total), kept by one timer.

- first byte: from the request sent to the response headers;
- idle: the longest gap between body bytes while we wait for them. It counts from the headers, and
  not while reading is paused by us: a reader that falls behind is not the upstream stalling;
- total: the whole exchange.

One timer per exchange, armed when the request is sent for the nearest deadline. When it fires early
(that deadline has moved later meanwhile: body data, a pause, a resume) it re-arms itself for the
next one, so those changes cost no timer operation. The one change that can bring the nearest
deadline closer, the headers arriving when idle is shorter than what is left of first byte, re-arms
it at once (`_headers_in`).
"""

from __future__ import annotations

import asyncio


class ExchangeDeadlines:
    """The timer part of Http1Connection, its base class. The connection provides `_loop`, `headers`,
    `active`, `complete`, `_paused` and `_fail`, and sets `_last_data` when bytes arrive (or reading
    resumes)."""

    _loop: asyncio.AbstractEventLoop
    headers: object
    active: bool
    complete: bool
    _paused: bool

    def _fail(self, exc: BaseException) -> None:
        raise NotImplementedError

    def _start_deadlines(
        self, now: float, first_byte: float | None, idle: float | None, total: float | None
    ) -> None:
        """A new exchange starts now (None: no limit)."""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._sent_at = self._last_data = now
        self._first_byte = first_byte or 0.0
        self._idle = idle or 0.0
        # an idle timeout shorter than first_byte may end before the timer armed now: see _headers_in
        self._idle_first = bool(idle and (not first_byte or idle < first_byte))
        self._total_deadline = now + total if total else 0.0
        self._arm(now)

    def _headers_in(self) -> None:
        """The headers arrived (at `_last_data`): the idle timeout counts from now on; re-arm if it
        ends before the timer would fire. Called only when `_idle_first`."""
        if self._timer is None or self._last_data + self._idle < self._timer_at:
            self._cancel_timer()
            self._arm(self._last_data)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, now: float) -> None:
        deadline = self._next_deadline(now)
        if deadline:
            self._timer = self._loop.call_at(deadline, self._on_timer)
            self._timer_at = deadline

    def _next_deadline(self, now: float) -> float:
        deadlines = []
        if self._total_deadline:
            deadlines.append(self._total_deadline)
        if self.headers is None:
            if self._first_byte:
                deadlines.append(self._sent_at + self._first_byte)
        elif self._idle:
            deadlines.append((self._last_data if not self._paused else now) + self._idle)
        return min(deadlines) if deadlines else 0.0

    def _on_timer(self) -> None:
        self._timer = None
        if not self.active or self.complete:
            return
        now = self._loop.time()
        if self._total_deadline and now >= self._total_deadline:
            self._fail(TimeoutError("the upstream did not finish in time"))
        elif self.headers is None and self._first_byte and now >= self._sent_at + self._first_byte:
            self._fail(TimeoutError("the upstream did not answer in time"))
        elif (
            self.headers is not None
            and self._idle
            and not self._paused
            and now >= self._last_data + self._idle
        ):
            self._fail(TimeoutError("the upstream stalled"))
        else:
            self._arm(now)
