"""Requests first, background work after: a bounded yield for CPU-heavy AI steps.

Under gunicorn's gevent worker a page read and an AI answer's processing share
one event loop. A greenlet woken with a batch of LLM tokens (or a finished
answer to render) runs its CPU work before the loop looks at the next page
request, and with a few dozen answers in flight such steps queue up in front
of a read. ``after_pending_requests`` waits until the loop has nothing more
urgent to do (gevent's idle watcher), for at most ``MAX_DEFER_SECONDS``: a
saturated loop is never idle, and an answer must not starve behind it.
"""
from __future__ import annotations

import sys

MAX_DEFER_SECONDS = 0.05


def after_pending_requests(max_defer: float = MAX_DEFER_SECONDS) -> None:
    """Yield until the event loop is idle, or ``max_defer`` seconds; no-op without gevent."""
    if not gevent_patched():
        return
    import gevent

    with gevent.Timeout(max_defer, False):
        gevent.idle()


def gevent_patched() -> bool:
    # Only gevent's own monkey patching (gunicorn's gevent worker) means
    # greenlets share this thread; merely importing gevent does not.
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("socket")
