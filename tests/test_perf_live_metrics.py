"""Live figures of a Locust run (issue #20): ``blog-perf locust --metrics-port``
serves loadtests/live_metrics.py's families from the master while the run goes
on. Scraped during real runs (Locust in child processes, as blog-perf runs it)
by plain HTTP and by a real Prometheus; the cap on request names; bad ports."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from collections import defaultdict

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack import free_port, wait_until
from loadtests import live_metrics as live
from perfcontract.runner import MASTER_PORT, METRICS_PORT
from tests.support.monitoring import PrometheusServer
from tests.support.perf import BLOG_PERF, REPO, explain, load_results, run_perf

pytestmark = pytest.mark.slow

RUN_NAME = "live-test"
EVERY_TASK = ["--weights", "home=2,post=2,login=1,write=1,ai=1"]
# A scenario that names 61 requests: one with a 500-character name and a
# 300-character method first, then /page-00 ... /page-59. Its events go
# through Locust's request pipeline without sending anything.
MANY_NAMES = '''
from locust import User, constant, task

class Namer(User):
    wait_time = constant(0.2)

    @task
    def name_many(self):
        fire = self.environment.events.request.fire
        fire(request_type="M" * 300, name="/" + "y" * 500, response_time=1, response_length=0, exception=None,
             context={})
        for number in range(60):
            fire(request_type="GET", name=f"/page-{number:02d}", response_time=number * 40, response_length=0,
                 exception=None, context={})
'''


def samples(url: str) -> list:
    return [sample for family in text_string_to_metric_families(httpx.get(url, timeout=5).text)
            for sample in family.samples]


def value(found: list, family: str, **labels) -> float | None:
    """The sum of ``family``'s samples with ``labels`` (None: there is none)."""
    matching = [s.value for s in found if s.name == family and all(s.labels.get(k) == v for k, v in labels.items())]
    return sum(matching) if matching else None


def present(found: list, family: str) -> bool:
    return any(s.name == family or s.name.startswith(family + "_") for s in found)


