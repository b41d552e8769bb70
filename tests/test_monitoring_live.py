"""A real Prometheus scrapes the real blog (gunicorn, 2 workers, Redis, the
LLM simulator) while the tests drive a known amount of traffic.

The tests run in file order and share one stack: the first one needs
counters that start at zero, and the dashboard test needs the traffic of
those before it within its one-minute rate windows.
"""
from __future__ import annotations

import math
import os
import re
import signal
import sqlite3
import threading
import time
import uuid

import httpx
import pytest
import redis

from tests.conftest import csrf_token
from devstack import Gunicorn, LLMSimulator, Redis, run_aiblog, wait_until
from tests.conftest import blog_env
from tests.support.monitoring import (
    PrometheusServer, alerts, fetch_all, panel_queries, rules, scrape, total, worker_samples,
)

pytestmark = pytest.mark.slow

SIM_TOKENS = 40

# Panels allowed to show nothing after this traffic, with the reason.
# (Empty: every panel of the overview shows data. Ratios that would have no
# numerator, such as the 5xx rate, use `or vector(0)` so they show 0.)
MAY_BE_EMPTY: dict[str, str] = {}


class Stack:
    def __init__(self, tmp):
        self.parts = []  # started so far, stopped in reverse by close()
        try:
            self._start(tmp)
        except BaseException:
            self.close()
            raise

    def _start(self, tmp):
        self.redis = self._started(Redis(tmp)).start()
        self.sim = self._started(LLMSimulator(tmp, answer_seconds=None, ttft=0.02, tokens_per_second=0,
                                              tokens=SIM_TOKENS, models=None)).start()
        self.db_path = tmp / "blog.sqlite3"
        self.multiproc_dir = str(tmp / "metrics")
        env = blog_env(
            DATABASE_URL=f"sqlite:///{self.db_path}", REDIS_URL=self.redis.url,
            LLM_API="sim", LLM_BASE_URL=self.sim.url, LLM_SIMULATED="true",
            AI_RATE_LIMIT="1000 per minute", LLM_FIRST_TOKEN_TIMEOUT="60",
        )
        run_aiblog("migrate", env=env)
        run_aiblog("seed", env=env)
        self.gunicorn = Gunicorn(tmp, env, workers=2, multiproc_dir=self.multiproc_dir)
        self._started(self.gunicorn).start()
        self.metrics_url = self.gunicorn.metrics_url
        self.prometheus = self._started(
            PrometheusServer([f"127.0.0.1:{self.gunicorn.metrics_port}"], scrape_interval="1s")).start()
        self.prometheus.wait_for_scrape_after(time.time())

    def _started(self, part):
        self.parts.append(part)
        return part

    def post_ids(self) -> list[int]:
        with sqlite3.connect(self.db_path) as conn:
            return [row[0] for row in conn.execute("SELECT id FROM posts ORDER BY id")]

    def token(self, username="demo", password="demo-password") -> str:
        response = httpx.post(self.gunicorn.url + "/api/v1/tokens", auth=(username, password))
        assert response.status_code == 200, response.text
        return response.json()["token"]

    def close(self):
        for part in reversed(self.parts):
            part.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("monitoring"))
    yield stack
    stack.close()


def test_counters_and_histogram_count_equal_the_requests_sent(stack):
    post_ids = stack.post_ids()
    plan = {
        "/": ["/"] * 150,
        "/post/<int:post_id>": [f"/post/{post_ids[i % len(post_ids)]}" for i in range(100)],
        "/author/<username>": ["/author/demo"] * 50,
        "unmatched": [f"/no-such-page/{i}" for i in range(50)],
    }
    paths = [path for group in plan.values() for path in group]
    statuses = fetch_all(stack.gunicorn.url, paths, threads=6, new_connections=True)
    assert statuses.count(200) == 300 and statuses.count(404) == 50
    stack.prometheus.wait_for_scrape_after(time.time())

    prom = stack.prometheus
    sent = len(paths)
    assert prom.value("sum(blog_http_request_total)") == sent
    assert prom.value("sum(blog_http_request_duration_seconds_count)") == sent
    assert prom.value('sum(blog_http_request_duration_seconds_bucket{le="+Inf"})') == sent
    assert prom.value('sum(blog_http_request_total{status="404"})') == 50
    by_rule = {r["metric"]["url_rule"]: float(r["value"][1])
               for r in prom.query("sum by (url_rule) (blog_http_request_duration_seconds_count)")}
    assert by_rule == {rule: len(group) for rule, group in plan.items()}

    # Both workers served, and their own files add up to what was sent.
    per_worker = {pid: total(worker_samples(stack.multiproc_dir, pid), "blog_http_request_total")
                  for pid in stack.gunicorn.worker_pids()}
    assert len(per_worker) == 2 and all(count > 0 for count in per_worker.values()), per_worker
    assert sum(per_worker.values()) == sent


