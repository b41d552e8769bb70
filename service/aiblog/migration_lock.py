"""One migration at a time: a Postgres advisory lock around ``aiblog migrate``.

In Kubernetes every blog pod migrates in an init container before it serves,
so several replicas (a scale-up, a rollout with surge) can start ``aiblog
migrate`` at the same moment. The first takes this lock and migrates; the
others wait for it, then find the schema at head and do nothing. The lock is
held by its own connection, so the migrations' transactions are unaffected,
and Postgres releases it if the process dies. SQLite (one machine, `make run`)
needs no lock.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Iterator

from sqlalchemy import text
from sqlalchemy.engine import Engine

# pg_advisory_lock takes a bigint: any fixed number that no other code uses.
MIGRATION_LOCK_ID = 0x61696_26C6F67  # "aiblog"

log = logging.getLogger(__name__)


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Hold the migration lock (waiting for it if another process has it)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        log.info("waiting for the migration lock (another pod may be migrating)")
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()
        log.info("migration lock taken")
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
