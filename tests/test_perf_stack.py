"""devstack, the one process toolkit of ``make bench``, ``make run`` and
the tests: the stack runs every process the blog has."""
from __future__ import annotations

import httpx

from devstack import wait_until


def test_the_stack_runs_the_background_worker_and_it_does_the_jobs(perf_blog):
    assert perf_blog.worker is not None, "make bench would run without blog-worker"
    token = httpx.post(perf_blog.blog.url + "/api/v1/tokens", auth=("demo", "demo-password")).json()["token"]
    queued = httpx.post(perf_blog.blog.url + "/api/v1/generate", headers={"Authorization": f"Bearer {token}"},
                        json={"title": "A job for the stack's worker", "mode": "background"})
    assert queued.status_code == 202, queued.text
    job_url = perf_blog.blog.url + queued.headers["Location"]

    def finished() -> dict | None:
        body = httpx.get(job_url, headers={"Authorization": f"Bearer {token}"}).json()
        return body if body["status"] in ("done", "failed") else None

    job = wait_until(finished, 30, "the background job to finish")
    assert job["status"] == "done" and job["result"]["content"], job
