"""The blog's rate limits and the performance suite: the stacks built to be
load-tested raise them (one source: loadtests.limits.LOAD_TEST_LIMITS), and
against a blog whose limits refuse its sign-ups or logins blog-perf stops with
one line naming the limit, its Retry-After and what to do, not a flood of
failures. Real processes: a gunicorn blog (devstack) with tiny limits,
blog-perf and Locust in child processes."""
from __future__ import annotations

import importlib.util
import time

import httpx
import pytest

from loadtests.limits import LOAD_TEST_LIMITS
from tests.support.perf import QUICK_CACHE, QUICK_CONCURRENCY, REPO, explain, load_results, run_perf, start_stack

pytestmark = pytest.mark.slow

SIGN_UPS_ALLOWED = 2
LIMITED = {"REGISTER_RATE_LIMIT": f"{SIGN_UPS_ALLOWED} per hour", "LOGIN_RATE_LIMIT": "1 per hour"}
# Long enough that a run which did not stop would be obvious; the refusal comes in its first seconds.
LONG_LOCUST = ["--duration", "40", "--wait-min", "0.1", "--wait-max", "0.3"]
STOPPED_WITHIN_S = 30


@pytest.fixture(scope="module")
def limited_stack():
    """The real blog with the production-like limits a load test must not get past: 2 sign-ups an hour
    per address, 1 failed login an hour per username."""
    stack = start_stack(posts=20, **LIMITED)
    yield stack
    stack.cleanup()


@pytest.fixture
def limited_blog(limited_stack):
    limited_stack.redis.flush()  # the limits' windows start afresh for each test
    return limited_stack


def refusal_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "the blog's rate limits refused" in line]


def assert_one_refusal_line(done, settings: str) -> str:
    lines = refusal_lines(done.stderr)
    assert len(lines) == 1, explain(done)
    line = lines[0]
    assert settings in line and "Retry-After " in line and "--accounts FILE" in line, line
    assert "Traceback" not in done.stderr, explain(done)
    return line


def test_the_stacks_built_for_load_tests_raise_the_limits(limited_stack):
    settings = limited_stack.settings()
    assert {k: settings[k] for k in LIMITED} == LIMITED  # a test's own settings win
    for name, value in LOAD_TEST_LIMITS.items():
        if name not in LIMITED:
            assert settings[name] == value


def test_make_run_sets_development_limits_unless_the_environment_or_production_says_otherwise():
    spec = importlib.util.spec_from_file_location("devserver", REPO / "scripts" / "devserver.py")
    devserver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(devserver)
    env = {"LOGIN_RATE_LIMIT": "3 per minute"}
    raised = devserver.development_limits(env)
    assert "LOGIN_RATE_LIMIT" not in raised and env["LOGIN_RATE_LIMIT"] == "3 per minute"
    assert env["REGISTER_RATE_LIMIT"] == LOAD_TEST_LIMITS["REGISTER_RATE_LIMIT"]
    assert set(raised) == set(LOAD_TEST_LIMITS) - {"LOGIN_RATE_LIMIT"}
    production = {"BLOG_ENV": "production"}
    assert devserver.development_limits(production) == [] and production == {"BLOG_ENV": "production"}


@pytest.mark.parametrize("processes", [1, 2], ids=["one-process", "master-and-workers"])
def test_locust_users_refused_sign_ups_stop_the_run_with_one_line(limited_blog, tmp_path, processes):
    began = time.monotonic()
    done = run_perf("locust", "--target", limited_blog.blog.url, "--out", str(tmp_path), "--users", "8",
                    "--spawn-rate", "4", "--processes", str(processes), *LONG_LOCUST, timeout=120)
    took = time.monotonic() - began
    assert done.returncode == 3, explain(done)
    line = assert_one_refusal_line(done, "REGISTER_RATE_LIMIT")
    assert took < STOPPED_WITHIN_S, f"the run went on after the refusal ({took:.0f} s)\n{explain(done)}"
    run = load_results(tmp_path)["runs"]["locust"]
    assert run["error"] in line
    summary = run["summary"]
    assert summary["refused"] == run["error"]
    # Not a flood: a few sign-ups in flight when the first 429 came, then none.
    register = next(e for e in summary["entries"] if (e["method"], e["name"]) == ("POST", "/register"))
    assert register["failures"] <= 8 - SIGN_UPS_ALLOWED, register
    assert summary["failures"] <= 8, summary["errors"]
    assert any("429: refused by REGISTER_RATE_LIMIT" in e["error"] for e in summary["errors"]), summary["errors"]
    # The scenario said it once (the master once for all its workers).
    log = (tmp_path / "locust" / "locust.log").read_text(encoding="utf-8")
    assert len(refusal_lines(log)) == 1, log[-3000:]
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "REGISTER_RATE_LIMIT" in report


