"""Version counters shared by the processes of one machine, in a small
memory-mapped file: a write in one gunicorn worker bumps a scope's version and
every other worker sees it at once. The page cache keys its pages by them
(``backends.py``) and the login identity cache its user snapshots
(``auth/identity.py``).

("Version", not "generation": in this code base a generation is what the LLM
writes.)"""
from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import secrets
import struct
import zlib

from ..runtime_dir import private_dir


class ScopeVersions:
    """Version counters in a memory-mapped file shared by local processes.

    Scopes hash into a fixed number of slots; a collision only causes an
    extra invalidation, never a stale page.
    """

    SLOTS = 4096
    _FMT = struct.Struct("<Q")

    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            size = self.SLOTS * self._FMT.size
            if os.fstat(fd).st_size < size:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_size < size:
                    os.ftruncate(fd, size)
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._lock_fd = os.open(path, os.O_RDWR)
        self.machine_id = self._machine_id(path + ".id")

    @staticmethod
    def _machine_id(path: str) -> str:
        """A random id shared by the processes using this file (this machine)."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            with open(path) as existing:
                return existing.read().strip() or "unknown"
        with os.fdopen(fd, "w") as created:
            created.write(secrets.token_hex(8))
        with open(path) as written:
            return written.read().strip()

    def _slot(self, scope: str) -> int:
        return (zlib.crc32(scope.encode()) % self.SLOTS) * self._FMT.size

    def get(self, scope: str) -> int:
        return self._FMT.unpack_from(self._map, self._slot(scope))[0]

    def bump(self, *scopes: str) -> None:
        self._bump_offsets([self._slot(scope) for scope in scopes])

    def bump_all(self) -> None:
        """Invalidate every page of this machine (after missed invalidations)."""
        self._bump_offsets(range(0, self.SLOTS * self._FMT.size, self._FMT.size))

    def _bump_offsets(self, offsets) -> None:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            for offset in offsets:
                value = self._FMT.unpack_from(self._map, offset)[0]
                self._FMT.pack_into(self._map, offset, value + 1)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)


def default_versions_path(database_url: str) -> str:
    """This machine's counters for one database, in the user's private runtime folder."""
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    return os.path.join(private_dir(), f"versions-{digest}.bin")
