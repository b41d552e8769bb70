"""This user's private folder for the files the blog's processes on one
machine share (the page cache's version counters, active users without
Redis). Standard library only: the gunicorn master imports it before gevent
patches anything."""
from __future__ import annotations

import logging
import os
import stat
import tempfile

log = logging.getLogger(__name__)

# Set by the gunicorn master (gunicorn_conf.on_starting) to the folder it made,
# so every worker uses that one whatever it would work out itself.
RUNTIME_DIR_ENV = "AIBLOG_RUNTIME_DIR"


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
