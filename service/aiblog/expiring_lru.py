"""A bounded map whose entries expire: the one per-process cache behind the
rendered pages (L1), AI answers made without Redis, and logged-in users."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class ExpiringLRU(Generic[V]):
    """At most ``max_entries`` values, each kept ``ttl`` seconds; when full,
    the least recently used goes first. Safe for threads and greenlets: the
    lock guards a few dict operations and never waits on I/O."""

    def __init__(self, max_entries: int, ttl: float, clock: Callable[[], float] = time.monotonic):
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        """The value, or None when there is none or it has expired."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= now:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def set(self, key: Hashable, value: V) -> None:
        expires = self._clock() + self.ttl
        with self._lock:
            self._entries[key] = (expires, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
