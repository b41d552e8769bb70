"""How much can it take? ``blog-perf locust --steps`` against a blog with a
known ceiling: one sync gunicorn worker that spends 20 ms on every request
serves at most 50 requests/s, so as the users pass about 7 (each asks about 7
times a second), requests queue and latency climbs: the run must find that
capacity and that knee, and draw them."""
from __future__ import annotations

import pytest

from devstack import Gunicorn
from tests.support.perf import explain, load_results, refused_before_the_run, run_perf
from tests.support.slowed_blog import DELAY_ENV

pytestmark = pytest.mark.slow

STEPS = "2:12:2:4"  # 6 steps of 4 s
SLO_P95_MS = 100
READERS = ["--wait-min", "0.05", "--wait-max", "0.2", "--weights", "home=10,post=5,login=0,write=0,ai=0",
           "--quiet", "--slo-p95-ms", str(SLO_P95_MS)]


@pytest.fixture(scope="module")
def narrow_blog(perf_blog):
    env = {**perf_blog.env, DELAY_ENV: "0.02", "GUNICORN_WORKER_CLASS": "sync", "WEB_CONCURRENCY": "1"}
    blog = Gunicorn(perf_blog.workdir, env, app="tests.support.slowed_blog:create_app()", name="narrow-blog").start()
    yield blog
    blog.stop()


@pytest.fixture(scope="module")
def stepped(narrow_blog, tmp_path_factory):
    out = tmp_path_factory.mktemp("stepped")
    done = run_perf("locust", "--target", narrow_blog.url, "--out", str(out), "--steps", STEPS,
                    "--min-capacity-users", "12", *READERS, timeout=180)
    return done, out


def test_a_stepped_run_records_each_step_and_finds_the_capacity_and_the_knee(stepped):
    done, out = stepped
    locust = load_results(out)["runs"]["locust"]
    analysis = locust["capacity"]
    steps = analysis["steps"]
    assert [s["users"] for s in steps] == [2, 4, 6, 8, 10, 12], explain(done)
    assert all(3.5 <= s["seconds"] <= 5 and s["requests"] > 0 for s in steps), steps
    # The ceiling holds: the top step's rate is at most the worker's 50/s, far below its users' demand.
    assert steps[-1]["rps"] < 55 and steps[-1]["p95_ms"] > SLO_P95_MS, steps
    assert steps[0]["p95_ms"] <= SLO_P95_MS, steps
    assert 2 <= analysis["capacity_users"] < 12 and analysis["capacity_p95_ms"] <= SLO_P95_MS
    assert analysis["knee_users"] is not None and analysis["knee_users"] < 12, steps
    assert locust["summary"]["steps"] == steps  # the summary line carries them (the operator reads it)


def test_a_capacity_below_its_threshold_fails_the_run_and_the_report_draws_the_curve(stepped):
    done, out = stepped
    assert done.returncode == 1, explain(done)
    assert "threshold missed: capacity (users within the SLO)" in done.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<h3>Capacity</h3>" in html and 'id="capacity-latency"' in html and "SLO p95" in html
    assert "latency rose faster than load from" in html


@pytest.mark.parametrize("options, problem", [
    (["--steps", "10:5:1:3"], "a profile goes from 1 or more users"),
    (["--steps", "1:500:1:1"], "at most 100 steps"),
    (["--steps", "ten"], "is not START:END:STEP:SECONDS"),
    (["--min-capacity-users", "5"], "--min-capacity-users needs --steps"),
])
def test_a_profile_that_cannot_run_is_a_usage_error(perf_blog, options, problem, tmp_path):
    assert problem in refused_before_the_run(perf_blog.blog.url, tmp_path, *options)


def test_a_stepped_run_with_workers_records_each_step_after_their_reports(narrow_blog, tmp_path):
    """--processes 2: a master and a worker, so each step's figures arrive with the worker's reports."""
    done = run_perf("locust", "--target", narrow_blog.url, "--out", str(tmp_path), "--steps", "2:4:2:4",
                    "--processes", "2", *READERS, timeout=120)
    assert done.returncode == 0, explain(done)
    steps = load_results(tmp_path)["runs"]["locust"]["capacity"]["steps"]
    assert [s["users"] for s in steps] == [2, 4] and all(s["requests"] > 0 for s in steps), steps
    assert steps[0]["seconds"] >= 7 and 3.5 <= steps[1]["seconds"] <= 5, steps  # the first waits for the reports
