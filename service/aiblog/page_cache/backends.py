"""Where cached pages are kept, with version-based invalidation.

Every cached page belongs to a *scope*: ``lists`` (home and author pages) or
``post:<id>``. A scope has a version number; the cache key contains it.
A write bumps the versions of the scopes it changed *after* its commit and
before its response, so the next read from any worker computes a new key,
misses and renders from the database. A reader that raced with the write can
only have stored its page under the old key, which is never read again — so
there is no stale-after-own-write window, with Redis or without it.

Backends:
- Redis (``REDIS_URL`` set): ``TieredPageCache``. A hit is served from the
  process's own LRU (L1) with no Redis round trip; a miss there costs one
  round trip to the pages shared in Redis (L2: a Lua script reads the
  version and the page together). If a bump fails because Redis is down,
  an epoch shared by all keys is bumped the moment Redis answers again,
  before anything is read from it; a restarted Redis (which may reload pages
  from its snapshot) gets a new epoch from every process that meets it (see
  ``RedisStore._on_connect``).
- Local (no ``REDIS_URL``): pages in a per-process LRU; versions in a small
  memory-mapped file shared by every worker on the machine (``versions.py``),
  so a write in one gunicorn worker invalidates the pages held by all the others.
"""
from __future__ import annotations

import os
import time
from typing import Callable

from ..expiring_lru import ExpiringLRU
from ..redis_store import REDIS_ERRORS, RedisStore, ThreadPerProcess
from .versions import ScopeVersions

LISTS = "lists"


def post_scope(post_id: int) -> str:
    return f"post:{post_id}"


# The scope and name of each page the fast path (fast_path.py) serves too: one
# spelling for the views and for it.
def home_page(page: int) -> tuple[str, str]:
    return LISTS, f"home:{page}"


def post_page(post_id: int) -> tuple[str, str]:
    return post_scope(post_id), f"post:{post_id}"


_LOOKUP_LUA = """
local e = redis.call('GET', KEYS[1]) or '0'
local g = redis.call('GET', KEYS[2]) or '0'
local k = ARGV[1] .. ':' .. e .. '.' .. g
return {k, redis.call('GET', k)}
"""


class RedisPageCache:
    prefix = "aiblog:page"

    def __init__(self, store: RedisStore, ttl: int, on_result: Callable[[bool], None] | None = None):
        self.store = store
        self.ttl = ttl
        self.on_result = on_result or (lambda hit: None)
        self._epoch_key = f"{self.prefix}:epoch"
        self._lookup = store.client.register_script(_LOOKUP_LUA)
        store.on_recover(self._after_outage)

    def _version_key(self, scope: str) -> str:
        return f"{self.prefix}:gen:{scope}"

    def get(self, scope: str, name: str) -> tuple[str | None, bytes | None]:
        result = self.store.call(lambda r: self._lookup(
            keys=[self._epoch_key, self._version_key(scope)], args=[f"{self.prefix}:{name}"]))
        if result is None:
            return None, None
        key, value = result
        self.on_result(value is not None)
        return key.decode(), value

    def set(self, key: str | None, value: bytes) -> None:
        if key is not None:
            self.store.call(lambda r: r.set(key, value, ex=self.ttl))

    def invalidate(self, *scopes: str) -> None:
        def bump(r):
            pipe = r.pipeline(transaction=False)
            for scope in scopes:
                pipe.incr(self._version_key(scope))
                pipe.expire(self._version_key(scope), max(self.ttl * 2, 3600))
            pipe.execute()
            return True

        # If Redis is down the bump is lost, but _after_outage drops every
        # page cached before the outage before Redis is used again.
        self.store.call(bump, default=False)

    def _after_outage(self, command) -> None:
        # Another process may have written during the outage without being
        # able to invalidate; a new epoch makes every old key unreachable.
        command("INCR", self._epoch_key)


class LocalPageCache:
    def __init__(self, versions: ScopeVersions, ttl: int, max_entries: int = 2000,
                 on_result: Callable[[bool], None] | None = None, max_bytes: int | None = None):
        self.versions = versions
        self.ttl = ttl
        self.max_entries = max_entries
        self.on_result = on_result or (lambda hit: None)
        # Bounded in bytes too: 2000 pages of large posts would otherwise be gigabytes.
        self.pages: ExpiringLRU[bytes] = ExpiringLRU(max_entries, ttl, max_bytes=max_bytes)

    def get(self, scope: str, name: str, fresh: bool = False, record: bool = True) -> tuple[str, bytes | None]:
        # ``fresh`` needs nothing here: the versions are exact on one machine.
        key = f"{name}:{self.versions.get(scope)}"
        value = self.pages.get(key)
        if record:
            self.on_result(value is not None)
        return key, value

    def peek(self, scope: str, name: str) -> bytes | None:
        """The page if this process holds it, with no I/O (the fast path's lookup)."""
        value = self.pages.get(f"{name}:{self.versions.get(scope)}")
        if value is not None:
            self.on_result(True)  # a miss is counted by the lookup that follows it
        return value

    def set(self, key: str | None, value: bytes) -> None:
        if key is not None:
            self.pages.set(key, value)

    def invalidate(self, *scopes: str) -> None:
        self.versions.bump(*scopes)


