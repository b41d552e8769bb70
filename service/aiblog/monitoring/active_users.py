"""Who was active lately: logged-in users seen in the last five minutes.

Workers *record* user ids; the metrics server *counts* them at scrape time,
so the figure is one number for all workers and all replicas.

- With Redis: a sorted set (member = user id, score = last seen, unix time).
  Every replica writes to it and every replica's metrics server reports the
  same global count — aggregate with ``max``, not ``sum``.
- Without Redis: one empty file per user in a directory shared by the
  workers of this machine, its mtime the last time seen. Correct for one
  machine, which is all a Redis-less deployment can be.

Each worker writes at most once per ``THROTTLE_SECONDS`` per user, so a
request costs a dict lookup, and the window's edge is blurred by that much.
"""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # not imported at run time: the gunicorn master imports this module
    import redis

WINDOW_SECONDS = 300
KEY = "aiblog:active-users"
THROTTLE_SECONDS = 30.0
_MAX_REMEMBERED = 50_000  # per process; forgetting only costs an extra write


class Throttle:
    """Per-process memory of when each user was last written."""

    def __init__(self, interval: float = THROTTLE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.clock = clock
        self._written: dict[int, float] = {}

    def due(self, user_id: int) -> bool:
        now = self.clock()
        last = self._written.get(user_id)
        if last is not None and now - last < self.interval:
            return False
        if len(self._written) >= _MAX_REMEMBERED:
            self._written.clear()
        self._written[user_id] = now
        return True


class RedisActiveUsers:
    def __init__(self, call: Callable[[Callable[["redis.Redis"], object]], object]):
        # ``call`` runs a function with a redis-py client, fail-soft
        # (``RedisStore.call``): a Redis outage must not fail the request.
        self.call = call

    def record(self, user_id: int) -> None:
        now = time.time()

        def write(client: "redis.Redis"):
            pipe = client.pipeline(transaction=False)
            pipe.zadd(KEY, {str(user_id): now})
            pipe.zremrangebyscore(KEY, "-inf", now - WINDOW_SECONDS)  # keeps the set small
            pipe.expire(KEY, WINDOW_SECONDS * 2)
            pipe.execute()

        self.call(write)


def trim_and_count_in_redis(command: Callable[..., object]) -> int:
    """Drop the users last seen before the window, then count the others;
    ``command(*args)`` runs one Redis command (``RespClient.command`` in the
    metrics server)."""
    cutoff = time.time() - WINDOW_SECONDS
    command("ZREMRANGEBYSCORE", KEY, "-inf", f"({cutoff}")
    return int(command("ZCOUNT", KEY, cutoff, "+inf"))


class LocalActiveUsers:
    def __init__(self, directory: str):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)

    def record(self, user_id: int) -> None:
        path = os.path.join(self.directory, str(int(user_id)))
        try:
            os.utime(path)
        except FileNotFoundError:
            open(path, "ab").close()

    def count(self) -> int:
        cutoff = time.time() - WINDOW_SECONDS
        active = 0
        for entry in os.scandir(self.directory):
            try:
                if entry.stat().st_mtime >= cutoff:
                    active += 1
                else:
                    os.unlink(entry.path)
            except FileNotFoundError:  # removed by a concurrent scrape
                pass
        return active


def local_directory(multiproc_dir: str) -> str:
    # Inside the metrics scratch dir: emptied with it at start, and the
    # multiprocess collector only reads *.db files, so it ignores this.
    return os.path.join(multiproc_dir, "active-users")