def register(base_url: str, username: str) -> httpx.Client:
    """A logged-in browser-like client that opens a new connection per request
    (so its requests land on different workers)."""
    client = httpx.Client(base_url=base_url, limits=httpx.Limits(max_keepalive_connections=0), timeout=10)
    token = csrf_token(client.get("/register").text)
    response = client.post("/register", data={
        "username": username, "password": "correct horse battery", "confirm": "correct horse battery",
        "csrf_token": token})
    assert response.status_code == 302, response.text[:500]
    return client


def test_active_users_are_distinct_users_across_workers(stack):
    users = [register(stack.gunicorn.url, f"reader{i}") for i in range(3)]
    for client in users:
        for _ in range(4):
            assert client.get("/").status_code == 200
        client.close()
    token = stack.token()  # an API user counts too
    for _ in range(3):
        response = httpx.get(stack.gunicorn.url + "/api/v1/jobs/no-such-job",
                             headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 404

    stack.prometheus.wait_for_scrape_after(time.time())
    assert stack.prometheus.value("max(blog_active_users)") == 4
    assert redis.Redis.from_url(stack.redis.url).zcard("aiblog:active-users") == 4


def test_ai_generation_metrics_and_job_queue_depth(stack):
    token = stack.token()
    headers = {"Authorization": f"Bearer {token}"}
    api = stack.gunicorn.url + "/api/v1/generate"
    for title in ("Monitoring one", "Monitoring two", "Monitoring three", "Monitoring one"):
        response = httpx.post(api, json={"title": title, "mode": "sync"}, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
    response = httpx.post(api, json={"title": "Queued for later", "mode": "background"}, headers=headers)
    assert response.status_code == 202, response.text  # no blog-worker runs: it stays queued

    stack.prometheus.wait_for_scrape_after(time.time())
    prom = stack.prometheus
    assert prom.value("sum(blog_ai_generation_seconds_count)") == 3
    assert prom.value("sum(blog_llm_time_to_first_token_seconds_count)") == 3
    assert prom.value("sum(blog_llm_tokens_total)") >= 3 * SIM_TOKENS * 0.9
    assert prom.value('sum(blog_ai_requests_total{outcome="generated"})') == 3
    assert prom.value('sum(blog_ai_requests_total{outcome="cached"})') == 1
    assert prom.value("sum(blog_llm_inflight)") == 0
    assert prom.value("max(blog_jobs_queued)") == 1


def test_every_dashboard_panel_query_is_valid_and_shows_data(stack):
    prom = stack.prometheus
    empty = []
    for dashboard, title, expr in panel_queries():
        result = prom.query(expr)  # fails on any PromQL error
        finite = [r for r in result if math.isfinite(float(r["value"][1]))]
        if not finite and title not in MAY_BE_EMPTY:
            empty.append(f"{dashboard} / {title}: {expr}")
    assert not empty, "panels without data after the traffic:\n" + "\n".join(empty)


def test_every_rule_is_valid_loaded_and_quiet_on_healthy_traffic(stack):
    prom = stack.prometheus
    for rule in rules():
        prom.query(rule["expr"])  # valid PromQL against real series
    firing_now = {rule["alert"]: prom.query(rule["expr"]) for rule in alerts()}
    assert {name: result for name, result in firing_now.items() if result} == {}

    def evaluated() -> list | None:
        loaded = [rule for group in prom.api("rules")["groups"] for rule in group["rules"]]
        never = "0001-01-01"  # Prometheus' lastEvaluation before the first one
        done = len(loaded) == len(rules()) and not any(r["lastEvaluation"].startswith(never) for r in loaded)
        return loaded if done else None

    loaded = wait_until(evaluated, 20, "every rule evaluated once")
    assert [rule["name"] for rule in loaded if rule["health"] != "ok"] == []
    assert prom.api("alerts")["alerts"] == []


def test_metrics_are_never_served_on_the_public_port(stack):
    public = httpx.get(stack.gunicorn.url + "/metrics")
    assert public.status_code == 404
    assert "blog_http_request_total" not in public.text
    private = httpx.get(stack.metrics_url)
    assert private.status_code == 200 and "blog_http_request_total" in private.text
    assert httpx.get(stack.metrics_url.replace("/metrics", "/")).status_code == 404


def test_ten_thousand_made_up_urls_do_not_grow_the_series(stack):
    def made_up(n: int) -> str:
        token = uuid.uuid4().hex  # matches no route, or a route's pattern with nothing behind it
        return (f"/{token}", f"/post/{token}", f"/post/{10**9 + n}", f"/author/{token}?page={n}",
                f"/static/{token}.css")[n % 5]

    def unknown_methods(count: int) -> list[int]:
        statuses = []
        for i in range(count):
            method = "".join(chr(65 + (i * 7 + k) % 26) for k in range(4 + i % 5))
            statuses.append(httpx.request(method, stack.gunicorn.url + f"/{uuid.uuid4().hex}").status_code)
        return statuses

    warm_up = [made_up(n) for n in range(100)]
    assert set(fetch_all(stack.gunicorn.url, warm_up)) <= {404}
    unknown_methods(20)
    before = scrape(stack.metrics_url)

    flood = [made_up(n) for n in range(10_000)]
    statuses = fetch_all(stack.gunicorn.url, flood, threads=8)
    assert len(statuses) == 10_000 and set(statuses) <= {404}
    assert set(unknown_methods(50)) <= {404, 405}
    after = scrape(stack.metrics_url)

    grown = sorted(set(after) - set(before))
    assert grown == [], f"{len(grown)} new series, e.g. {grown[:5]}"
    assert len(after) < 1000
    print(f"\nseries exposed after the 10,000-URL flood: {len(after)}")
    rules_seen = {dict(labels).get("url_rule") for (name, labels) in after
                  if name == "blog_http_request_duration_seconds_count"}
    assert not any(rule and re.search(r"[0-9a-f]{32}", rule) for rule in rules_seen), rules_seen


def test_a_killed_worker_leaves_no_stale_gauges(stack):
    """SIGKILL a worker in the middle of an LLM call: gunicorn starts a new
    one, and the dead one's in-flight gauge and process series disappear
    while the counters keep their totals."""
    token = stack.token()
    stack.sim.configure(hang_rate=1.0)
    stuck = threading.Thread(target=lambda: _ignore_errors(lambda: httpx.post(
        stack.gunicorn.url + "/api/v1/generate", json={"title": f"Hangs {uuid.uuid4()}", "mode": "sync"},
        headers={"Authorization": f"Bearer {token}"}, timeout=60)), daemon=True)
    try:
        stuck.start()
        wait_until(lambda: total(scrape(stack.metrics_url), "blog_llm_inflight") == 1, 15, "an LLM call in flight")
        busy = [pid for pid in stack.gunicorn.worker_pids()
                if total(worker_samples(stack.multiproc_dir, pid), "blog_llm_inflight") == 1]
        assert len(busy) == 1
        victim = busy[0]
        requests_before = total(scrape(stack.metrics_url), "blog_http_request_total")

        os.kill(victim, signal.SIGKILL)
        workers = wait_until(lambda: (lambda pids: len(pids) == 2 and victim not in pids and pids)(
            stack.gunicorn.worker_pids()), 30, "gunicorn to replace the killed worker")
        stuck.join(30)
    finally:
        stack.sim.configure(hang_rate=0.0)

    samples = scrape(stack.metrics_url)
    assert total(samples, "blog_llm_inflight") == 0
    assert total(samples, "blog_llm_circuit_open") == 0
    pids = {dict(labels)["pid"] for (name, labels) in samples if name == "blog_process_resident_memory_bytes"}
    assert str(victim) not in pids
    assert {str(pid) for pid in workers} <= pids
    assert total(samples, "blog_http_request_total") == requests_before  # the dead worker's counts stay

    stack.prometheus.wait_for_scrape_after(time.time())
    assert stack.prometheus.value("sum(blog_llm_inflight)") == 0
    assert stack.prometheus.value('count(blog_process_resident_memory_bytes{role="worker"})') == 2


def _ignore_errors(call):
    try:
        call()
    except httpx.HTTPError:
        pass  # the worker serving it was killed
