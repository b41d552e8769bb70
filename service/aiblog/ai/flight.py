"""Single flight: many identical requests, one LLM call.

The first request for a key takes a lease (a Redis lock with an expiry, so a
crashed leader cannot block a key for ever) and calls the LLM; everyone else
waits for its outcome. Waiting is woken by Redis pub/sub through one listener
per process, and re-checked every ``poll`` seconds, so correctness never
depends on a message arriving. Without Redis the same protocol runs inside
one process.
"""
from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable

from ..redis_store import REDIS_ERRORS, RedisStore, ThreadPerProcess

log = logging.getLogger(__name__)

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass
class Outcome:
    """How a wait ended: ``done`` (result is cached), ``failed`` (with the
    leader's error), ``free`` (the leader gave up; try to lead) or ``timeout``."""

    state: str
    error: dict | None = None


class _Waiters:
    """Per-process registry of waiting requests, woken by key.

    Each message gets a sequence number, and a waiter only sees messages
    sent after it registered: a stale "free" or "failed" from an earlier
    leader must not end the wait for the current one.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._events: dict[str, set[threading.Event]] = {}
        self._messages: dict[str, tuple[int, dict]] = {}
        self._seq = 0

    def register(self, key: str) -> tuple[threading.Event, int]:
        event = threading.Event()
        with self._lock:
            self._events.setdefault(key, set()).add(event)
            return event, self._seq

    def unregister(self, key: str, event: threading.Event) -> None:
        with self._lock:
            events = self._events.get(key)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._events[key]
                    self._messages.pop(key, None)

    def wake(self, key: str, message: dict) -> None:
        with self._lock:
            self._seq += 1
            if key in self._events:
                self._messages[key] = (self._seq, message)
            events = list(self._events.get(key, ()))
        for event in events:
            event.set()

    def message(self, key: str, after: int) -> dict | None:
        with self._lock:
            seq, message = self._messages.get(key, (0, None))
            return message if seq > after else None


class _Flight:
    """The wait loop shared by both backends; they supply ``_held``."""

    poll: float
    _waiters: _Waiters

    def _held(self, key: str) -> bool:
        raise NotImplementedError

    def _before_wait(self) -> None:
        pass

    def wait(self, key: str, deadline: float, result_ready: Callable[[], bool]) -> Outcome:
        self._before_wait()
        event, registered_at = self._waiters.register(key)
        try:
            while True:
                # Check state first: the leader may have finished before we
                # registered, and then no message will ever come.
                if result_ready():
                    return Outcome("done")
                message = self._waiters.message(key, registered_at)
                if message and message.get("state") in ("failed", "free"):
                    return Outcome(message["state"], message.get("error"))
                if not self._held(key):
                    return Outcome("done") if result_ready() else Outcome("free")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return Outcome("timeout")
                event.wait(min(self.poll, remaining))
                event.clear()
        finally:
            self._waiters.unregister(key, event)


class RedisFlight(_Flight):
    def __init__(self, store: RedisStore, lease: float, poll: float = 0.25, prefix: str = "aiblog:ai"):
        self.store = store
        self.lease = lease
        self.poll = poll
        self.prefix = prefix
        self._release = store.client.register_script(_RELEASE_LUA)
        self._waiters = _Waiters()
        self._listener = ThreadPerProcess(self._listen, "ai-flight-listener")

    def _lock_key(self, key: str) -> str:
        return f"{self.prefix}:lock:{key}"

    def _channel(self, key: str) -> str:
        return f"{self.prefix}:done:{key}"

    def acquire(self, key: str) -> str | None:
        token = secrets.token_hex(8)
        ok = self.store.call(lambda r: r.set(self._lock_key(key), token, nx=True, px=int(self.lease * 1000)))
        if ok is None and not self.store.available:
            raise RedisUnavailable("Redis is unavailable")
        return token if ok else None

    def release(self, key: str, token: str) -> None:
        self.store.call(lambda r: self._release(keys=[self._lock_key(key)], args=[token]))

    def publish(self, key: str, message: dict) -> None:
        self.store.call(lambda r: r.publish(self._channel(key), json.dumps(message)))

    def _before_wait(self) -> None:
        self._ensure_listener()

    def _held(self, key: str) -> bool:
        held = self.store.call(lambda r: r.exists(self._lock_key(key)))
        if held is None and not self.store.available:
            raise RedisUnavailable("Redis is unavailable")
        return bool(held)

    def _ensure_listener(self) -> None:
        self._listener.ensure()

    def _listen(self) -> None:
        pattern = f"{self.prefix}:done:*"
        offset = len(pattern) - 1
        while True:
            try:
                pubsub = self.store.client.pubsub(ignore_subscribe_messages=True)
                pubsub.psubscribe(pattern)
                for message in pubsub.listen():
                    if message.get("type") != "pmessage":
                        continue
                    key = message["channel"].decode()[offset:]
                    try:
                        payload = json.loads(message["data"])
                    except (ValueError, TypeError):
                        continue
                    self._waiters.wake(key, payload)
            except REDIS_ERRORS as exc:
                log.debug("single-flight listener reconnecting after %r", exc)
                time.sleep(1.0)  # waiters still poll meanwhile


class LocalFlight(_Flight):
    """The same protocol for one process, when no Redis is configured."""

    def __init__(self, lease: float, poll: float = 0.25):
        self.lease = lease
        self.poll = poll
        self._lock = threading.Lock()
        self._leases: dict[str, tuple[str, float]] = {}
        self._waiters = _Waiters()

    def acquire(self, key: str) -> str | None:
        now = time.monotonic()
        with self._lock:
            holder = self._leases.get(key)
            if holder is not None and holder[1] > now:
                return None
            token = secrets.token_hex(8)
            self._leases[key] = (token, now + self.lease)
            return token

    def release(self, key: str, token: str) -> None:
        with self._lock:
            if self._leases.get(key, ("",))[0] == token:
                del self._leases[key]

    def publish(self, key: str, message: dict) -> None:
        self._waiters.wake(key, message)

    def _held(self, key: str) -> bool:
        with self._lock:
            holder = self._leases.get(key)
            return holder is not None and holder[1] > time.monotonic()


class RedisUnavailable(RuntimeError):
    pass
