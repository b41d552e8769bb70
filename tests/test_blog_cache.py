"""The page cache under real gunicorn with several workers: a write through
one worker is seen at once by every worker, anonymous pages come from the
cache, and a logged-in user never gets someone else's page.

Runs with Redis and with the in-process fallback (pages in each worker,
generations in a file shared by the workers), on SQLite and on Postgres."""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from aiblog.extensions import db
from tests.conftest import blog_env, make_app
from tests.support.blog import LiveUser, create_user, nav_user
from devstack import Gunicorn, wait_until

WORKERS = 3
READS = 60  # anonymous reads after each write, spread over the workers
ACCESS_LOG_FORMAT = "%(p)s %(m)s %(U)s %(s)s"  # worker pid first, as <pid>


def read_many(base_url: str, paths: list[str]) -> list[str]:
    """GET every path at once, each on a new connection (so any worker may answer). One client
    per request: threads sharing a pool that closes each connection after its response once
    read from a socket another thread had just closed (EBADF, a client-side failure)."""
    def fetch(path: str) -> str:
        with httpx.Client(base_url=base_url, timeout=15) as client:
            response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.text

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(fetch, paths))


def page_cache_counts(metrics_url: str) -> dict[str, float]:
    text = httpx.get(metrics_url, timeout=10).text
    counts = {"hit": 0.0, "miss": 0.0}
    for result, value in re.findall(r'^blog_cache_requests_total\{[^}]*cache="page"[^}]*result="(\w+)"[^}]*\} (\S+)$', text, re.M):
        counts[result] += float(value)
    return counts


def answering_pids(access_log: Path, start: int, expected: int) -> set[int]:
    """Pids of the workers that logged the ``expected`` requests after byte ``start``."""
    def lines():
        with open(access_log, "rb") as log:
            log.seek(start)
            found = [line.split()[0] for line in log.read().decode().splitlines() if " GET " in line]
        return found if len(found) >= expected else None

    return {int(pid.strip("<>")) for pid in wait_until(lines, 10, f"{expected} lines in the access log")}


@pytest.mark.parametrize("database_url, cache", [("sqlite", "redis"), ("sqlite", "in-process"), ("postgres", "redis")],
                         indirect=["database_url"])
def test_several_workers_never_serve_a_page_older_than_a_write(request, tmp_path, database_url, cache):
    redis_url = request.getfixturevalue("redis_url") if cache == "redis" else ""
    setup = make_app(database_url)
    for name in ("alice", "bob"):
        create_user(setup, name)
    with setup.app_context():
        db.engine.dispose()

    access_log = tmp_path / "access.log"
    server = Gunicorn(tmp_path, blog_env(DATABASE_URL=database_url, REDIS_URL=redis_url,
                                         GUNICORN_ACCESS_LOG=str(access_log),
                                         GUNICORN_CMD_ARGS=f"--access-logformat '{ACCESS_LOG_FORMAT}'"),
                      workers=WORKERS).start()
    alice, bob = LiveUser(server.url), LiveUser(server.url)
    try:
        alice.login("alice")
        bob.login("bob")
        created = alice.submit("/create", title="Version 0", body="Body of version 0")
        assert created.status_code == 302
        post_path = created.headers["Location"]
        paths = [post_path, "/"] * (READS // 2)

        for version in range(1, 4):
            # Every worker caches the current version...
            assert all(f"Version {version - 1}" in page for page in read_many(server.url, paths))
            edited = alice.submit(f"{post_path}/edit", title=f"Version {version}", body=f"Body of version {version}")
            assert edited.status_code == 302
            # ...and none of them serves it once the write has returned.
            before, log_start = page_cache_counts(server.metrics_url), access_log.stat().st_size
            pages = read_many(server.url, paths)
            stale = [page for page in pages if f"Version {version}" not in page or f"Version {version - 1}" in page]
            assert stale == [], f"{len(stale)} of {len(pages)} reads after write {version} were stale"
            assert all(nav_user(page) is None for page in pages)

            after = page_cache_counts(server.metrics_url)
            hits, misses = after["hit"] - before["hit"], after["miss"] - before["miss"]
            assert hits + misses >= READS
            # The write made both pages miss; after that, reads are served from the cache
            # (a few concurrent first reads may all miss before one stores the page).
            assert misses >= 2 and hits >= READS // 2, (hits, misses)
            pids = answering_pids(access_log, log_start, READS)
            assert pids <= set(server.worker_pids())
            assert len(pids) >= 2, f"all {READS} reads went to one worker: {pids}"

        if redis_url:
            assert redis.Redis.from_url(redis_url).keys("aiblog:page:*"), "pages are cached in Redis"

        # Logged-in users get the shared cached content in their own layout.
        def as_user(user_and_path):
            user, path = user_and_path
            return user, path, user.get(path)

        jobs = [(user, path) for _ in range(10) for user in (alice, bob) for path in ("/", post_path)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            for user, path, response in pool.map(as_user, jobs):
                name = "alice" if user is alice else "bob"
                assert response.status_code == 200
                assert nav_user(response.text) == name, (name, path)
                if path == post_path:
                    assert ("/edit" in response.text) == (name == "alice"), "edit controls belong to the author only"
        assert all(nav_user(page) is None for page in read_many(server.url, ["/", post_path] * 6))
    finally:
        alice.close()
        bob.close()
        server.stop()
