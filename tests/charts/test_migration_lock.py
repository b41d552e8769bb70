"""Migrations under a Postgres advisory lock: every blog pod runs `aiblog migrate`
in its init container, so replicas starting together must take turns."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest

from aiblog.migration_lock import MIGRATION_LOCK_ID
from devstack import Postgres, StackError, wait_until

pytestmark = [pytest.mark.charts, pytest.mark.postgres]

AIBLOG = str(Path(sys.executable).parent / "aiblog")


@pytest.fixture(scope="module")
def postgres():
    workdir = Path(tempfile.mkdtemp(prefix="aiblog-lock-"))
    server = Postgres(workdir).start()
    yield server
    server.stop()


def migrate(database_url: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url, "BLOG_ENV": "development", "REDIS_URL": ""}
    return subprocess.Popen([AIBLOG, "migrate"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def has_schema(url: str) -> bool:
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL")
        return cursor.fetchone()[0]


def waiting_for_lock(url: str) -> bool:
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cursor.fetchone()[0] > 0


def test_migrate_waits_while_another_migration_holds_the_lock(postgres):
    url = postgres.create_database("lock_wait")
    holder = psycopg2.connect(url)
    holder.autocommit = True
    holder.cursor().execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
    process = migrate(url)
    try:
        def waiting() -> bool:
            if process.poll() is not None:  # it ended instead of waiting: say why, not a 60 s timeout
                raise StackError(f"aiblog migrate exited {process.returncode}:\n{process.stdout.read()[-3000:]}")
            return waiting_for_lock(url)

        wait_until(waiting, 60, "aiblog migrate to wait for the advisory lock")
        assert process.poll() is None and not has_schema(url), "it must not migrate while the lock is held"
        holder.cursor().execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output
        assert has_schema(url)
    finally:
        process.kill()
        holder.close()


def test_replicas_migrating_at_once_all_succeed(postgres):
    url = postgres.create_database("lock_race")
    processes = [migrate(url) for _ in range(3)]
    outputs = [p.communicate(timeout=180)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    assert all("database is up to date" in output for output in outputs)
    assert has_schema(url)
