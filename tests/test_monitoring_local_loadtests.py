"""The same picture without a cluster (issue #20, part 4): ``make monitor``'s
Prometheus finds a local ``blog-perf locust --metrics-port`` run (and ``make
bench``'s blog) by itself, through the targets they announce on their free
ports, and the "Load tests" dashboard's live panels answer from it."""
from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from devstack import REPO, free_port, wait_until
from devstack.monitor_targets import BLOG_JOB, DIR_ENV, LOAD_TEST_JOB, announced
from tests.support.monitoring import PrometheusServer, load_monitor_script
from tests.support.perf import BLOG_PERF, explain
from tests.test_monitoring_loadtests_dashboard import live_queries, loadtests_dashboard, with_data


def test_an_announcement_is_a_file_sd_target_for_as_long_as_the_block_runs(tmp_path, monkeypatch):
    monkeypatch.setenv(DIR_ENV, str(tmp_path))
    with announced(BLOG_JOB, "127.0.0.1:9999", {"stack": "bench"}) as path:
        assert json.loads(path.read_text()) == [{"targets": ["127.0.0.1:9999"], "labels": {"stack": "bench"}}]
        assert path.parent == tmp_path and path.name.startswith(f"{BLOG_JOB}-")
    assert not path.exists()
    with pytest.raises(ValueError):
        with announced("someone-else", "127.0.0.1:1"):
            pass


def test_make_monitor_reads_the_announcements_of_both_jobs(tmp_path):
    config = load_monitor_script().prometheus_config(["127.0.0.1:9100"], announced_in=tmp_path)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs[BLOG_JOB]["static_configs"] == [{"targets": ["127.0.0.1:9100"]}]
    for job in (BLOG_JOB, LOAD_TEST_JOB):
        assert jobs[job]["file_sd_configs"] == [{"files": [str(tmp_path / f"{job}-*.json")], "refresh_interval": "5s"}]


@pytest.mark.slow
def test_a_local_run_joins_make_monitors_prometheus_and_the_live_panels_answer(perf_blog, tmp_path):
    announcements = tmp_path / "targets"
    metrics_port = free_port()
    live_panels = live_queries(loadtests_dashboard())
    with PrometheusServer([perf_blog.blog.metrics_url.split("/")[2]], announced_in=announcements) as prometheus:
        process = subprocess.Popen(
            [str(BLOG_PERF), "locust", "--target", perf_blog.blog.url, "--out", str(tmp_path / "out"),
             "--users", "4", "--spawn-rate", "4", "--duration", "16", "--wait-min", "0.05", "--wait-max", "0.3",
             "--weights", "home=4,post=4,login=1,write=1,ai=0", "--metrics-port", str(metrics_port),
             "--run-name", "local-1", "--quiet"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, DIR_ENV: str(announcements)})
        try:
            wait_until(lambda: list(announcements.glob(f"{LOAD_TEST_JOB}-*.json")), 20, "the run's announcement")
            wait_until(lambda: prometheus.query(f'up{{job="{LOAD_TEST_JOB}", loadtest="local"}} == 1'), 20,
                       "Prometheus to discover and scrape the run")
            empty = {title for title, _ in live_panels}
            deadline = time.monotonic() + 30
            while empty and time.monotonic() < deadline and process.poll() is None:
                empty -= {title for title, expr in live_panels if title in empty and with_data(prometheus, expr)}
                time.sleep(0.5)
            assert not empty, f"live panels without data during the local run: {sorted(empty)}"
        finally:
            out, err = process.communicate(timeout=90)
    done = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    assert done.returncode == 0, explain(done)
    assert not list(announcements.glob("*.json"))   # gone with the run
