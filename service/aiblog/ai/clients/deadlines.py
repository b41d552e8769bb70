"""The watchdog that enforces an LLM exchange's first-token and total deadlines.

httpx's read timeout bounds every single wait on the socket; this timer
shuts the socket down when a deadline passes, even while tokens keep
trickling in. It works with plain threads and under gevent's monkey patching
(gunicorn's gevent workers).
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import httpx

from ..llm_errors import LLMTimeout


@dataclass(frozen=True)
class Timeouts:
    connect: float = 2.0
    first_token: float = 30.0
    total: float = 120.0


class Deadlines:
    """Watches one exchange and shuts its socket down when a deadline passes.

    A blocked read then fails at once, and the caller asks ``expired`` which
    limit it was.
    """

    def __init__(self, timeouts: Timeouts) -> None:
        self.started = time.monotonic()
        self._timeouts = timeouts
        self._first_token_at = self.started + timeouts.first_token
        self._total_at = self.started + timeouts.total
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._socket: socket.socket | None = None
        self._done = False
        self.got_first_token = False
        self.expired: str | None = None  # the message, once a deadline passed

    def read_timeout(self) -> float:
        """httpx read timeout: no single wait may outlast the first deadline."""
        return min(self._timeouts.first_token, self._timeouts.total)

    def watch(self, response: httpx.Response) -> None:
        stream = response.extensions.get("network_stream")
        self._socket = stream.get_extra_info("socket") if stream is not None else None
        self._arm()

    def first_token(self) -> float:
        """Note the first token; returns the time it took."""
        self.got_first_token = True
        return time.monotonic() - self.started

    def check(self) -> None:
        """Raise if a deadline has passed (also catches one passed before the
        timer could fire)."""
        if self.expired is None:
            self._evaluate(time.monotonic())
        if self.expired is not None:
            raise LLMTimeout(self.expired)

    def cancel(self) -> None:
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()

    def _next_deadline(self) -> float:
        if not self.got_first_token:
            return min(self._first_token_at, self._total_at)
        return self._total_at

    def _arm(self) -> None:
        with self._lock:
            if self._done:
                return
            delay = max(0.0, self._next_deadline() - time.monotonic())
            self._timer = threading.Timer(delay, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        if self._evaluate(time.monotonic()):
            self._shutdown_socket()
        else:
            self._arm()  # the first token came in time; now wait for the total

    def _evaluate(self, now: float) -> bool:
        if not self.got_first_token and now >= self._first_token_at:
            self.expired = (f"the LLM sent no first token within "
                            f"{self._timeouts.first_token:g} s")
        elif now >= self._total_at:
            self.expired = f"the LLM did not finish its answer within {self._timeouts.total:g} s"
        return self.expired is not None

    def _shutdown_socket(self) -> None:
        with self._lock:
            if self._done or self._socket is None:
                return
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed: the read has ended anyway
