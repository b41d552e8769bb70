"""A per-process circuit breaker for LLM calls.

After ``failures`` consecutive failures the circuit opens: calls fail at once
(no network, so well under 50 ms) with ``LLMUnavailable``. After ``cooldown``
seconds one probe call is let through (half-open) while every other call
still fails fast; the probe's success closes the circuit, its failure opens
it for another cooldown. A probe that never reports back (its caller went
away) stops blocking after one more cooldown, when the next probe may go.

The lock only guards a few assignments and never blocks on I/O, so it is
safe for threads and gevent greenlets alike.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Callable

from ..monitoring import metrics
from .llm_errors import LLMUnavailable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    def __init__(self, failures: int, cooldown: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        if cooldown < 0:
            raise ValueError("cooldown must not be negative")
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._probe_started_at: float | None = None

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    def before_call(self) -> None:
        """Return if a call may go to the LLM; raise ``LLMUnavailable`` if not."""
        with self._lock:
            if self._state == CLOSED:
                return
            now = self._clock()
            if self._state == OPEN:
                ready_at = self._opened_at + self.cooldown
                if now < ready_at:
                    raise self._open_error(ready_at - now)
                self._state = HALF_OPEN
                self._probe_started_at = now
                return
            # Half-open: one probe is out; a stale probe gives way after a cooldown.
            if self._probe_started_at is None or now >= self._probe_started_at + self.cooldown:
                self._probe_started_at = now
                return
            raise self._open_error(self._probe_started_at + self.cooldown - now)

    def record_success(self) -> None:
        with self._lock:
            self._consecutive_failures = 0
            self._probe_started_at = None
            if self._state != CLOSED:
                self._state = CLOSED
                metrics.LLM_CIRCUIT_OPEN.set(0)

    def record_failure(self) -> None:
        with self._lock:
            self._consecutive_failures += 1
            if self._state == HALF_OPEN or self._consecutive_failures >= self.failures:
                if self._state == CLOSED:
                    metrics.LLM_CIRCUIT_OPEN.set(1)
                self._state = OPEN
                self._opened_at = self._clock()
                self._probe_started_at = None

    def _open_error(self, wait: float) -> LLMUnavailable:
        seconds = max(1, math.ceil(wait))
        return LLMUnavailable(f"LLM circuit open; retry in {seconds} s", retry_after=seconds, public=True)
