"""The app's one Redis connection pool, and a fail-soft way to use it.

Redis is an accelerator, not a dependency of correctness: when it is down the
blog serves from the database. ``RedisStore.call`` returns a default instead of
raising, so callers fall back in one line. While Redis is down, calls are
skipped for ``retry_interval`` seconds at a time so that no request waits on a
dead server's connect timeout.

A Redis that comes back may hold data older than writes made while it was
away (a restart that reloads its snapshot, or a partition). The recovery
callbacks (``on_recover``) run before such a server is used again: after an
outage this process saw, and on every new connection to a restarted server
(a new ``run_id``), even in a process that never saw the outage.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Any, Callable

import redis

log = logging.getLogger(__name__)

REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, OSError)
_RUN_ID = re.compile(rb"^run_id:(\w+)", re.M)

# ``command(*args)`` runs one Redis command and returns its reply.
Command = Callable[..., Any]


class RedisStore:
    def __init__(self, url: str, retry_interval: float = 1.0):
        self.url = url
        self.retry_interval = retry_interval
        self.client: redis.Redis | None = None
        if url:
            self.client = redis.Redis.from_url(
                url, socket_connect_timeout=0.5, socket_timeout=2.0,
                health_check_interval=15, max_connections=500,
                redis_connect_func=self._on_connect,
            )
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_try = 0.0
        self._on_recover: list[Callable[[Command], None]] = []
        self._server_run_id: bytes | None = None

    @property
    def enabled(self) -> bool:
        return self.client is not None

    @property
    def available(self) -> bool:
        return self.client is not None and self._down_since is None

    def on_recover(self, callback: Callable[[Command], None]) -> None:
        """Run ``callback(command)`` before Redis is used after an outage or a restart."""
        self._on_recover.append(callback)

    def _on_connect(self, connection) -> None:
        # Runs on each new connection before its first command. The run id is
        # remembered only after the callbacks succeeded, so every connection
        # that meets a restarted server runs them before it serves a read.
        connection.on_connect()

        def command(*args):
            connection.send_command(*args)
            return connection.read_response()

        try:
            match = _RUN_ID.search(command("INFO", "server"))
        except redis.ResponseError:  # INFO disabled on this server: no restart detection
            match = None
        run_id = match.group(1) if match else None
        if self._server_run_id is not None and run_id != self._server_run_id:
            log.warning("Redis restarted (new run_id); dropping what it cached before")
            for callback in self._on_recover:
                callback(command)
        self._server_run_id = run_id

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
                callback(client.execute_command)
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


class ThreadPerProcess:
    """A background thread (a greenlet under gevent) started at most once per
    process, lazily: gunicorn forks workers after the app is created, and
    threads do not survive a fork."""

    def __init__(self, target: Callable[[], None], name: str):
        self.target = target
        self.name = name
        self._pid: int | None = None
        self._lock = threading.Lock()

    def ensure(self) -> bool:
        """Start the thread in this process if not yet; True when it started now."""
        if self._pid == os.getpid():
            return False
        with self._lock:
            if self._pid == os.getpid():
                return False
            self._pid = os.getpid()
            threading.Thread(target=self.target, name=self.name, daemon=True).start()
            return True
