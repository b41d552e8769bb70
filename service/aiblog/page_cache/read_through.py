"""The app's two calls to the page cache, usable with or without a request
(views, the post store, ``aiblog seed``):

- ``cached``: what a function builds, from the cache, built once per miss;
- ``invalidate``: drop the pages of the scopes a committed write changed.

``invalidate`` also sends ``pages_invalidated``, so the request layer
(``serving.py``) can mark the writer's response without the store knowing
about requests.
"""
from __future__ import annotations

import threading
from typing import Callable

from flask import current_app
from flask.signals import Namespace

from ..extensions import release_db_connection
from ..services import services

pages_invalidated = Namespace().signal("aiblog-pages-invalidated")


def invalidate(*scopes: str) -> None:
    """Drop the cached pages of ``scopes``: call after the write's commit."""
    services().pages.invalidate(*scopes)
    pages_invalidated.send(current_app._get_current_object(), scopes=scopes)


def cached(scope: str, name: str, make: Callable[[], bytes], fresh: bool = False) -> bytes:
    """What ``make`` builds, from the page cache: built once per miss however
    many requests miss together, kept until a write to ``scope`` (or the TTL).
    ``fresh``: the reader wrote moments ago and must see that write on every
    replica (``serving.reader_wrote_recently``)."""
    cache = services().pages
    _, value = cache.get(scope, name, fresh=fresh)
    if value is None:
        value = _fill_once(cache, scope, name, fresh, make)
    return value


class _Fill:
    """One render of a page in progress in this process."""

    def __init__(self):
        self.done = threading.Event()
        self.value: bytes | None = None


# Keyed by (page cache, page name): the cache is per app, and tests run
# several apps in one process.
_fills: dict[tuple[object, str], _Fill] = {}
_fills_guard = threading.Lock()


def renders_in_progress() -> list[str]:
    """The names of the pages this process is rendering now (tests check none is left behind)."""
    with _fills_guard:
        return [name for _, name in _fills]


def _fill_once(cache, scope: str, name: str, fresh: bool, make: Callable[[], bytes]) -> bytes:
    """Render a missed page once per process, however many requests miss it.

    After a write invalidates a busy page, every request in flight misses at
    once; the first renders it and the others take that render's page. They
    accept it even if another write committed while it rendered (it is then
    at most one render old), because while writes come faster than renders a
    check of the version would never pass and requests would queue up to
    render one after another. Writers (``fresh``) must see their own write:
    they only take a page rendered after they arrived.

    No pooled connection is held while waiting: the render being waited for
    may need one (with the pool exhausted by waiters, that is a deadlock
    until the pool timeout). The renderer gives its connection back as soon
    as the page is built.
    """
    began_after_arrival = False
    slot = (cache, name)
    while True:
        with _fills_guard:
            fill = _fills.get(slot)
            leading = fill is None
            if leading:
                fill = _fills[slot] = _Fill()
        if leading:
            break
        release_db_connection()
        fill.done.wait()
        if fill.value is not None and (began_after_arrival or not fresh):
            return fill.value
        # The render failed (its own request got the error), or this is a
        # writer: render, or join a render that begins after this point.
        began_after_arrival = True
    try:
        key, value = cache.get(scope, name, fresh=fresh, record=False)  # counted once, by the caller
        if value is None:
            try:
                value = make()
            finally:
                release_db_connection()
            cache.set(key, value)
        fill.value = value
        return value
    finally:
        with _fills_guard:
            del _fills[slot]
        fill.done.set()
