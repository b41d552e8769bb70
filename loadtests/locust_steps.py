"""A stepped run (``blog-perf locust --steps START:END:STEP:SECONDS``): the
load shape, and each step's figures.

``blog-perf`` adds this file to Locust's ``-f`` on the master (or the single
local process) when ``BLOG_PERF_STEPS`` is set. ``StepLoad`` holds each number
of users for its seconds; a sampler takes a snapshot of the cumulative
statistics at each step's end and writes the step's own figures (the
difference) to ``BLOG_PERF_LOCUST_OUT/steps.json``, which locust_output puts
in the summary. perfcontract.capacity reads them (capacity and knee).

A master learns its workers' figures every ``WORKER_REPORT_INTERVAL`` (3 s),
so with workers each snapshot is taken that much after the step's end, and
the last step is held as long, so that a step's figures are its own.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import gevent
from locust import LoadTestShape, events
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner, WorkerRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # plain `locust -f` from anywhere
from loadtests.locust_output import AI_NAMES, BACKPRESSURE_NAME, merged_histogram  # noqa: E402
from loadtests.stats import histogram_percentile  # noqa: E402
from perfcontract.capacity import Profile  # noqa: E402

PROFILE = Profile.parse(os.environ.get("BLOG_PERF_STEPS", "1:1:1:1"))
SPAWN_RATE = float(os.environ.get("BLOG_PERF_SPAWN_RATE", "10"))
STEPS_FILE = "steps.json"


def _lag(environment) -> float:
    """How long after a step's end its figures are all in (workers report every few seconds)."""
    return WORKER_REPORT_INTERVAL + 0.5 if isinstance(environment.runner, MasterRunner) else 0.2


class StepLoad(LoadTestShape):
    """PROFILE's users, each step for its seconds; the last one a little longer (``_lag``)."""

    def tick(self):
        elapsed = self.get_run_time()
        users = PROFILE.users()
        index = int(elapsed // PROFILE.seconds)
        if index < len(users):
            return users[index], SPAWN_RATE
        if elapsed < PROFILE.total_seconds + _lag(self.runner.environment):
            return users[-1], SPAWN_RATE
        return None


def _snapshot(environment) -> dict:
    stats = environment.stats
    entries = list(stats.entries.values())
    return {"time": time.time(), "requests": stats.total.num_requests, "failures": stats.total.num_failures,
            "backpressure": sum(e.num_requests for e in entries if e.name == BACKPRESSURE_NAME),
            "non_ai": merged_histogram(entries, exclude=AI_NAMES)}


def step_figures(users: int, before: dict, now: dict) -> dict:
    """One step's own figures: the difference of two snapshots."""
    seconds = max(1e-6, now["time"] - before["time"])
    requests = now["requests"] - before["requests"]
    counted = requests - (now["backpressure"] - before["backpressure"])
    histogram = {k: v - before["non_ai"].get(k, 0) for k, v in now["non_ai"].items()
                 if v - before["non_ai"].get(k, 0) > 0}
    failures = now["failures"] - before["failures"]
    return {"users": users, "seconds": round(seconds, 2), "requests": requests, "failures": failures,
            "rps": round(requests / seconds, 2), "failure_rate": failures / counted if counted > 0 else None,
            "p50_ms": histogram_percentile(histogram, 50), "p95_ms": histogram_percentile(histogram, 95),
            "p99_ms": histogram_percentile(histogram, 99)}


def _write(out: Path, steps: list[dict]) -> None:
    tmp = out / (STEPS_FILE + ".tmp")
    tmp.write_text(json.dumps(steps), encoding="utf-8")
    os.replace(tmp, out / STEPS_FILE)


class _Sampler:
    """The steps recorded so far; at the run's stop, the step under way is recorded as far as it got."""

    def __init__(self, environment, out: Path):
        self.environment, self.out = environment, out
        self.shape = environment.shape_class  # its clock started with the run
        self.before = {"time": time.time() - self.shape.get_run_time(), "requests": 0, "failures": 0,
                       "backpressure": 0, "non_ai": {}}
        self.steps: list[dict] = []
        self.greenlet = gevent.spawn(self.run)

    def record(self, users: int) -> None:
        now = _snapshot(self.environment)
        self.steps.append(step_figures(users, self.before, now))
        _write(self.out, self.steps)
        self.before = now

    def run(self) -> None:
        lag = _lag(self.environment)
        for index, users in enumerate(PROFILE.users()):
            gevent.sleep(max(0.0, (index + 1) * PROFILE.seconds + lag - self.shape.get_run_time()))
            self.record(users)

    def stop(self) -> None:
        if self.greenlet.dead:
            return
        self.greenlet.kill(block=True)
        users = PROFILE.users()
        if len(self.steps) < len(users):  # stopped early (Ctrl-C, SIGTERM): the step as far as it got
            self.record(users[len(self.steps)])


_SAMPLERS: list[_Sampler] = []


@events.test_start.add_listener
def _on_test_start(environment, **_kwargs) -> None:
    out = os.environ.get("BLOG_PERF_LOCUST_OUT")
    if not out or isinstance(environment.runner, WorkerRunner) or environment.shape_class is None:
        return
    _SAMPLERS.append(_Sampler(environment, Path(out)))


@events.test_stop.add_listener
def _on_test_stop(environment, **_kwargs) -> None:
    for sampler in _SAMPLERS:
        sampler.stop()
