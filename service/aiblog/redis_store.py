"""The app's one Redis connection pool, and a fail-soft way to use it.

Redis is an accelerator, not a dependency of correctness: when it is down the
blog serves from the database. ``RedisStore.call`` returns a default instead of
raising, so callers fall back in one line. While Redis is down, calls are
skipped for ``retry_interval`` seconds at a time so that no request waits on a
dead server's connect timeout.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import redis

log = logging.getLogger(__name__)

REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)


class RedisStore:
    def __init__(self, url: str, retry_interval: float = 1.0):
        self.url = url
        self.retry_interval = retry_interval
        self.client: redis.Redis | None = None
        if url:
            self.client = redis.Redis.from_url(
                url, socket_connect_timeout=0.5, socket_timeout=2.0,
                health_check_interval=15, max_connections=500,
            )
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_try = 0.0
        self._on_recover: list[Callable[[redis.Redis], None]] = []

    @property
    def enabled(self) -> bool:
        return self.client is not None

    @property
    def available(self) -> bool:
        return self.client is not None and self._down_since is None

    def on_recover(self, callback: Callable[[redis.Redis], None]) -> None:
        """Run ``callback(client)`` before the first use after an outage."""
        self._on_recover.append(callback)

    def call(self, fn: Callable[[redis.Redis], Any], default: Any = None) -> Any:
        client = self.client
        if client is None:
            return default
        if self._down_since is not None and not self._recover(client):
            return default
        try:
            return fn(client)
        except REDIS_ERRORS as exc:
            self.mark_down(exc)
            return default

    def mark_down(self, exc: BaseException) -> None:
        with self._lock:
            self._next_try = time.monotonic() + self.retry_interval
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning("Redis unavailable (%s); serving without it", exc)

    def _recover(self, client: redis.Redis) -> bool:
        if time.monotonic() < self._next_try:
            return False
        try:
            client.ping()
            for callback in self._on_recover:
                callback(client)
        except REDIS_ERRORS as exc:
            self.mark_down(exc)
            return False
        with self._lock:
            self._down_since = None
        log.warning("Redis is back; using it again")
        return True

    def ping(self) -> bool:
        if self.client is None:
            return False
        try:
            return bool(self.client.ping())
        except REDIS_ERRORS as exc:
            self.mark_down(exc)
            return False
