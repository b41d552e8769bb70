"""Serving cacheable pages.

Anonymous visitors get the whole rendered page from the cache (from the
process's own memory on a hit, no database, no template; see page_cache.py).
Logged-in users get the cached content fragment wrapped in a freshly rendered
layout, so their name, CSRF tokens and edit buttons are never shared with
anyone else.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Callable

from flask import Response, g, render_template, request, session
from flask_login import current_user
from markupsafe import Markup

from .extensions import release_db_connection
from .page_cache import FRESH_COOKIE, FRESH_SECONDS
from .services import services


@dataclass
class Fragment:
    title: str
    html: str
    owner_id: int | None = None  # author of the page's post, for edit controls

    def dumps(self) -> bytes:
        return json.dumps([self.title, self.html, self.owner_id]).encode()

    @classmethod
    def loads(cls, raw: bytes) -> "Fragment":
        title, html, owner_id = json.loads(raw)
        return cls(title, html, owner_id)


def _personalized() -> bool:
    return current_user.is_authenticated or bool(session.get("_flashes"))


def invalidate(*scopes: str) -> None:
    """Drop the cached pages of ``scopes`` after a committed write, and mark
    the response so the writer's next requests read the freshest generations."""
    services().pages.invalidate(*scopes)
    g.aiblog_wrote_pages = True


def mark_writer(response: Response) -> Response:
    if g.get("aiblog_wrote_pages"):
        response.set_cookie(FRESH_COOKIE, "1", max_age=FRESH_SECONDS, httponly=True, samesite="Lax",
                            secure=bool(request.environ.get("wsgi.url_scheme") == "https"))
    return response


def serve_page(scope: str, name: str, build: Callable[[], Fragment], **layout_context) -> Response | str:
    if not _personalized():
        body = cached(scope, name + ":page", lambda: _render(build(), layout_context).encode())
        return Response(body, mimetype="text/html")
    raw = cached(scope, name + ":frag", lambda: build().dumps())
    return _render(Fragment.loads(raw), layout_context)


def cached(scope: str, name: str, make: Callable[[], bytes]) -> bytes:
    """What ``make`` builds, from the page cache: built once per miss however
    many requests miss together, kept until a write to ``scope`` (or the TTL)."""
    cache = services().pages
    fresh = FRESH_COOKIE in request.cookies
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


def _fill_once(cache, scope: str, name: str, fresh: bool, make: Callable[[], bytes]) -> bytes:
    """Render a missed page once per process, however many requests miss it.

    After a write invalidates a busy page, every request in flight misses at
    once; the first renders it and the others take that render's page. They
    accept it even if another write committed while it rendered (it is then
    at most one render old), because while writes come faster than renders a
    check of the generation would never pass and requests would queue up to
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


def _render(fragment: Fragment, layout_context: dict) -> str:
    return render_template(
        "page.html", page_title=fragment.title, content=Markup(fragment.html),
        owner_id=fragment.owner_id, **layout_context,
    )
