"""Password hashes: argon2id, computed off the gevent event loop.

A password hash costs tens of milliseconds of CPU on purpose. Under
gunicorn's gevent worker every request of a worker shares one OS thread, so a
hash computed inline stalls all of them. The hash functions are C code that
releases the GIL, so under gevent they run in a small pool of native threads
while the worker keeps serving its other greenlets. Elsewhere (thread
workers, the CLI, tests) they run directly.

Hashes made before argon2id (Werkzeug's ``scrypt:...``/``pbkdf2:...``) still
verify; ``needs_rehash`` says when to replace one after a successful login.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from werkzeug.security import check_password_hash

from .cooperative import gevent_patched

# One of OWASP's equivalent minimum settings for argon2id: 9 MiB of memory,
# 4 passes, 1 lane (as strong as their 19 MiB / 2 passes). Measured here:
# 20 ms of CPU a hash, against 26 ms for 19 MiB / 2; and a 9 MiB block is
# cheap to keep in each hashing thread's heap, where a 19 MiB one was either
# kept (+40 MB RSS a worker) or handed back to the OS after every hash and
# page-faulted in again (42 ms of CPU a hash). Logins are the most CPU-hungry
# requests of the blog, so this is its largest single CPU saving.
_hasher = PasswordHasher(time_cost=4, memory_cost=9 * 1024, parallelism=1, type=Type.ID)
_ARGON2_PREFIX = "$argon2"

# Native threads per process for hashing. The work is CPU-bound, so more
# threads than cores only queue in the kernel, and every thread keeps its
# hash's memory in its malloc arena: with gevent's default pool of 10 threads
# (and 19 MiB hashes) a login burst took a worker from 95 to 250 MB RSS.
HASH_THREADS = 2
_pool = None

T = TypeVar("T")


def hash_password(password: str) -> str:
    return off_event_loop(_hasher.hash, password)


def verify_password(stored_hash: str, password: str) -> bool:
    if stored_hash.startswith(_ARGON2_PREFIX):
        return off_event_loop(_verify_argon2, stored_hash, password)
    return off_event_loop(check_password_hash, stored_hash, password)


def needs_rehash(stored_hash: str) -> bool:
    """True for a hash that is not argon2id with today's parameters."""
    if not stored_hash.startswith(_ARGON2_PREFIX):
        return True
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def _verify_argon2(stored_hash: str, password: str) -> bool:
    # Runs in a pool thread: answer a bool rather than raise across threads.
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def off_event_loop(fn: Callable[..., T], *args) -> T:
    """``fn(*args)``, in a native thread when gevent runs this process."""
    if gevent_patched():
        return _hash_pool().apply(fn, args)
    return fn(*args)


def _hash_pool():
    global _pool
    if _pool is None:  # made at first use, in the worker (threads do not survive a fork)
        from gevent.threadpool import ThreadPool

        _pool = ThreadPool(HASH_THREADS)
    return _pool
