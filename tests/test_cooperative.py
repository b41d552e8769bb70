"""after_pending_requests: AI steps wait for the page requests a gevent loop
has pending, never longer than their bound. Checked in a gevent-patched child
process, as gunicorn's gevent worker runs it."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

from aiblog import cooperative

CHILD = textwrap.dedent("""
    from gevent import monkey; monkey.patch_all()
    import json, socket, sys, time
    import gevent
    from aiblog.cooperative import after_pending_requests

    order = []
    def ai_step():
        after_pending_requests()
        order.append("ai")
    def page(number):
        gevent.sleep(0)  # a request that yields once, as a page read does on its socket
        order.append(f"page{number}")
    gevent.joinall([gevent.spawn(ai_step)] + [gevent.spawn(page, n) for n in range(3)])

    # A loop that is never idle: two greenlets ping-pong on a socket pair.
    a, b = socket.socketpair()
    running = True
    def echo():
        while running:
            b.send(b.recv(1))
    def ping():
        while running:
            a.send(b"x"); a.recv(1)
    busy = [gevent.spawn(echo), gevent.spawn(ping)]
    gevent.sleep(0.01)
    began = time.monotonic()
    after_pending_requests(0.2)
    waited = time.monotonic() - began
    running = False
    gevent.killall(busy)
    print(json.dumps({"order": order, "busy_wait_s": waited}))
""")


def _child() -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_ai_step_runs_after_the_pending_requests_and_within_its_bound():
    result = _child()
    assert result["order"] == ["page0", "page1", "page2", "ai"]
    # Never idle: the bound, not starvation (and not an early return either).
    assert 0.19 <= result["busy_wait_s"] < 1.0


def test_without_gevent_it_returns_at_once():
    assert not cooperative.gevent_patched()
    began = time.monotonic()
    cooperative.after_pending_requests(5.0)
    assert time.monotonic() - began < 0.5
