"""The monitoring parts one at a time: request labels, DB timing, active
users (Redis and local), the small Redis client, the multiprocess set-up."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import redis

from aiblog.monitoring import active_users, metrics, metrics_server
from aiblog.monitoring.active_users import LocalActiveUsers, RedisActiveUsers, Throttle, trim_and_count_in_redis
from aiblog.monitoring.redis_resp import RespClient, RespError
from tests.conftest import make_app
from tests.support.ai import bearer_for, create_user
from devstack import REPO, Redis, free_port


def request_samples(app) -> dict[tuple[str, tuple], float]:
    registry = app.extensions["aiblog_metrics"].registry
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in registry.collect() for s in family.samples}


def count_for(app, **labels) -> float:
    return sum(value for (name, sample_labels), value in request_samples(app).items()
               if name == metrics.HTTP_DURATION + "_count" and all(dict(sample_labels).get(k) == v
                                                                   for k, v in labels.items()))


@pytest.fixture
def sqlite_app(sqlite_url):
    return make_app(sqlite_url)


def test_requests_are_labelled_by_route_template_never_by_path(sqlite_app):
    client = sqlite_app.test_client()
    for path in ("/post/1", "/post/2", "/post/99999"):
        client.get(path)
    for n in range(20):
        client.get(f"/made-up/{n}")
    assert count_for(sqlite_app, url_rule="/post/<int:post_id>") == 3
    assert count_for(sqlite_app, url_rule="unmatched", status="404") == 20
    rules = {dict(labels).get("url_rule") for (_, labels) in request_samples(sqlite_app)}
    assert not any(rule and "made-up" in rule for rule in rules)


def test_unknown_methods_share_one_label_and_probes_are_not_counted(sqlite_app):
    client = sqlite_app.test_client()
    for method in ("FOO", "BARBAZ", "PROPFIND"):
        assert client.open("/", method=method).status_code == 405
    assert client.get("/healthz").status_code == 200
    methods = {dict(labels)["method"] for (name, labels) in request_samples(sqlite_app)
               if name.startswith("blog_http_request")}
    assert methods == {"other"}
    assert count_for(sqlite_app, method="other", status="405") == 3


def test_database_statements_are_timed(sqlite_app):
    before = metrics.DB_QUERY_SECONDS._sum.get(), sum(b.get() for b in metrics.DB_QUERY_SECONDS._buckets)
    sqlite_app.test_client().get("/post/1")  # not cached yet: reads the database
    after = metrics.DB_QUERY_SECONDS._sum.get(), sum(b.get() for b in metrics.DB_QUERY_SECONDS._buckets)
    assert after[1] > before[1] and after[0] > before[0]


def test_metrics_disabled_means_no_request_metrics(sqlite_url):
    app = make_app(sqlite_url, METRICS_ENABLED=False)
    assert "aiblog_metrics" not in app.extensions
    assert app.test_client().get("/").status_code == 200


def test_logged_in_users_are_recorded_in_redis_once_per_throttle_window(app, client, auth, redis_url):
    store = redis.Redis.from_url(redis_url)
    client.get("/")
    assert store.zcard(active_users.KEY) == 0  # anonymous visitors are not users
    auth.register("carol")
    client.get("/")
    client.get("/")
    members = store.zrange(active_users.KEY, 0, -1, withscores=True)
    assert [member for member, _ in members] == [b"1"]
    assert abs(members[0][1] - time.time()) < 5


def test_users_of_the_ai_api_are_recorded_as_active(sqlite_url, redis_url):
    app = make_app(sqlite_url, redis_url)
    client = app.test_client()
    headers = bearer_for(client, *create_user(app, "api-writer"))
    store = redis.Redis.from_url(redis_url)
    assert store.zcard(active_users.KEY) == 0  # asking for a token is not using the blog
    response = client.post("/api/v1/generate", json={"title": "Counted", "mode": "background"}, headers=headers)
    assert response.status_code == 202, response.get_json()
    assert [member for member, _ in store.zrange(active_users.KEY, 0, -1, withscores=True)] == [b"1"]


def test_throttle_writes_each_user_at_most_once_per_interval():
    now = [1000.0]
    throttle = Throttle(interval=30, clock=lambda: now[0])
    assert throttle.due(7) and not throttle.due(7) and throttle.due(8)
    now[0] += 29.9
    assert not throttle.due(7)
    now[0] += 0.2
    assert throttle.due(7)


def test_local_active_users_count_the_window_and_forget_older_ones(tmp_path):
    users = LocalActiveUsers(str(tmp_path / "active"))
    for user_id in (1, 2, 3):
        users.record(user_id)
    users.record(2)  # twice is still one user
    old = time.time() - active_users.WINDOW_SECONDS - 1
    os.utime(tmp_path / "active" / "3", (old, old))
    assert users.count() == 2
    assert sorted(os.listdir(tmp_path / "active")) == ["1", "2"]


def test_redis_active_users_are_counted_by_the_metrics_server_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    RedisActiveUsers(lambda fn: fn(client)).record(11)
    RedisActiveUsers(lambda fn: fn(client)).record(12)
    client.zadd(active_users.KEY, {"13": time.time() - active_users.WINDOW_SECONDS - 5})
    assert trim_and_count_in_redis(RespClient(redis_url).command) == 2
    assert client.zcard(active_users.KEY) == 2  # the stale one was trimmed


@pytest.fixture
def redis_with_password(tmp_path):
    with Redis(tmp_path, password="s3cret/pw") as server:
        yield server.port


def test_redis_resp_client_authenticates_selects_the_database_and_reports_errors(redis_with_password):
    port = redis_with_password
    redis.Redis(port=port, password="s3cret/pw", db=3).rpush("rq:queue:generate", "a", "b")
    assert RespClient(f"redis://:s3cret%2Fpw@127.0.0.1:{port}/3").command("LLEN", "rq:queue:generate") == 2
    assert RespClient(f"redis://:s3cret%2Fpw@127.0.0.1:{port}/0").command("LLEN", "rq:queue:generate") == 0
    with pytest.raises(RespError, match="(?i)auth|pass"):
        RespClient(f"redis://127.0.0.1:{port}/0").command("LLEN", "x")
    with pytest.raises(RespError, match="(?i)wrong|invalid"):
        RespClient(f"redis://:wrong@127.0.0.1:{port}/0").command("PING")
    with pytest.raises(RespError, match="unexpected reply"):
        RespClient(f"redis://:s3cret%2Fpw@127.0.0.1:{port}/3").command("LRANGE", "rq:queue:generate", 0, -1)
    with pytest.raises(RespError, match="scheme"):
        RespClient("http://127.0.0.1:1/")


def test_redis_resp_client_reconnects_after_a_redis_restart(redis_server):
    client = RespClient(redis_server.url)
    assert client.command("PING") == "PONG"
    redis_server.stop()
    with pytest.raises(OSError):
        client.command("PING")
    redis_server.start()
    assert client.command("PING") == "PONG"


def test_collectors_omit_a_value_they_cannot_read_rather_than_report_a_wrong_one():
    dead = RespClient(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)
    assert list(metrics_server.JobsQueuedCollector(dead).collect()) == []
    assert list(metrics_server.ActiveUsersCollector(lambda: trim_and_count_in_redis(dead.command)).collect()) == []


def test_multiproc_dir_is_created_emptied_of_metric_files_only_and_exported(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv(metrics.MULTIPROC_OWNER_ENV, raising=False)
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"old")
    (directory / "notes.txt").write_text("not ours")
    (directory / "active-users").mkdir()
    (directory / "active-users" / "5").touch()

    path, created = metrics_server.prepare_multiproc_dir(str(directory))
    assert (path, created) == (str(directory), False)
    assert sorted(os.listdir(directory)) == ["notes.txt"]
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(directory)
    assert os.environ[metrics.MULTIPROC_OWNER_ENV] == str(os.getpid())

    fresh, created = metrics_server.prepare_multiproc_dir("")
    try:
        assert created and os.path.isdir(fresh) and os.listdir(fresh) == []
    finally:
        os.rmdir(fresh)


PROBE = "import aiblog.monitoring.metrics as m, os; m.POSTS_CREATED.inc(); print(sorted(os.listdir(os.environ.get('D', '.'))))"


def test_only_gunicorn_processes_write_metric_files(tmp_path):
    """A CLI command or RQ worker that inherited PROMETHEUS_MULTIPROC_DIR keeps
    its metrics in memory; a process whose parent prepared the dir writes files."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "D": str(directory)}
    env.pop(metrics.MULTIPROC_OWNER_ENV, None)
    stray = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, cwd=REPO)
    assert stray.returncode == 0, stray.stderr
    assert stray.stdout.strip() == "[]"

    missing = {**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "gone"), "D": str(tmp_path)}
    assert subprocess.run([sys.executable, "-c", PROBE], env=missing, capture_output=True).returncode == 0

    worker = {**env, metrics.MULTIPROC_OWNER_ENV: str(os.getpid())}  # we are its parent, like the master
    written = subprocess.run([sys.executable, "-c", PROBE], env=worker, capture_output=True, text=True, cwd=REPO)
    assert written.returncode == 0, written.stderr
    assert "counter_" in written.stdout


