"""Single-flight protocol details, on the in-process backend and on Redis."""
import threading
import time

import pytest

from aiblog.ai.flight import LocalFlight, RedisFlight
from aiblog.redis_store import RedisStore
from devstack import wait_until


@pytest.fixture(params=["local", "redis"])
def flight(request):
    if request.param == "local":
        return LocalFlight(lease=5, poll=0.05)
    url = request.getfixturevalue("redis_url")
    return RedisFlight(RedisStore(url), lease=5, poll=0.05)


def waiter_registered(flight, key: str = "k") -> None:
    wait_until(lambda: flight._waiters._events.get(key), 5, "the waiter to register")


def test_only_one_leader_per_key(flight):
    token = flight.acquire("k")
    assert token is not None
    assert flight.acquire("k") is None
    assert flight.acquire("other") is not None
    flight.release("k", "not-the-token")
    assert flight.acquire("k") is None  # only the holder can release
    flight.release("k", token)
    assert flight.acquire("k") is not None


def test_waiter_gets_done_when_result_appears(flight):
    token = flight.acquire("k")
    done = threading.Event()

    def leader():
        waiter_registered(flight)  # the leader's work ends while the waiter waits
        done.set()
        flight.publish("k", {"state": "done"})
        flight.release("k", token)

    threading.Thread(target=leader).start()
    outcome = flight.wait("k", time.monotonic() + 5, done.is_set)
    assert outcome.state == "done"


def test_waiter_gets_the_leaders_error(flight):
    token = flight.acquire("k")

    def leader():
        waiter_registered(flight)
        delivered = flight._waiters._seq
        flight.publish("k", {"state": "failed", "error": {"status": 504, "message": "slow"}})
        # Released only once the message is here: a waiter that finds the key
        # free before the (pub/sub) message arrives tries to lead instead.
        wait_until(lambda: flight._waiters._seq > delivered, 5, "the error to reach this process")
        flight.release("k", token)

    threading.Thread(target=leader).start()
    outcome = flight.wait("k", time.monotonic() + 5, lambda: False)
    assert outcome.state == "failed" and outcome.error["status"] == 504


def test_a_stale_message_does_not_end_a_later_wait(flight):
    """A "free" sent for an earlier leader must not make later waiters spin."""
    holder = threading.Event()
    first = flight.acquire("k")
    waiting = threading.Thread(target=lambda: flight.wait("k", time.monotonic() + 1, holder.is_set))
    waiting.start()  # keeps the key registered, so the message is kept
    waiter_registered(flight)
    delivered = flight._waiters._seq
    flight.publish("k", {"state": "free"})
    # Redis delivers through pub/sub: let the message arrive before the next wait starts.
    wait_until(lambda: flight._waiters._seq > delivered, 5, "the message to reach this process")
    flight.release("k", first)
    second = flight.acquire("k")  # a new leader
    assert second is not None
    started = time.monotonic()
    outcome = flight.wait("k", time.monotonic() + 0.5, lambda: False)
    assert outcome.state == "timeout" and time.monotonic() - started >= 0.45
    waiting.join()


def test_wait_times_out(flight):
    flight.acquire("k")
    outcome = flight.wait("k", time.monotonic() + 0.2, lambda: False)
    assert outcome.state == "timeout"
