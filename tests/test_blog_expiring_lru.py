"""The per-process cache shared by the page cache, the AI answers made
without Redis, and the logged-in users: expiry on a fake clock, and the least
recently used going first."""
from __future__ import annotations

import threading

import pytest

from aiblog.expiring_lru import ExpiringLRU


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_value_lives_for_its_ttl_then_is_gone():
    clock = Clock()
    cache = ExpiringLRU(10, ttl=30, clock=clock)
    cache.set("page", b"html")
    clock.now += 29.9
    assert cache.get("page") == b"html"
    clock.now += 0.1
    assert cache.get("page") is None
    assert len(cache) == 0  # an expired entry is dropped when met


def test_when_full_the_least_recently_used_goes_first():
    cache = ExpiringLRU(2, ttl=60, clock=Clock())
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.set("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_setting_again_replaces_the_value_and_its_expiry():
    clock = Clock()
    cache = ExpiringLRU(5, ttl=10, clock=clock)
    cache.set("k", "old")
    clock.now += 8
    cache.set("k", "new")
    clock.now += 8
    assert cache.get("k") == "new" and len(cache) == 1


def test_it_refuses_a_size_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        ExpiringLRU(0, ttl=1)


def test_threads_writing_at_once_never_exceed_the_bound():
    cache = ExpiringLRU(50, ttl=60)

    def write(offset: int) -> None:
        for i in range(2000):
            cache.set((offset, i), i)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 50
