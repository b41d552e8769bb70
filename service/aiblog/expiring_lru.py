"""A bounded map whose entries expire: the one per-process cache behind the
rendered pages (L1), AI answers made without Redis, and logged-in users."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class ExpiringLRU(Generic[V]):
    """At most ``max_entries`` values, each kept ``ttl`` seconds, and with
    ``max_bytes`` at most that many bytes (``len`` of the values) in all; when
    full, the least recently used goes first, and a value larger than
    ``max_bytes`` alone is not kept. Safe for threads and greenlets: the
    lock guards a few dict operations and never waits on I/O."""

    def __init__(self, max_entries: int, ttl: float, clock: Callable[[], float] = time.monotonic,
                 max_bytes: int | None = None):
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self.total_bytes = 0  # counted only when max_bytes is set
        self._lock = threading.Lock()

    def _size(self, value: V) -> int:
        return len(value) if self.max_bytes is not None else 0  # type: ignore[arg-type]

    def _drop(self, key: Hashable) -> None:
        self.total_bytes -= self._size(self._entries.pop(key)[1])

    def get(self, key: Hashable) -> V | None:
        """The value, or None when there is none or it has expired."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= now:
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def set(self, key: Hashable, value: V) -> None:
        expires = self._clock() + self.ttl
        size = self._size(value)
        with self._lock:
            if key in self._entries:
                self._drop(key)
            if self.max_bytes is not None and size > self.max_bytes:
                return
            self._entries[key] = (expires, value)
            self.total_bytes += size
            while len(self._entries) > self.max_entries or (
                    self.max_bytes is not None and self.total_bytes > self.max_bytes):
                self._drop(next(iter(self._entries)))

    def __len__(self) -> int:
        return len(self._entries)