def test_process_collector_reads_live_processes_and_skips_dead_ones():
    sleeper = subprocess.Popen(["sleep", "30"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    try:
        collector = metrics_server.ProcessCollector(os.getpid(), lambda: [sleeper.pid, gone.pid])
        families = {family.name: family for family in collector.collect()}
        rss = {sample.labels["pid"]: sample.value for sample in families["blog_process_resident_memory_bytes"].samples}
        assert set(rss) == {str(os.getpid()), str(sleeper.pid)}
        assert rss[str(os.getpid())] > 10e6
        cpu = {s.labels["pid"]: s.value for s in families["blog_process_cpu_seconds"].samples}
        assert cpu[str(os.getpid())] > 0
        start = {s.labels["pid"]: s.value for s in families["blog_process_start_time_seconds"].samples}
        assert abs(start[str(sleeper.pid)] - time.time()) < 60
    finally:
        sleeper.kill()
        sleeper.wait()


def test_metrics_server_refuses_the_public_port():
    settings = {"METRICS_BIND": "", "BIND_HOST": "127.0.0.1", "METRICS_PORT": 8000, "PORT": 8000, "REDIS_URL": ""}
    with pytest.raises(RuntimeError, match="METRICS_PORT must differ from PORT"):
        metrics_server.start(settings, os.getpid(), lambda: [])


def test_the_metrics_server_reads_the_queue_the_ai_jobs_use(redis_url):
    """metrics_server spells the queue's key itself (the gunicorn master must
    not import rq/redis-py, see redis_resp.py); this keeps the two in step."""
    from rq import Queue

    from aiblog.ai import jobs

    client = redis.Redis.from_url(redis_url)
    queue = Queue(jobs.QUEUE_NAME, connection=client)
    assert metrics_server.RQ_QUEUE_KEY == queue.key
    queue.enqueue("builtins.print", "x")
    assert list(metrics_server.JobsQueuedCollector(RespClient(redis_url)).collect())[0].samples[0].value == 1