def start_blog_perf(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([str(BLOG_PERF), *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **env})


def finish(process: subprocess.Popen, timeout: float = 90) -> subprocess.CompletedProcess:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_a_run_with_workers_serves_every_figure_while_it_goes_on(perf_blog, tmp_path):
    """Also: PROMETHEUS_MULTIPROC_DIR pointing nowhere (as runner pods inherit it) changes nothing."""
    port = free_port()
    url = f"http://127.0.0.1:{port}{live.METRICS_PATH}"
    with PrometheusServer([f"127.0.0.1:{port}"], scrape_interval="1s") as prometheus:
        process = start_blog_perf(
            "locust", "--target", perf_blog.blog.url, "--out", str(tmp_path), "--users", "4", "--spawn-rate", "4",
            "--duration", "14", "--wait-min", "0.05", "--wait-max", "0.2", "--processes", "2", *EVERY_TASK,
            "--metrics-port", str(port), "--run-name", RUN_NAME, "--quiet",
            env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "no-such-dir")})
        try:
            # Every user spawned on the two forked workers, the load started, requests reported.
            first = wait_until(lambda: (found := samples(url)) and value(found, live.USERS) == 4
                               and value(found, live.WORKERS) == 2 and value(found, live.REQUESTS) and found,
                               30, "4 users on 2 workers and requests on the live endpoint")
            # Workers report every 3 s: the counter moves between two scrapes.
            second = wait_until(lambda: (found := samples(url)) and value(found, live.REQUESTS)
                                > value(first, live.REQUESTS) and found, 15, "the requests counter to grow")
            for family in live.NAMES:
                assert present(second, family), family
            assert value(second, live.TARGET_USERS) == 4
            assert value(second, live.STATE, state="running") == 1
            assert value(second, live.STATE) == 1  # one state at a time
            assert time.time() - 60 < value(second, live.START_TIME) < time.time()
            assert value(second, live.OTHER_NAMES) == 0
            # Every series carries the run's name; none a label the PodMonitor sets on its targets.
            assert {s.labels.get("run") for s in second} == {RUN_NAME}
            assert not {"namespace", "pod", "endpoint", "instance", "job"} & {k for s in second for k in s.labels}
            # Requests named by route template, with a full histogram each.
            home = {"method": "GET", "name": "/"}
            assert value(second, live.REQUESTS, **home) > 0
            assert value(second, live.FAILURES, **home) == 0
            buckets = [s for s in second if s.name == live.RESPONSE_TIME + "_bucket"
                       and s.labels["name"] == "/" and s.labels["method"] == "GET"]
            assert [float(s.labels["le"]) for s in buckets] == [*live.BUCKETS_S, float("inf")]
            counts = [s.value for s in buckets]
            assert counts == sorted(counts) and counts[-1] == value(second, live.RESPONSE_TIME + "_count", **home)
            assert value(second, live.RESPONSE_TIME + "_sum", **home) > 0

            # A real Prometheus scraping the same endpoint: a query per family returns data.
            prometheus.wait_for_scrape_after(time.time())
            selector = f'{{run="{RUN_NAME}"}}'

            def seen(family: str, **labels) -> str:  # over the last minute: the run may be ending by now
                chosen = ",".join(f'{k}="{v}"' for k, v in {"run": RUN_NAME, **labels}.items())
                return f"max_over_time({family}{{{chosen}}}[1m])"
            queries = {
                live.USERS: f"{seen(live.USERS)} == 4",
                live.TARGET_USERS: f"{seen(live.TARGET_USERS)} == 4",
                live.WORKERS: f"{seen(live.WORKERS)} == 2",
                live.STATE: f"{seen(live.STATE, state='running')} == 1",
                live.START_TIME: f"time() - {seen(live.START_TIME)} < 120",
                live.REQUESTS: f"sum(increase({live.REQUESTS}{selector}[30s])) > 0",
                live.FAILURES: f"sum({seen(live.FAILURES)}) >= 0",
                live.RESPONSE_TIME: f"histogram_quantile(0.95, sum by (le) "
                                    f"(rate({live.RESPONSE_TIME}_bucket{selector}[30s]))) > 0",
                live.OTHER_NAMES: f"{seen(live.OTHER_NAMES)} == 0",
            }
            assert set(queries) == set(live.NAMES)
            for family, query in queries.items():
                wait_until(lambda: prometheus.query(query), 10, f"Prometheus: {query}")
        finally:
            done = finish(process)
    assert done.returncode == 0, explain(done)
    run = load_results(tmp_path)["runs"]["locust"]
    assert run["parameters"]["live_metrics"] == url
    assert not run.get("notes")
    assert not (tmp_path / "no-such-dir").exists()


def test_request_names_past_the_cap_share_one_series(refusing_url, tmp_path):
    """A scenario naming 61 requests: the first 50 (method, name) pairs keep their own
    series, cut to MAX_LABEL_LENGTH; the other 11 share OTHER. Single process: no workers.
    Also: a PROMETHEUS_MULTIPROC_DIR that exists stays empty."""
    scenario = tmp_path / "many_names.py"
    scenario.write_text(MANY_NAMES, encoding="utf-8")
    multiproc = tmp_path / "multiproc"
    multiproc.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}{live.METRICS_PATH}"
    process = start_blog_perf("locust", "--target", refusing_url, "--out", str(tmp_path / "out"), "--users", "1",
                              "--spawn-rate", "1", "--duration", "4", "--locustfile", str(scenario),
                              "--metrics-port", str(port), "--quiet", env={"PROMETHEUS_MULTIPROC_DIR": str(multiproc)})
    try:
        found = wait_until(lambda: (found := samples(url)) and value(found, live.OTHER_NAMES) == 11 and found,
                           20, "61 request names seen")
    finally:
        done = finish(process)
    assert done.returncode == 0, explain(done)
    requests = {(s.labels["method"], s.labels["name"]): s.value for s in found if s.name == live.REQUESTS}
    assert len(requests) == live.MAX_ENDPOINTS + 1
    assert ("M" * live.MAX_LABEL_LENGTH, "/" + "y" * (live.MAX_LABEL_LENGTH - 1)) in requests
    assert {("GET", f"/page-{n:02d}") for n in range(49)} <= set(requests)
    # One scrape reads one snapshot: the 11 names past the cap, as many requests each as /page-00.
    assert requests[(live.OTHER, live.OTHER)] == 11 * requests[("GET", "/page-00")] > 0
    per_name = defaultdict(set)
    for s in found:
        per_name[s.name].update(s.labels)
    assert per_name[live.REQUESTS] == {"method", "name"}  # no run label without --run-name
    assert all(len(v) <= live.MAX_LABEL_LENGTH for s in found for v in s.labels.values())
    assert value(found, live.WORKERS) == 0
    assert list(multiproc.iterdir()) == []


