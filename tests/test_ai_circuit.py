"""The LLM circuit breaker, driven by a fake clock (no sleeping)."""
from __future__ import annotations

import threading
import time

import pytest

from aiblog.monitoring import metrics
from aiblog.ai.circuit import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from aiblog.ai.llm_errors import LLMUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gauge() -> float:
    return metrics.LLM_CIRCUIT_OPEN.collect()[0].samples[0].value


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def breaker(clock):
    breaker = CircuitBreaker(failures=3, cooldown=10, clock=clock)
    yield breaker
    breaker.record_success()  # leave the process-wide gauge at 0


def open_circuit(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failures):
        breaker.before_call()
        breaker.record_failure()


def test_failures_below_the_threshold_keep_it_closed_and_success_resets_the_count(breaker):
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    breaker.before_call()
    assert breaker.state == CLOSED
    assert gauge() == 0


def test_open_circuit_fails_fast_with_503_and_retry_after(breaker, clock, monkeypatch):
    open_circuit(breaker)
    assert breaker.state == OPEN
    assert gauge() == 1
    clock.now += 2.5
    monkeypatch.setattr(time, "sleep", lambda seconds: pytest.fail(f"the breaker waited {seconds} s"))
    with pytest.raises(LLMUnavailable) as caught:
        breaker.before_call()
    error = caught.value
    assert str(error) == "LLM circuit open; retry in 8 s"
    assert (error.status_code, error.kind, error.retry_after) == (503, "unavailable", 8)


def test_after_cooldown_exactly_one_probe_goes_through(breaker, clock):
    open_circuit(breaker)
    clock.now += 10
    breaker.before_call()                      # the probe
    assert breaker.state == HALF_OPEN
    for _ in range(5):
        with pytest.raises(LLMUnavailable):
            breaker.before_call()              # everyone else still fails fast
    assert gauge() == 1


def test_successful_probe_closes_the_circuit(breaker, clock):
    open_circuit(breaker)
    clock.now += 10
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == CLOSED
    assert gauge() == 0
    for _ in range(5):
        breaker.before_call()


def test_failed_probe_opens_it_for_another_full_cooldown(breaker, clock):
    open_circuit(breaker)
    clock.now += 10
    breaker.before_call()
    breaker.record_failure()                   # one failure is enough when half-open
    assert breaker.state == OPEN
    clock.now += 9.9
    with pytest.raises(LLMUnavailable, match="retry in 1 s"):
        breaker.before_call()
    clock.now += 0.1
    breaker.before_call()                      # next probe
    assert breaker.state == HALF_OPEN


def test_a_probe_that_never_reports_gives_way_after_a_cooldown(breaker, clock):
    open_circuit(breaker)
    clock.now += 10
    breaker.before_call()                      # probe whose caller vanished
    clock.now += 9
    with pytest.raises(LLMUnavailable):
        breaker.before_call()
    clock.now += 1
    breaker.before_call()                      # a new probe may go


def test_concurrent_callers_let_exactly_one_probe_through(breaker, clock):
    open_circuit(breaker)
    clock.now += 10
    start = threading.Barrier(50)
    passed, refused = [], []

    def call() -> None:
        start.wait()
        try:
            breaker.before_call()
            passed.append(1)
        except LLMUnavailable:
            refused.append(1)

    threads = [threading.Thread(target=call) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(passed), len(refused)) == (1, 49)


@pytest.mark.parametrize("failures, cooldown", [(0, 10), (3, -1)])
def test_nonsense_settings_are_refused(failures, cooldown):
    with pytest.raises(ValueError):
        CircuitBreaker(failures, cooldown)
