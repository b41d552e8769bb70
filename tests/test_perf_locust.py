"""The Locust scenario against a real blog (run in child processes: Locust's
gevent monkey-patching must never reach the test process): realistic users (CSRF, accounts,
existing posts, route templates), stats over time, and 429 backpressure
counted apart from failures."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from loadtests.blog_api import AI_REQUEST_NAME as AI_NAME
from loadtests.blog_api import BACKPRESSURE_REQUEST_NAME as BACKPRESSURE_NAME
from tests.support.perf import QUICK_LOCUST, REPO, explain, load_results, run_perf, start_stack

pytestmark = pytest.mark.slow

ROUTE_TEMPLATES = {"/", "/?page=[n]", "/post/[id]", "/register", "/login", "/logout", "/create",
                   "/api/v1/tokens", AI_NAME, BACKPRESSURE_NAME}


def test_locust_run_uses_the_task_mix_and_records_stats_over_time(perf_blog, tmp_path):
    done = run_perf("locust", "--target", perf_blog.blog.url, "--out", str(tmp_path), *QUICK_LOCUST)
    assert done.returncode == 0, explain(done)
    run = load_results(tmp_path)["runs"]["locust"]
    summary = run["summary"]
    names = {e["name"] for e in summary["entries"]}
    # Requests are named by route template: no raw ids or page numbers.
    assert names <= ROUTE_TEMPLATES, names - ROUTE_TEMPLATES
    assert {"/", "/post/[id]", "/register", "/create", AI_NAME} <= names
    by_name = {(e["method"], e["name"]): e for e in summary["entries"]}
    # Writers registered with a CSRF token and wrote posts (the blog answered each form with a redirect).
    assert by_name[("POST", "/register")]["requests"] >= 1
    assert by_name[("POST", "/create")]["requests"] >= 1
    assert summary["failures"] == 0, summary["errors"]
    assert summary["failure_rate"] == 0.0
    assert summary["requests"] > 50 and summary["rps"] > 0
    assert summary["non_ai"]["p95_ms"] is not None and summary["ai"]["requests"] >= 1
    for entry in summary["entries"]:
        assert sum(entry["response_times"].values()) == entry["requests"]
    history = run["history"]
    assert len(history) >= 2
    assert all(h["rps"] >= 0 and h["users"] >= 1 for h in history[1:])
    assert any(h["p95_ms"] is not None for h in history)
    assert history[-1]["requests"] <= summary["requests"]


def test_plain_locust_runs_the_same_locustfile(perf_blog):
    done = subprocess.run([sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless", "-u", "2",
                           "-r", "2", "-t", "4s", "--host", perf_blog.blog.url, "--only-summary"],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "BLOG_PERF_WAIT_MIN": "0.1", "BLOG_PERF_WAIT_MAX": "0.3"})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "GET      /post/[id]" in output or "/post/[id]" in output
    assert "Aggregated" in output


def test_weights_change_the_task_mix(perf_blog, tmp_path):
    done = run_perf("locust", "--target", perf_blog.blog.url, "--out", str(tmp_path), *QUICK_LOCUST,
                    "--duration", "3", "--weights", "post=0,login=0,write=0,ai=0")
    assert done.returncode == 0, explain(done)
    run = load_results(tmp_path)["runs"]["locust"]
    assert run["parameters"]["task_weights"] == {"home": 10, "post": 0, "login": 0, "write": 0, "ai": 0}
    assert {e["name"] for e in run["summary"]["entries"]} <= {"/", "/?page=[n]"}
    assert run["summary"]["requests"] > 0


@pytest.fixture(scope="module")
def busy_llm_blog():
    """A blog allowing one LLM call per worker, with a slow LLM: generations get 429s."""
    stack = start_stack(LLM_MAX_INFLIGHT="1")
    yield stack
    stack.cleanup()


def test_backpressure_429s_are_counted_apart_not_as_failures(busy_llm_blog, tmp_path):
    done = run_perf("locust", "--target", busy_llm_blog.blog.url, "--out", str(tmp_path), "--users", "8",
                    "--spawn-rate", "8", "--duration", "8", "--wait-min", "0", "--wait-max", "0.1",
                    env={"BLOG_PERF_FRESH_TITLE_SHARE": "1"})  # every title new: every generation needs the LLM
    assert done.returncode == 0, explain(done)
    summary = load_results(tmp_path)["runs"]["locust"]["summary"]
    entries = {e["name"]: e for e in summary["entries"]}
    assert summary["backpressure_429"] >= 1, entries.keys()
    assert entries[BACKPRESSURE_NAME]["failures"] == 0
    assert summary["failures"] == 0, summary["errors"]
    assert summary["failure_rate"] == 0.0
    assert summary["requests"] == sum(e["requests"] for e in summary["entries"])