class TieredPageCache:
    """Redis mode with no Redis round trip on a hit.

    L1 is the per-process LRU keyed by this machine's shared versions
    (the memory-mapped file), so every worker of the machine stops using a
    page the moment a local write commits. L2 is ``RedisPageCache``, shared by
    all replicas and keyed by the versions kept in Redis. A write bumps
    both and publishes the scopes; every process listens and bumps its
    machine's versions, which carries the invalidation to the other
    replicas within the pub/sub delay (about a millisecond). Whoever wrote
    also gets a short-lived cookie that sends their own next requests to
    L2's Redis versions, so they never see a page older than their write
    on any replica, even inside that millisecond.

    While this process's listener is not subscribed (start, Redis outage),
    invalidations from other replicas could be missed: reads then use L2
    only, and on (re)subscribing every L1 page of the machine is dropped.
    """

    channel = "aiblog:page:invalidate"

    def __init__(self, store: RedisStore, versions: ScopeVersions, ttl: int,
                 on_result: Callable[[bool], None] | None = None, max_entries: int = 2000,
                 max_bytes: int | None = None):
        self.store = store
        self.versions = versions
        self.on_result = on_result or (lambda hit: None)
        self.l1 = LocalPageCache(versions, ttl, max_entries=max_entries, max_bytes=max_bytes)
        self.l2 = RedisPageCache(store, ttl)
        self._subscribed_in: int | None = None  # the pid whose listener is subscribed
        self._listener = ThreadPerProcess(self._listen, "page-cache-listener")

    def get(self, scope: str, name: str, fresh: bool = False, record: bool = True):
        self.ensure_listener()
        if self.subscribed and not fresh:
            l1_key, value = self.l1.get(scope, name)
            if value is not None:
                if record:
                    self.on_result(True)
                return (l1_key, None), value
        else:
            l1_key = None
        l2_key, value = self.l2.get(scope, name)
        if value is not None and l1_key is not None:
            self.l1.set(l1_key, value)
        if record:
            self.on_result(value is not None)
        return (l1_key, l2_key), value

    def peek(self, scope: str, name: str) -> bytes | None:
        """The page if this process holds it and may trust its copy, with no I/O."""
        self.ensure_listener()
        if not self.subscribed:
            return None
        value = self.l1.peek(scope, name)
        if value is not None:
            self.on_result(True)
        return value

    def set(self, key, value: bytes) -> None:
        if key is None:
            return
        l1_key, l2_key = key
        self.l1.set(l1_key, value)
        self.l2.set(l2_key, value)

    def invalidate(self, *scopes: str) -> None:
        self.versions.bump(*scopes)  # this machine: at once, before the response
        self.l2.invalidate(*scopes)
        message = "\n".join((self.versions.machine_id, *scopes))
        self.store.call(lambda r: r.publish(self.channel, message))

    @property
    def subscribed(self) -> bool:
        """Whether this process hears other replicas' invalidations (then L1 is used)."""
        # Per process: a forked worker inherits the parent's value, not its listener.
        # (Resetting a flag after starting the listener could undo its first
        # subscription, and then L1 would never be used.)
        return self._subscribed_in == os.getpid()

    def ensure_listener(self) -> None:
        """Start this process's invalidation listener if it is not running (every ``get`` does)."""
        self._listener.ensure()

    def _listen(self) -> None:
        while True:
            pubsub = None
            try:
                pubsub = self.store.client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                # Anything published while we were not listening is lost:
                # drop every page of the machine, then trust L1 again.
                self.versions.bump_all()
                self._subscribed_in = os.getpid()
                for message in pubsub.listen():
                    if message.get("type") == "message":
                        origin, *scopes = message["data"].decode().split("\n")
                        # This machine's own writes bumped its versions already.
                        if origin != self.versions.machine_id:
                            self.versions.bump(*[s for s in scopes if s])
            except REDIS_ERRORS:
                pass
            finally:
                self._subscribed_in = None
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except REDIS_ERRORS:
                        pass
            time.sleep(1.0)  # reads use L2 (or the database) meanwhile
