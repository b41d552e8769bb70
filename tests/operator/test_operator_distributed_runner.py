"""``blog-perf locust --master/--worker`` for real: a master and two workers as
separate processes (as they will be separate pods) against the real blog, and
the summary line the operator reads agreeing with results.json."""
from __future__ import annotations

import os
import subprocess

import pytest

from perfcontract import run_summary
from devstack import free_port
from tests.support.perf import BLOG_PERF, REPO, explain, load_results

pytestmark = pytest.mark.slow

QUICK = ["--users", "6", "--spawn-rate", "6", "--duration", "6", "--wait-min", "0.1", "--wait-max", "0.4",
         "--weights", "home=10,post=5,login=0,write=0,ai=0", "--quiet"]


def _worker(target: str, port: int) -> subprocess.Popen:
    return subprocess.Popen([str(BLOG_PERF), "locust", "--target", target, "--worker", "--master-host", "127.0.0.1",
                             "--master-port", str(port), *QUICK], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_a_master_and_two_worker_processes_run_one_scenario_and_log_its_summary(perf_blog, tmp_path):
    port = free_port()
    target = perf_blog.blog.url
    workers = [_worker(target, port) for _ in range(2)]
    try:
        done = subprocess.run([str(BLOG_PERF), "locust", "--target", target, "--out", str(tmp_path), "--master",
                               "--expect-workers", "2", "--expect-workers-max-wait", "60", "--master-port", str(port),
                               "--log-summary", "--max-p99-ms", "60000", *QUICK],
                              cwd=REPO, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, explain(done)
        worker_codes = [worker.wait(60) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(10)
    assert worker_codes == [0, 0], [worker.stdout.read()[-2000:] for worker in workers]
    logged = run_summary.parse_summary(done.stdout)
    written = load_results(tmp_path)["runs"]["locust"]
    assert logged["summary"]["requests"] == written["summary"]["requests"] > 20
    assert logged["summary"]["non_ai"] == written["summary"]["non_ai"]
    assert logged["parameters"]["workers"] == 2 and logged["error"] is None
    assert [c["check"] for c in logged["thresholds"]] == ["locust non-AI p99 (ms)"] and logged["thresholds"][0]["passed"]
    assert run_summary.parse_report(done.stdout) == (tmp_path / "report.html").read_bytes()


@pytest.mark.parametrize("worker_token", ["the-runs-token", "a-forged-token"])
def test_the_masters_accounts_reach_only_workers_with_the_runs_token(perf_blog, tmp_path, worker_token):
    """Locust's port has no authentication: a peer without the run's token gets no accounts."""
    port = free_port()
    target = perf_blog.blog.url
    writers = ["--weights", "home=5,post=0,login=3,write=2,ai=0"]
    env = {**os.environ, "BLOG_PERF_RUN_TOKEN": worker_token}
    workers = [subprocess.Popen([str(BLOG_PERF), "locust", "--target", target, "--worker", "--master-host",
                                 "127.0.0.1", "--master-port", str(port), *QUICK, *writers], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    try:
        done = subprocess.run([str(BLOG_PERF), "locust", "--target", target, "--out", str(tmp_path), "--master",
                               "--expect-workers", "2", "--master-port", str(port), "--accounts", "3",
                               "--log-summary", *QUICK, *writers], cwd=REPO, capture_output=True, text=True,
                              timeout=180, env={**os.environ, "BLOG_PERF_RUN_TOKEN": "the-runs-token"})
        assert done.returncode == 0, explain(done)
    finally:
        for worker in workers:
            worker.wait(60)
    entries = {e["name"]: e for e in run_summary.parse_summary(done.stdout)["summary"]["entries"]}
    if worker_token == "the-runs-token":
        assert "/register" not in entries  # no user registered its own: they all had the master's accounts
        assert entries["/login"]["requests"] >= 6 and entries["/login"]["failures"] == 0  # each user logged in
        assert entries["/create"]["failures"] == 0
    else:
        assert entries["/register"]["requests"] >= 1   # the forged workers' users had to sign up themselves


def test_a_master_whose_workers_never_come_fails_with_a_summary_that_says_so(perf_blog, tmp_path):
    done = subprocess.run([str(BLOG_PERF), "locust", "--target", perf_blog.blog.url, "--out", str(tmp_path),
                           "--master", "--expect-workers", "2", "--expect-workers-max-wait", "2",
                           "--master-port", str(free_port()), "--log-summary", *QUICK],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, explain(done)
    logged = run_summary.parse_summary(done.stdout)
    assert logged["error"] == "workers never connected: fewer than 2 within 2 s"
    assert "workers never connected" in done.stderr


CUSTOM_SCENARIO = '''
from locust import HttpUser, constant, task


class HealthProbe(HttpUser):
    wait_time = constant(0.1)

    @task
    def healthz(self):
        self.client.get("/healthz")
'''


def test_a_scenario_of_ones_own_runs_on_master_and_worker_with_blog_perfs_recording(perf_blog, tmp_path):
    scenario = tmp_path / "probe.py"
    scenario.write_text(CUSTOM_SCENARIO)
    port = free_port()
    worker = subprocess.Popen([str(BLOG_PERF), "locust", "--target", perf_blog.blog.url, "--worker", "--master-host",
                               "127.0.0.1", "--master-port", str(port), "--locustfile", str(scenario), *QUICK],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        done = subprocess.run([str(BLOG_PERF), "locust", "--target", perf_blog.blog.url, "--out", str(tmp_path / "out"),
                               "--master", "--expect-workers", "1", "--master-port", str(port), "--locustfile",
                               str(scenario), "--log-summary", *QUICK], cwd=REPO, capture_output=True, text=True,
                              timeout=180)
        assert done.returncode == 0, explain(done)
    finally:
        worker.wait(60)
    logged = run_summary.parse_summary(done.stdout)
    assert [e["name"] for e in logged["summary"]["entries"]] == ["/healthz"]  # only the file's users ran
    assert logged["summary"]["requests"] > 20 and logged["parameters"]["scenario"] == str(scenario)


def test_a_missing_scenario_file_is_a_usage_error(capsys):
    from loadtests import blog_perf
    assert blog_perf.main(["locust", "--target", "http://127.0.0.1:9", "--locustfile", "/nonexistent.py"]) == blog_perf.EXIT_USAGE
    assert "--locustfile /nonexistent.py: no such file" in capsys.readouterr().err
