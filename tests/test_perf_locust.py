"""The Locust scenario against a real blog (run in child processes: Locust's
gevent monkey-patching must never reach the test process): realistic users (CSRF, accounts,
existing posts, route templates), the task mix's weights, stats over time, and
429 backpressure counted apart from failures."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from loadtests import locust_run
from loadtests.blog_api import AI_REQUEST_NAME as AI_NAME
from loadtests.blog_api import BACKPRESSURE_REQUEST_NAME as BACKPRESSURE_NAME
from tests.support.perf import QUICK_LOCUST, REPO, explain, load_results, run_perf, start_stack

pytestmark = pytest.mark.slow

ROUTE_TEMPLATES = {"/", "/?page=[n]", "/post/[id]", "/register", "/login", "/logout", "/create",
                   "/api/v1/tokens", AI_NAME, BACKPRESSURE_NAME}


# Every task likely enough that a few seconds of four users run each of them.
EVERY_TASK = ["--weights", "home=2,post=2,login=1,write=1,ai=1"]


def entries_by_name(summary: dict) -> dict:
    return {(e["method"], e["name"]): e for e in summary["entries"]}


def requests_of(summary: dict, method: str, name: str) -> int:
    entry = entries_by_name(summary).get((method, name))
    return entry["requests"] if entry else 0


def test_locust_run_uses_the_task_mix_and_records_stats_over_time(perf_blog, tmp_path):
    done = run_perf("locust", "--target", perf_blog.blog.url, "--out", str(tmp_path), *QUICK_LOCUST, *EVERY_TASK)
    assert done.returncode == 0, explain(done)
    run = load_results(tmp_path)["runs"]["locust"]
    summary = run["summary"]
    names = {e["name"] for e in summary["entries"]}
    # Requests are named by route template: no raw ids or page numbers.
    assert names <= ROUTE_TEMPLATES, names - ROUTE_TEMPLATES
    assert {"/", "/post/[id]", "/register", "/create", AI_NAME} <= names
    # Without an account pool each user registered its own account once, as it started
    # (with a CSRF token; the blog answered each form with a redirect), then wrote posts.
    assert requests_of(summary, "POST", "/register") == 4
    assert requests_of(summary, "POST", "/create") >= 1
    assert run["parameters"]["accounts"] == {"source": "each user registers its own", "count": None}
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
    done = run_perf("locust", "--target", perf_blog.blog.url, "--out", str(tmp_path), "--users", "4",
                    "--spawn-rate", "4", "--duration", "4", "--wait-min", "0.01", "--wait-max", "0.03",
                    "--weights", "home=9,post=1,login=0,write=0,ai=0")
    assert done.returncode == 0, explain(done)
    run = load_results(tmp_path)["runs"]["locust"]
    assert run["parameters"]["task_weights"] == {"home": 9, "post": 1, "login": 0, "write": 0, "ai": 0}
    summary = run["summary"]
    # Readers only: no account is registered or logged in to.
    assert {e["name"] for e in summary["entries"]} <= {"/", "/?page=[n]", "/post/[id]"}
    # The weights hold (equal weights would give as many post reads as home page views).
    home = requests_of(summary, "GET", "/") + requests_of(summary, "GET", "/?page=[n]")
    posts = requests_of(summary, "GET", "/post/[id]")
    assert posts >= 1 and home >= 4 * posts, (home, posts)
    assert requests_of(summary, "GET", "/?page=[n]") >= 1  # 60 posts: later home pages exist and are read


@pytest.fixture(scope="module")
def demo_blog():
    """A blog holding only the demo posts of ``aiblog seed`` (one home page), as a fresh ``make run`` does."""
    stack = start_stack(posts=0)
    yield stack
    stack.cleanup()


def test_the_default_mix_asks_only_for_pages_that_exist_on_a_blog_with_the_demo_posts(demo_blog, tmp_path):
    done = run_perf("locust", "--target", demo_blog.blog.url, "--out", str(tmp_path), "--users", "4",
                    "--spawn-rate", "4", "--duration", "6", "--wait-min", "0.01", "--wait-max", "0.05")
    summary = load_results(tmp_path)["runs"]["locust"]["summary"]
    assert summary["failures"] == 0, summary["errors"]
    assert done.returncode == 0, explain(done)
    # Enough home page views that one in five asking for a later page would have shown.
    assert requests_of(summary, "GET", "/") >= 40
    assert requests_of(summary, "GET", "/?page=[n]") == 0  # there is only one home page


def test_users_share_accounts_created_before_the_run(perf_blog, tmp_path):
    scratch_before = set(Path(tempfile.gettempdir()).glob("blog-perf-accounts-*"))
    done = run_perf("locust", "--target", perf_blog.blog.url, "--out", str(tmp_path), *QUICK_LOCUST, *EVERY_TASK,
                    "--users", "6", "--spawn-rate", "6", "--accounts", "2")
    assert done.returncode == 0, explain(done)
    run = load_results(tmp_path)["runs"]["locust"]
    assert run["parameters"]["accounts"] == {"source": "created before the run", "count": 2}
    summary = run["summary"]
    assert summary["failures"] == 0, summary["errors"]
    # Nobody registers during the run; each of the 6 users logs in as it starts (a real POST /login),
    # and each account's API token is asked for once, not once per user.
    assert requests_of(summary, "POST", "/register") == 0
    assert requests_of(summary, "POST", "/login") >= 6
    assert requests_of(summary, "POST", "/create") >= 1
    assert 1 <= requests_of(summary, "POST", "/api/v1/tokens") <= 2
    # The file with the accounts' passwords is gone.
    assert set(Path(tempfile.gettempdir()).glob("blog-perf-accounts-*")) == scratch_before


def test_plain_locust_takes_accounts_from_a_file(perf_blog, tmp_path):
    accounts = locust_run.create_accounts(perf_blog.blog.url, 2, tmp_path / "accounts.txt")
    done = subprocess.run([sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless", "-u", "3",
                           "-r", "3", "-t", "4s", "--host", perf_blog.blog.url, "--only-summary"],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "BLOG_PERF_WAIT_MIN": "0.1", "BLOG_PERF_WAIT_MAX": "0.3",
                               "BLOG_PERF_ACCOUNTS": str(accounts)})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "POST     /login" in output and "/register" not in output


def test_plain_locust_refuses_a_bad_accounts_file(perf_blog, tmp_path):
    bad = tmp_path / "accounts.txt"
    bad.write_text("just-a-name\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "locust", "-f", "loadtests/locustfile.py", "--headless", "-u", "1",
                           "-t", "2s", "--host", perf_blog.blog.url], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "BLOG_PERF_ACCOUNTS": str(bad)})
    assert done.returncode != 0
    assert f"BLOG_PERF_ACCOUNTS: {bad}:1: expected 'username:password'" in done.stdout + done.stderr


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