def test_accounts_created_before_the_run_stop_at_the_first_refused_sign_up(limited_blog, tmp_path):
    done = run_perf("locust", "--target", limited_blog.blog.url, "--out", str(tmp_path), "--users", "4",
                    "--accounts", "6", *LONG_LOCUST, timeout=60)
    assert done.returncode == 3, explain(done)
    line = assert_one_refusal_line(done, "REGISTER_RATE_LIMIT")
    run = load_results(tmp_path)["runs"]["locust"]
    assert run["error"] == line.split(": ", 1)[1]
    assert "summary" not in run  # Locust never started: no run against a blog that refuses its accounts


def test_blog_perf_all_stops_at_the_refused_sign_up_instead_of_failing_every_test(limited_blog, tmp_path):
    done = run_perf("all", "--target", limited_blog.blog.url, "--out", str(tmp_path), *QUICK_CACHE,
                    *QUICK_CONCURRENCY, "--users", "4", *LONG_LOCUST, timeout=120,
                    env={"BLOG_PERF_USER": "", "BLOG_PERF_PASSWORD": ""})
    # Two sign-ups are allowed: the cache and concurrency testers take them, the Locust users are refused.
    assert done.returncode == 3, explain(done)
    assert_one_refusal_line(done, "REGISTER_RATE_LIMIT")
    runs = load_results(tmp_path)["runs"]
    assert runs["cache"]["summary"]["failures"] == 0
    assert "refused" in runs["locust"]["error"]


def test_a_refused_login_stops_the_run_naming_the_login_limits(limited_blog, tmp_path):
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("demo:not-the-password\n", encoding="utf-8")
    done = run_perf("locust", "--target", limited_blog.blog.url, "--out", str(tmp_path / "out"), "--users", "4",
                    "--spawn-rate", "4", "--accounts", str(accounts), *LONG_LOCUST, timeout=120)
    assert done.returncode == 3, explain(done)
    line = assert_one_refusal_line(done, "LOGIN_RATE_LIMIT / LOGIN_ADDRESS_RATE_LIMIT")
    assert "REGISTER_RATE_LIMIT" not in line
    summary = load_results(tmp_path / "out")["runs"]["locust"]["summary"]
    login = next(e for e in summary["entries"] if (e["method"], e["name"]) == ("POST", "/login"))
    assert login["failures"] <= 4, login


def test_the_cache_tester_names_the_login_limits_when_its_account_is_refused(limited_blog, tmp_path):
    wrong = httpx.post(limited_blog.blog.url + "/api/v1/tokens", auth=("demo", "wrong"))
    assert wrong.status_code == 401  # the one failed login this hour allows
    done = run_perf("cache", "--target", limited_blog.blog.url, "--out", str(tmp_path), "--user", "demo",
                    "--password", "wrong", "--titles", "1", "--repeats", "1", timeout=60)
    assert done.returncode == 3, explain(done)
    assert_one_refusal_line(done, "LOGIN_RATE_LIMIT")


def test_accounts_prepared_within_the_limit_carry_a_load_test_of_a_protected_blog(limited_blog, tmp_path):
    accounts = tmp_path / "accounts.txt"
    made = run_perf("accounts", "--target", limited_blog.blog.url, "--count", str(SIGN_UPS_ALLOWED),
                    "--out", str(accounts), timeout=60)
    assert made.returncode == 0, explain(made)
    assert len(accounts.read_text(encoding="utf-8").splitlines()) == SIGN_UPS_ALLOWED
    assert accounts.stat().st_mode & 0o777 == 0o600
    # One user per account: the per-username login limit (1 an hour here) counts a login while its
    # password is checked, so two logins of one account at the same instant could meet it.
    done = run_perf("locust", "--target", limited_blog.blog.url, "--out", str(tmp_path / "out"),
                    "--users", str(SIGN_UPS_ALLOWED), "--spawn-rate", "1", "--duration", "6", "--wait-min", "0.1",
                    "--wait-max", "0.4", "--accounts", str(accounts), timeout=90)
    assert done.returncode == 0, explain(done)
    summary = load_results(tmp_path / "out")["runs"]["locust"]["summary"]
    assert summary["failures"] == 0 and summary["refused"] is None, summary["errors"]
    assert summary["requests"] > 20
    # The hour's sign-ups are used up: asking for more says so in one line and writes nothing.
    more = tmp_path / "more.txt"
    refused = run_perf("accounts", "--target", limited_blog.blog.url, "--count", "1", "--out", str(more), timeout=60)
    assert refused.returncode == 3, explain(refused)
    assert_one_refusal_line(refused, "REGISTER_RATE_LIMIT")
    assert not more.exists()
