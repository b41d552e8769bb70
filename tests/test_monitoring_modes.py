"""gunicorn set-ups other than the full stack: no Redis (active users shared
by the workers of one machine), metrics turned off, a metrics port in use."""
from __future__ import annotations

import socket

import httpx
import pytest

from devstack import Gunicorn, port_open, run_aiblog
from tests.conftest import blog_env, csrf_token
from tests.support.monitoring import scrape, total

pytestmark = pytest.mark.slow


def blog(tmp_path, **settings) -> Gunicorn:
    env = blog_env(DATABASE_URL=f"sqlite:///{tmp_path / 'blog.sqlite3'}", REDIS_URL="", **settings)
    run_aiblog("migrate", env=env)
    run_aiblog("seed", env=env)
    return Gunicorn(tmp_path, env, workers=2)


def test_without_redis_active_users_are_counted_across_the_workers(tmp_path):
    gunicorn = blog(tmp_path).start()
    try:
        for name in ("ann", "bob"):
            client = httpx.Client(base_url=gunicorn.url, limits=httpx.Limits(max_keepalive_connections=0))
            token = csrf_token(client.get("/register").text)
            assert client.post("/register", data={"username": name, "password": "correct horse battery",
                                                  "confirm": "correct horse battery",
                                                  "csrf_token": token}).status_code == 302
            for _ in range(6):  # new connections: both workers see both users
                assert client.get("/").status_code == 200
            client.close()
        assert total(scrape(gunicorn.metrics_url), "blog_active_users") == 2
        assert "blog_jobs_queued" not in httpx.get(gunicorn.metrics_url).text  # no Redis, no queue
    finally:
        gunicorn.stop()


def test_metrics_can_be_turned_off(tmp_path):
    gunicorn = blog(tmp_path, METRICS_ENABLED="false").start()
    try:
        assert httpx.get(gunicorn.url + "/").status_code == 200
        assert httpx.get(gunicorn.url + "/metrics").status_code == 404
        assert not port_open(gunicorn.metrics_port)
    finally:
        gunicorn.stop()


def test_a_taken_metrics_port_stops_gunicorn_with_a_clear_error(tmp_path):
    gunicorn = blog(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", gunicorn.metrics_port))
        squatter.listen()
        # (TimeoutError too: the helper may report a dead gunicorn only at its deadline.)
        with pytest.raises((RuntimeError, TimeoutError), match="cannot serve metrics on .*Address already in use"):
            gunicorn.start(timeout=8)
    gunicorn.stop()


def test_gunicorn_cleans_up_the_metrics_dir_it_created(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    gunicorn = blog(tmp_path, TMPDIR=str(scratch)).start()
    try:
        dirs = list(scratch.glob("aiblog-metrics-*"))
        assert len(dirs) == 1 and any(path.suffix == ".db" for path in dirs[0].iterdir())
    finally:
        gunicorn.stop()
    assert not dirs[0].exists()