@pytest.mark.parametrize("options, line", [
    (["--metrics-port", "70000"], "argument --metrics-port: '70000' is not a port number (1-65535)"),
    (["--metrics-port", "0"], "argument --metrics-port: '0' is not a port number (1-65535)"),
    (["--run-name", "mine"], "--metrics-host and --run-name go with --metrics-port PORT"),
    (["--metrics-port", "9103", "--run-name", "my/run"], "argument --run-name: 'my/run': up to 63 letters"),
    (["--metrics-port", str(MASTER_PORT), "--master", "--expect-workers", "1"],
     f"--metrics-port {MASTER_PORT} is the master's port for its workers; choose another"),
    (["--metrics-port", str(METRICS_PORT), "--worker", "--master-host", "m"],
     "--metrics-port goes to the master (or a local run): workers' figures reach it"),
])
def test_bad_metrics_options_are_refused_in_one_line(options, line):
    done = run_perf("locust", "--target", "http://127.0.0.1:9", *options, timeout=60)
    assert done.returncode == 2, explain(done)
    assert line in done.stderr.strip().splitlines()[-1], done.stderr


@pytest.mark.parametrize("command", ["locust", "all"])
def test_a_port_in_use_is_refused_before_anything_runs(command):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        began = time.monotonic()
        done = run_perf(command, "--target", "http://127.0.0.1:9", "--metrics-port", str(port), timeout=60)
    assert done.returncode == 2, explain(done)
    assert done.stderr.strip() == (f"blog-perf {command}: --metrics-port {port}: cannot listen on 127.0.0.1:{port} "
                                   "(Address already in use)")
    assert time.monotonic() - began < 20


def test_histogram_buckets_and_the_cap_as_pure_functions():
    # Locust's rounded milliseconds: 0 and 1 ms in the first bucket, 250 ms on the 0.25 s bound, 99 s past 60 s.
    assert live.cumulative_buckets({0: 1, 1: 2, 3: 1, 250: 1, 99000: 2}) == [3, 3, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5,
                                                                            5, 5, 7]
    labels = live.EndpointLabels(limit=2)
    assert labels("GET", "/a") == ("GET", "/a")
    assert labels("POST", "/" + "b" * 200) == ("POST", "/" + "b" * (live.MAX_LABEL_LENGTH - 1))
    assert labels("GET", "/c") == (live.OTHER, live.OTHER)
    assert labels("GET", "/a") == ("GET", "/a")  # a pair keeps its series for good
    assert labels("GET", "/c") == (live.OTHER, live.OTHER) and labels.others == 1



@pytest.mark.parametrize("command", ["locust", "all"])
def test_the_live_metrics_options_reach_the_locust_part(command):
    from loadtests.blog_perf_args import build_parser, live_metrics_of

    args = build_parser().parse_args([command, "--target", "http://127.0.0.1:9", "--metrics-port", "9200",
                                      "--run-name", "mine"])
    assert live_metrics_of(args) == live.LiveMetrics(9200, "127.0.0.1", "mine")
    assert live_metrics_of(args).env() == {live.PORT_ENV: "9200", live.HOST_ENV: "127.0.0.1", live.RUN_ENV: "mine"}
    assert live_metrics_of(build_parser().parse_args([command, "--target", "http://127.0.0.1:9"])) is None
