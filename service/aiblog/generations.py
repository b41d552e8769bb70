"""Generation counters shared by the processes of one machine, in a small
memory-mapped file: a write in one gunicorn worker bumps a scope's number and
every other worker sees it at once. The page cache keys its pages by them
(page_cache.py) and the login identity cache its user snapshots
(auth/identity.py)."""
from __future__ import annotations

import fcntl
import hashlib
import logging
import mmap
import os
import secrets
import stat
import struct
import tempfile
import zlib

log = logging.getLogger(__name__)

# Set by the gunicorn master (gunicorn_conf.on_starting) to the folder it made,
# so every worker uses that one whatever it would work out itself.
RUNTIME_DIR_ENV = "AIBLOG_RUNTIME_DIR"


class SharedGenerations:
    """Generation counters in a memory-mapped file shared by local processes.

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


def _is_private(path: str) -> bool:
    info = os.lstat(path)  # lstat: a symlink planted there is not ours
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def private_dir() -> str:
    """This user's folder (mode 0700) for the files the blog's processes on
    this machine share: gunicorn's workers, and ``aiblog seed`` whose writes
    must reach their caches. In shared /tmp anyone could otherwise create or
    read the counters first; a folder of that name that is not ours and
    private is never used, a fresh unpredictable one is."""
    given = os.environ.get(RUNTIME_DIR_ENV)
    if given:
        return given
    path = os.path.join(tempfile.gettempdir(), f"aiblog-{os.getuid()}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    if not _is_private(path):
        log.warning("%s is not a private folder of this user; using a fresh one instead", path)
        path = tempfile.mkdtemp(prefix="aiblog-")
        os.environ[RUNTIME_DIR_ENV] = path  # the same one for the rest of this process and its children
    return path


def default_generations_path(database_url: str) -> str:
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    return os.path.join(private_dir(), f"generations-{digest}.bin")
