"""Rate limits that hold under concurrency: an attempt is counted before the
work it guards, and given back when the rule says it should not count.

Flask-Limiter checks a limit when a request starts and counts it when the
response is known, so 40 parallel wrong passwords all passed a limit of 10.
Here ``take`` checks and counts in one atomic step (a Lua script on a Redis
sorted set per window, or a lock in this process without Redis), and the
caller ``refund``s the attempt when it turns out free: a successful login, a
cached AI answer.

A limit is written as in the settings table: ``"5 per minute; 20 per hour"``
(parsed by ``rate_texts``). Every window must have room for the attempt, so
the longer windows make a repeated offender wait longer and longer (backoff).

This is the engine; views count an attempt against a configured limit with
``request_limits.take``.
"""
from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from werkzeug.exceptions import TooManyRequests

from .rate_texts import Rate, parse_rates
from .redis_store import REDIS_ERRORS, RedisStore

log = logging.getLogger(__name__)

KEY_PREFIX = "aiblog:rate:"


class RateLimited(TooManyRequests):
    """A 429 whose message says what was limited; ``retry_after`` in whole seconds."""

    def __init__(self, what: str, retry_after: int):
        super().__init__(description=f"Too many {what}. Try again in {retry_after} s.", retry_after=retry_after)


# KEYS: one sorted set per window. ARGV: a unique member, then the amount and
# window (ms) of each key. Returns 0 when the attempt was counted in every
# window, else the milliseconds until it would fit (nothing counted then).
_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local amount = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= amount then
    local oldest = redis.call('ZRANGE', key, count - amount, count - amount, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 * i + 1]))
end
return 0
"""


@dataclass
class Ticket:
    """One counted attempt; ``refund`` gives it back (once)."""

    limiter: "RateLimiter"
    keys: tuple[str, ...]
    member: str
    in_redis: bool
    refunded: bool = field(default=False)

    def refund(self) -> None:
        if not self.refunded:
            self.refunded = True
            self.limiter._refund(self)

    def receipt(self) -> dict | None:
        """What another process needs to give this attempt back later (a
        background job's worker), when it is counted in Redis."""
        return {"keys": list(self.keys), "member": self.member} if self.in_redis else None


class LocalWindows:
    """The same windows in this process, for a blog without Redis (or while it is down)."""

    def __init__(self, clock=time.monotonic, sweep_every: int = 1024):
        self._clock = clock
        self._sweep_every = sweep_every  # takes between two sweeps of windows nobody touched again
        self._lock = threading.Lock()
        self._hits: dict[str, list[tuple[float, str]]] = {}
        self._window: dict[str, int] = {}  # seconds, per key
        self._takes = 0

    def take(self, keys: list[str], rates: list[Rate], member: str) -> float:
        now = self._clock()
        with self._lock:
            self._takes += 1
            if self._takes % self._sweep_every == 0:
                self._sweep(now)
            wait = 0.0
            for key, rate in zip(keys, rates):
                hits = [hit for hit in self._hits.get(key, ()) if hit[0] > now - rate.seconds]
                self._hits[key], self._window[key] = hits, rate.seconds
                if len(hits) >= rate.amount:
                    wait = max(wait, hits[len(hits) - rate.amount][0] + rate.seconds - now)
            if wait > 0:
                return wait
            for key in keys:
                self._hits[key].append((now, member))
            return 0.0

    def _sweep(self, now: float) -> None:
        """Drop windows whose attempts have all expired: memory stays bounded
        by the keys active within their window (as PEXPIRE does in Redis)."""
        for key in [key for key, hits in self._hits.items() if not hits or hits[-1][0] <= now - self._window[key]]:
            del self._hits[key], self._window[key]

    def __len__(self) -> int:
        return len(self._hits)

    def refund(self, keys: tuple[str, ...], member: str) -> None:
        with self._lock:
            for key in keys:
                hits = self._hits.get(key)
                if hits:
                    self._hits[key] = [hit for hit in hits if hit[1] != member]

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()
            self._window.clear()


class RateLimiter:
    def __init__(self, store: RedisStore):
        self.store = store
        self.local = LocalWindows()
        self._script = store.client.register_script(_TAKE) if store.client is not None else None

    def take(self, what: str, limits: Sequence[tuple[str, str, tuple[Rate, ...]]]) -> Ticket:
        """Count one attempt against every ``(name, key, rates)`` in ``limits``
        at once; raises ``RateLimited`` (counting nothing) when any window is
        full. ``what`` names the attempts in the message ("failed logins")."""
        keys, rates = [], []
        for name, key, limit_rates in limits:
            for rate in limit_rates:
                keys.append(f"{KEY_PREFIX}{name}:{rate.seconds}:{key}")
                rates.append(rate)
        member = f"{time.time():.6f}-{secrets.token_hex(4)}"
        wait_ms = self._take_in_redis(keys, rates, member)
        in_redis = wait_ms is not None
        if not in_redis:
            wait_ms = self.local.take(keys, rates, member) * 1000
        if wait_ms > 0:
            raise RateLimited(what, max(1, math.ceil(wait_ms / 1000)))
        return Ticket(self, tuple(keys), member, in_redis)

    def take_configured(self, config: Mapping, what: str, *limits: tuple[str, str, str]) -> Ticket:
        """``take`` with each limit given as ``(name, key, setting)``: the
        limit named ``name`` for ``key``, as ``config[setting]`` says."""
        return self.take(what, [(name, key, parse_rates(config[setting])) for name, key, setting in limits])

    def _take_in_redis(self, keys, rates, member) -> float | None:
        if self._script is None:
            return None
        args = [member]
        for rate in rates:
            args += [rate.amount, rate.seconds * 1000]
        # None when Redis is down: this process's windows stand in meanwhile.
        return self.store.call(lambda client: float(self._script(keys=list(keys), args=args, client=client)))

    def _refund(self, ticket: Ticket) -> None:
        if not ticket.in_redis:
            self.local.refund(ticket.keys, ticket.member)
            return
        try:
            pipe = self.store.client.pipeline(transaction=False)
            for key in ticket.keys:
                pipe.zrem(key, ticket.member)
            pipe.execute()
        except REDIS_ERRORS as exc:  # the attempt stays counted: the safe side
            log.warning("could not give back a rate-limit attempt: %s", exc)

    def refund_receipt(self, receipt: dict) -> None:
        """Give back the attempt a ``Ticket.receipt`` describes."""
        self._refund(Ticket(self, tuple(receipt["keys"]), receipt["member"], in_redis=True))

    def reset(self) -> None:
        """Forget every attempt (tests)."""
        self.local.reset()
        if self.store.client is not None:
            for key in self.store.client.scan_iter(match=KEY_PREFIX + "*", count=1000):
                self.store.client.delete(key)
