"""AI writing on the real stack: gunicorn with several gevent workers, Redis,
the RQ worker process and the LLM simulator, each a real process."""
from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from devstack import Gunicorn, LLMSimulator, RQWorker, wait_until
from tests.conftest import blog_env, make_app
from tests.support.ai import basic, create_user


@pytest.fixture(scope="module")
def slow_sim():
    with LLMSimulator(answer_seconds=1.5, ttft=None, tokens=60, models=None) as process:
        yield process


@pytest.fixture
def stack(sqlite_url, redis_url, slow_sim):
    slow_sim.configure(answer_seconds=1.5, tokens=60, hang_rate=0, error_rate=0, cut_rate=0)
    slow_sim.reset()
    env = {"DATABASE_URL": sqlite_url, "REDIS_URL": redis_url, "LLM_API": "sim",
           "LLM_BASE_URL": slow_sim.url, "AI_RATE_LIMIT": "1000 per minute", "LLM_TOTAL_TIMEOUT": "30"}
    user = create_user(make_app(sqlite_url, redis_url))
    with Gunicorn(env=blog_env(**env), workers=2) as server:
        token = httpx.post(server.url + "/api/v1/tokens", headers=basic(*user)).json()["token"]
        yield server, env, {"Authorization": f"Bearer {token}"}


def test_fifty_concurrent_identical_requests_make_one_llm_call(stack, slow_sim):
    server, env, headers = stack
    assert len(server.worker_pids()) >= 2

    def ask(_):
        # A fresh connection each, so the requests spread over the workers.
        return httpx.post(server.url + "/api/v1/generate", json={"title": "One call for fifty readers"},
                          headers=headers, timeout=30)

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(ask, range(50)))
    assert [r.status_code for r in responses] == [200] * 50
    bodies = [r.json() for r in responses]
    assert len({b["content"] for b in bodies}) == 1
    assert sum(1 for b in bodies if not b["cached"] and not b["deduplicated"]) == 1
    assert slow_sim.stats()["generations"] == 1


def test_pages_stay_fast_while_generations_wait_on_the_llm(stack, slow_sim):
    """A waiting generation parks a greenlet, not a worker: reads go on."""
    server, env, headers = stack
    slow_sim.configure(answer_seconds=4)
    with ThreadPoolExecutor(20) as pool:
        pending = [pool.submit(httpx.post, server.url + "/api/v1/generate",
                               json={"title": f"Slow topic {i}"}, headers=headers, timeout=30) for i in range(20)]
        wait_until(lambda: slow_sim.stats()["in_progress"] >= 4, 10, "generations in progress")
        with httpx.Client(base_url=server.url) as reader:
            for _ in range(20):
                response = reader.get("/", timeout=1.0)  # far below the 4 s answer time
                assert response.status_code == 200
        statuses = sorted(f.result().status_code for f in pending)
    # LLM_MAX_INFLIGHT (4 per worker) bounds the LLM calls; the rest got 429.
    assert set(statuses) <= {200, 429}
    assert statuses.count(200) >= 4


def start_worker(env: dict[str, str]) -> RQWorker:
    return RQWorker(env=blog_env(**env), metrics_port=0).start()


def job(server, headers, job_id):
    response = httpx.get(f"{server.url}/api/v1/jobs/{job_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_background_job_lifecycle(stack, slow_sim):
    server, env, headers = stack
    response = httpx.post(server.url + "/api/v1/generate", json={"title": "In the background", "mode": "background"},
                          headers=headers)
    assert response.status_code == 202
    job_id = response.json()["id"]
    assert job(server, headers, job_id)["status"] == "queued"  # no worker yet: it waits

    worker = start_worker(env)
    try:
        wait_until(lambda: job(server, headers, job_id)["status"] == "running", 20, "the job to start")
        done = wait_until(lambda: (j := job(server, headers, job_id))["status"] == "done" and j, 20, "the job to finish")
        assert done["result"]["content"].startswith("# In the background")
        assert slow_sim.stats()["generations"] == 1
    finally:
        worker.close()

    other = create_user(make_app(env["DATABASE_URL"], env["REDIS_URL"]), "someone-else", "other-password-1")
    token = httpx.post(server.url + "/api/v1/tokens", headers=basic(*other)).json()["token"]
    foreign = httpx.get(f"{server.url}/api/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"})
    assert foreign.status_code == 404  # other users' jobs are invisible
    assert httpx.get(f"{server.url}/api/v1/jobs/does-not-exist", headers=headers).status_code == 404


def test_killed_worker_marks_its_job_failed(stack, slow_sim):
    server, env, headers = stack
    slow_sim.configure(hang_rate=1.0)
    response = httpx.post(server.url + "/api/v1/generate", json={"title": "Doomed job", "mode": "background"},
                          headers=headers)
    job_id = response.json()["id"]
    worker = start_worker(env)
    try:
        wait_until(lambda: job(server, headers, job_id)["status"] == "running", 20, "the job to start")
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait(5)
        failed = wait_until(lambda: (j := job(server, headers, job_id))["status"] == "failed" and j, 15,
                            "the job to be reported failed")
        assert "worker" in failed["error"]
    finally:
        worker.close()
